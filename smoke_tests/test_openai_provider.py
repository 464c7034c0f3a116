"""OpenAIProvider smoke tests: offline against the bundled fake, live only with a key."""

from __future__ import annotations

import os

import pytest

from voxengine import AudioDelta, ResponseDone, ResponseStatus, TranscriptDone
from voxengine.providers import OpenAIConfig, OpenAIProvider
from voxengine.testing import run_fake_openai_server


async def _one_turn(provider: OpenAIProvider, text: str) -> tuple[str, bytes, ResponseDone]:
    await provider.send_text(text)
    transcript, audio = "", bytearray()
    async for event in provider.events():
        if isinstance(event, TranscriptDone):
            transcript = event.transcript
        elif isinstance(event, AudioDelta):
            audio.extend(event.audio)
        elif isinstance(event, ResponseDone):
            return transcript, bytes(audio), event
    raise AssertionError("session ended before the response")


async def test_openai_provider_against_the_fake_server() -> None:
    async with run_fake_openai_server() as server:
        provider = OpenAIProvider(
            OpenAIConfig(api_key="sk-fake", base_url=server.url, model="gpt-realtime")
        )
        await provider.connect()
        try:
            transcript, audio, done = await _one_turn(provider, "Hello!")
        finally:
            await provider.disconnect()
    assert transcript == "You said: Hello!"
    assert len(audio) > 0
    assert done.status is ResponseStatus.COMPLETED


@pytest.mark.live
@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY")
async def test_openai_provider_live() -> None:
    provider = OpenAIProvider(OpenAIConfig(model=os.environ.get("OPENAI_REALTIME_MODEL")))
    await provider.connect()
    try:
        transcript, audio, done = await _one_turn(
            provider, "Say the word 'banana' and nothing else."
        )
    finally:
        await provider.disconnect()
    assert done.status is ResponseStatus.COMPLETED
    assert "banana" in transcript.lower()
    assert len(audio) > 4800
