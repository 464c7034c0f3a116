"""``voxengine demo`` end to end: the offline pipeline by default, and its one-flag switches.

Every test runs ``python -m voxengine demo`` in a subprocess with no real keys in its
environment; the language-model servers are the bundled fakes on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from voxengine.audio.wav import read_wav
from voxengine.testing import FakeLLMConfig, FakeLLMReply, FakeLLMTurn, run_fake_llm_server

from .conftest import Vox, cli_env

pytest.importorskip("espeakng_loader")
pytest.importorskip("pocketsphinx")

#: The fallback stack, which these tests pin (VOXENGINE_OFFLINE=fallback) because it is
#: deterministic and instant; the local voice AI's demo is tested in test_demo_local.py.
OFFLINE_BANNER = (
    "offline pipeline: pocketsphinx en-us → built-in local responder (not an AI model) "
    "→ espeak-ng en-us"
)
KEY = "test-llm-key"


def demo_env(**extra: str) -> dict[str, str]:
    """The CLI environment without any LLM keys, on the fallback stack, plus ``extra``."""
    env = {
        k: v
        for k, v in cli_env().items()
        if k not in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "VOXENGINE_LLM_API_KEY")
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env["VOXENGINE_OFFLINE"] = "fallback"
    return {**env, **extra}


async def run_demo(
    cwd: Path, *args: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m voxengine demo ARGS`` without blocking the event loop (a fake serves)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voxengine", "demo", *args,
        cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return subprocess.CompletedProcess(
        args, proc.returncode, out.decode("utf-8"), err.decode("utf-8")
    )


def line_after(out: str, prefix: str) -> str:
    """The rest of the first output line starting with ``prefix``."""
    return next(line[len(prefix) :] for line in out.splitlines() if line.startswith(prefix))


def assert_reply_wav(path: Path) -> None:
    audio, fmt = read_wav(path)
    assert (fmt.sample_rate, fmt.channels) == (24_000, 1)
    assert fmt.duration(len(audio)) > 0.5


def test_default_demo_is_an_offline_voice_turn(vox: Vox, tmp_path: Path) -> None:
    result = vox("demo", env=demo_env())
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == f"voxengine demo: mode=provider, {OFFLINE_BANNER}"
    assert "FALLBACK, not an AI: $VOXENGINE_OFFLINE=fallback" in out
    assert "user (text): Hello! What can you do?\nassistant: Hello! I am the built-in" in out
    assert "user (speech, " in out
    assert "weather" in line_after(out, "recognised: ")
    # the local responder says honestly that it cannot check the weather
    assert line_after(out, "assistant: I cannot check the weather")
    assert "of reply audio to reply.wav" in out
    assert line_after(out, "  time to first audio").endswith(" ms (end of speech to first audio)")
    assert "Traceback" not in result.stderr
    assert_reply_wav(tmp_path / "reply.wav")


def test_default_demo_takes_the_question_and_the_output_file(vox: Vox, tmp_path: Path) -> None:
    result = vox(
        "demo", "--say", "hello there", "--text", "what day is it", "--out", "answer.wav",
        env=demo_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "assistant: Today is " in result.stdout
    assert "'hello there'" in line_after(result.stdout, "user (speech, ")  # what was spoken
    assert line_after(result.stdout, "recognised: ")  # whatever PocketSphinx made of it
    assert_reply_wav(tmp_path / "answer.wav")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--record", "demo.jsonl"), "--record needs a WebSocket provider"),
        (("--model", "llama3.2"), "--model needs --llm-url, --claude or --live"),
        (("--llm-url", "localhost:11434"), "--llm-url needs an http(s) URL"),
        (("--claude", "--live"), "not allowed with argument"),
        (("--say", " "), "--say needs some words"),
        (("--voice", "no-such-voice"), "espeak-ng has no voice 'no-such-voice'"),
    ],
)
def test_pipeline_usage_errors(vox: Vox, args: tuple[str, ...], message: str) -> None:
    result = vox("demo", *args, env=demo_env())
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_claude_without_key_is_a_usage_error(vox: Vox, tmp_path: Path) -> None:
    result = vox("demo", "--claude", env=demo_env())
    assert result.returncode == 2
    assert "error: --claude needs ANTHROPIC_API_KEY in the environment" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reply.wav").exists()


async def test_llm_url_answers_through_an_openai_compatible_server(tmp_path: Path) -> None:
    def reply(turn: FakeLLMTurn) -> FakeLLMReply:
        return FakeLLMReply(text=f"Fake model heard: {turn.user_text}.")

    async with run_fake_llm_server(FakeLLMConfig(api_key=KEY, responder=reply)) as server:
        result = await run_demo(
            tmp_path, "--llm-url", server.openai_base_url, "--model", "fake-model",
            env=demo_env(VOXENGINE_LLM_API_KEY=KEY),
        )  # fmt: skip
        requests = server.requests_to("/v1/chat/completions")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.splitlines()[0] == (
        f"voxengine demo: mode=provider, pipeline: pocketsphinx en-us → "
        f"fake-model at {server.openai_base_url} → espeak-ng en-us"
    )
    recognised = line_after(out, "recognised: ").strip("'")
    assert "weather" in recognised
    assert f"assistant: Fake model heard: {recognised}." in out
    text_turn, spoken_turn = requests
    assert all(r.completed and r.body["model"] == "fake-model" for r in requests)
    assert text_turn.body["messages"][-1] == {"role": "user", "content": "Hello! What can you do?"}
    assert spoken_turn.body["messages"][-1] == {"role": "user", "content": recognised}
    assert "tokens (spoken turn): " in out
    assert_reply_wav(tmp_path / "reply.wav")


async def test_llm_url_without_model_uses_none_it_cannot_list(tmp_path: Path) -> None:
    async with run_fake_llm_server(FakeLLMConfig(api_key=KEY)) as server:
        result = await run_demo(
            tmp_path, "--llm-url", server.url, env=demo_env(VOXENGINE_LLM_API_KEY=KEY)
        )
    assert result.returncode == 2
    assert f"no --model given and {server.url}/v1/models does not list one" in result.stderr
    assert "hint: pass --model NAME" in result.stderr


async def test_llm_url_failure_is_a_one_line_error(tmp_path: Path) -> None:
    async with run_fake_llm_server(FakeLLMConfig(api_key=KEY)) as server:
        result = await run_demo(
            tmp_path, "--llm-url", server.openai_base_url, "--model", "m",
            env=demo_env(VOXENGINE_LLM_API_KEY="wrong-key"),
        )  # fmt: skip
    assert result.returncode == 1
    assert "error: the reply failed: " in result.stderr
    assert "Traceback" not in result.stderr


async def test_no_reply_within_the_timeout_is_a_failure(tmp_path: Path) -> None:
    async with run_fake_llm_server(FakeLLMConfig(api_key=KEY, chunk_delay=5)) as server:
        result = await run_demo(
            tmp_path, "--llm-url", server.openai_base_url, "--model", "slow", "--timeout", "1",
            env=demo_env(VOXENGINE_LLM_API_KEY=KEY),
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == "error: no response within 1 s"


async def test_claude_answers_through_the_anthropic_api(tmp_path: Path) -> None:
    async with run_fake_llm_server(FakeLLMConfig(api_key=KEY)) as server:
        env = demo_env(ANTHROPIC_API_KEY=KEY, ANTHROPIC_BASE_URL=server.anthropic_base_url)
        result = await run_demo(tmp_path, "--claude", env=env)
        requests = server.requests_to("/v1/messages")
    assert result.returncode == 0, result.stderr
    assert "en-us → Claude claude-haiku-4-5 → espeak-ng" in result.stdout.splitlines()[0]
    assert "assistant: You said: " in result.stdout
    assert len(requests) == 2
    assert "weather" in requests[-1].body["messages"][-1]["content"][0]["text"]
    assert_reply_wav(tmp_path / "reply.wav")


def test_fake_openai_is_the_bundled_realtime_server(vox: Vox, tmp_path: Path) -> None:
    result = vox("demo", "--fake-openai", "--out", "fake.wav", env=demo_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "voxengine demo: mode=provider, talking to the bundled fake OpenAI server at ws://"
    )
    assert "assistant: I heard " in result.stdout
    assert_reply_wav(tmp_path / "fake.wav")
