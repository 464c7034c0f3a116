"""``voxengine demo`` with the local voice AI (the default when the 'local' extra is
installed): Piper speaks the question, Whisper hears it, SmolLM2 answers, Piper speaks
the answer sentence by sentence, and the latency of each stage is printed."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxengine.audio.wav import read_wav
from voxengine.providers.pipeline._packaged import local_extra_installed

from .conftest import Vox
from .test_demo import demo_env, line_after

pytestmark = [
    pytest.mark.local_models,
    pytest.mark.skipif(not local_extra_installed(), reason="the 'local' extra is not installed"),
    pytest.mark.timeout(600),
]


def local_env() -> dict[str, str]:
    env = demo_env(HF_HUB_OFFLINE="1")
    del env["VOXENGINE_OFFLINE"]  # the default stack
    return env


def test_default_demo_is_a_conversation_with_the_local_model(vox: Vox, tmp_path: Path) -> None:
    result = vox("demo", "--timeout", "300", env=local_env(), timeout=580)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    banner = out.splitlines()[0]
    assert "Silero VAD, whisper base (faster-whisper int8)" in banner
    assert "SmolLM2-135M-Instruct.Q4_1 (llama.cpp, local)" in banner
    assert banner.endswith("piper en_US-joe-medium")
    assert "built-in local responder" not in out
    assert "user (speech, " in out
    assert "piper en_US-joe-medium): 'What is the capital of France?'" in out
    # the demo speaks its question without Piper's sampling noise, so it is the same
    # audio every run (a random rendering was heard as "capital of friends" about one
    # time in six: not a cut turn, see docs/local.md)
    assert "capital of france" in line_after(out, "recognised: ").lower()
    reply = out.split("recognised: ", 1)[1].split("assistant: ", 1)[1].split("\n", 1)[0]
    assert len(reply.split()) >= 3  # the model's words (its content varies with the clock)
    for stage in ("speech-to-text", "LLM first token", "TTS first audio"):
        assert line_after(out, f"  {stage}").strip().endswith(" ms")
    assert line_after(out, "tokens (spoken turn): ")
    audio, fmt = read_wav(tmp_path / "reply.wav")
    assert fmt.sample_rate == 24_000
    assert fmt.duration(len(audio)) > 1.0
    assert "Traceback" not in result.stderr


def test_console_talks_to_the_same_local_stack(vox: Vox, tmp_path: Path) -> None:
    """``console --provider pipeline`` with a recorded question instead of a microphone."""
    import asyncio

    from voxengine.audio.format import AudioFormat
    from voxengine.audio.wav import write_wav
    from voxengine.providers.pipeline import PiperTTS

    async def question() -> bytes:
        tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)  # the same audio every run
        return b"".join([chunk async for chunk in tts.synthesize("What is the capital of France?")])

    rate = 22_050
    write_wav(
        tmp_path / "question.wav",
        bytes(rate) + asyncio.run(question()) + bytes(4 * rate),
        AudioFormat(sample_rate=rate),
    )
    result = vox(
        "console", "--provider", "pipeline", "--always-on", "--max-turns", "1", "--plain",
        "--input-file", "question.wav", "--output-file", "answer.wav",
        env=local_env(), timeout=580,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "talking to the offline pipeline (Silero VAD, whisper base" in out
    assert "SmolLM2-135M-Instruct.Q4_1 (llama.cpp, local)" in out
    assert "capital of france" in line_after(out, "you: ").lower()  # see the demo test
    assert line_after(out, "assistant: ")
    audio, fmt = read_wav(tmp_path / "answer.wav")
    assert fmt.duration(len(audio)) > 0.5
