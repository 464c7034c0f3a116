"""A call to the default provider, the offline local voice AI (Whisper, SmolLM2 through
llama.cpp, Piper, Silero VAD): a spoken question streamed over the browser protocol in
real time is heard, answered and spoken back."""

from __future__ import annotations

import pytest

from voxengine.audio.format import AudioFormat
from voxengine.providers.pipeline._packaged import local_extra_installed
from voxengine.serve.client import open_call

from .conftest import serve

pytestmark = [
    pytest.mark.local_models,
    pytest.mark.skipif(not local_extra_installed(), reason="the 'local' extra is not installed"),
    pytest.mark.timeout(600),
]


async def test_a_spoken_question_is_answered_by_the_local_stack() -> None:
    from voxengine.audio.resample import convert
    from voxengine.providers.pipeline import PiperTTS

    tts = PiperTTS()
    try:
        spoken = b"".join([c async for c in tts.synthesize("What is the capital of France?")])
    finally:
        await tts.aclose()
    question = convert(spoken, AudioFormat(sample_rate=22_050), AudioFormat(sample_rate=16_000))
    async with (
        serve(provider="offline") as served,
        open_call(served.ws, await served.token(), timeout=300) as call,
    ):
        assert served.engines[0].provider.name == "pipeline"
        silence = bytes(16_000 * 2)  # 1 s
        await call.stream_pcm(silence + question + 3 * silence)
        heard = await call.wait_for(
            "transcript", lambda m: m["role"] == "user" and m["final"], timeout=300
        )
        assert "capital of" in heard["text"].lower()
        await call.wait_for("response", lambda m: m["state"] == "done", timeout=300)
        answer = [
            m for m in call.messages if m["type"] == "transcript" and m["role"] == "assistant"
        ]
        assert "".join(m["text"] for m in answer).strip()
        assert len(call.audio) > 24_000 * 2 // 2  # over half a second of spoken answer
        latency = await call.wait_for("latency")
        assert latency["first_audio"] > 0
