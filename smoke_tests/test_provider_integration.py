"""VoiceEngine end to end on every built-in offline path."""

from __future__ import annotations

import pytest

from voxengine import ResponseDone, ResponseStatus, VoiceEngine, VoiceEngineConfig
from voxengine.testing import run_fake_openai_server


@pytest.mark.parametrize("mode", ["fast", "big", "provider"])
async def test_engine_modes_on_mock(mode: str) -> None:
    replies: list[str] = []
    engine = VoiceEngine(VoiceEngineConfig(provider="mock", mode=mode))  # type: ignore[arg-type]
    engine.on_text_response = replies.append
    async with engine:
        await engine.send_text("Hello!")
        done = await engine.events.wait_for(ResponseDone, timeout=5)
    assert done.status is ResponseStatus.COMPLETED
    assert "".join(replies) == "You said: Hello!"


@pytest.mark.parametrize("mode", ["fast", "big", "provider"])
async def test_engine_modes_on_openai_over_websockets(mode: str) -> None:
    async with run_fake_openai_server() as server:
        audio = bytearray()
        engine = VoiceEngine(
            VoiceEngineConfig(
                api_key="sk-fake",
                provider="openai",
                mode=mode,
                base_url=server.url,
                voice="coral",  # type: ignore[arg-type]
            )
        )
        engine.on_audio_response = audio.extend
        async with engine:
            await engine.send_text("Hello!")
            await engine.events.wait_for(ResponseDone, timeout=5)
        assert len(audio) > 0
        assert server.connections[0].session["audio"]["output"]["voice"] == "coral"


async def test_seed_documented_usage_runs_as_written_on_the_mock() -> None:
    """The seed's example, verbatim: TTS's "nova" is fine on the mock (any voice name)."""
    engine = VoiceEngine(
        VoiceEngineConfig(api_key="test-key", provider="mock", mode="provider", voice="nova")
    )
    texts: list[str] = []
    engine.on_text_response = texts.append
    await engine.connect()
    try:
        await engine.send_text("Hello!")
        done = await engine.events.wait_for(ResponseDone, timeout=10)
    finally:
        await engine.disconnect()
    assert done.status is ResponseStatus.COMPLETED
    assert "".join(texts) == "You said: Hello!"


def test_a_voice_the_provider_lacks_fails_before_any_io() -> None:
    from voxengine.errors import ConfigError

    with pytest.raises(ConfigError, match=r"no voice 'nova'.*Valid voices: alloy"):
        VoiceEngineConfig(api_key="sk-x", provider="openai", voice="nova")
    with pytest.raises(ConfigError, match="Did you mean 'Kore'"):
        VoiceEngineConfig(api_key="k", provider="gemini", voice="kore")
