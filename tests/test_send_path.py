"""``VoiceEngine.send_audio``'s shortest way in fast mode (straight to the provider's
``audio_sender``, the link's own coroutine) and every case that must not take it, over
real sockets to the fake OpenAI server on both WebSocket backends."""

from __future__ import annotations

import asyncio
import base64
import io
import wave
from typing import Any

import pytest

from voxengine import VoiceEngine, VoiceEngineConfig
from voxengine.errors import AudioError, InvalidState
from voxengine.providers import OpenAIConfig, OpenAIProvider
from voxengine.testing import FakeOpenAIServerHandle, run_fake_openai_server
from voxengine.transport.backends import TRANSPORTS

CHUNK = 480  # samples: 20 ms at 24 kHz


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each WebSocket backend (``VoiceEngineConfig.transport``) in turn."""
    return str(request.param)


def engine_for(handle: FakeOpenAIServerHandle, transport: str, **options: Any) -> VoiceEngine:
    options.setdefault("mode", "fast")
    config = VoiceEngineConfig(
        api_key="sk-test", base_url=handle.url, transport=transport, **options
    )
    return VoiceEngine(config)


async def appended(handle: FakeOpenAIServerHandle, index: int, count: int) -> list[bytes]:
    """The audio of the first ``count`` appends connection ``index`` received (waits
    for them, at most 10 s)."""
    async with asyncio.timeout(10):
        while True:
            if len(handle.connections) > index:
                events = handle.connections[index].received
                audio = [
                    base64.b64decode(e["audio"])
                    for e in events
                    if e["type"] == "input_audio_buffer.append"
                ]
                if len(audio) >= count:
                    return audio
            await asyncio.sleep(0.01)


def wav_file() -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24_000)
        wav.writeframes(bytes(2 * CHUNK))
    return out.getvalue()


def chunk(value: int) -> bytes:
    return bytes([value, 0]) * CHUNK


async def test_a_new_connection_gets_the_audio_sent_after_connect(transport: str) -> None:
    """The shortest way follows the provider's current link: after disconnect() it is
    gone (InvalidState, as before), after connect() it is the new link's."""
    async with run_fake_openai_server() as handle:
        engine = engine_for(handle, transport)
        await engine.connect()
        assert engine.provider.audio_sender is not None
        await engine.send_audio(chunk(1))
        assert await appended(handle, 0, 1) == [chunk(1)]
        await engine.disconnect()
        assert engine.provider.audio_sender is None
        with pytest.raises(InvalidState):
            await engine.send_audio(chunk(2))
        await engine.connect()
        try:
            await engine.send_audio(chunk(3))
            assert await appended(handle, 1, 1) == [chunk(3)]
        finally:
            await engine.disconnect()


async def test_the_shortest_way_checks_the_audio_when_awaited(transport: str) -> None:
    async with run_fake_openai_server() as handle:
        engine = engine_for(handle, transport)
        await engine.connect()
        try:
            odd = engine.send_audio(b"\x00" * 3)  # nothing raised until awaited
            with pytest.raises(AudioError):
                await odd
            with pytest.raises(AudioError):
                await engine.send_audio(wav_file())  # a WAV file, header and all
            await engine.send_audio(b"")  # empty: nothing sent
            await engine.send_audio(bytearray(chunk(4)))  # bytes-like: accepted
            await engine.send_audio(chunk(5))
            assert await appended(handle, 0, 2) == [chunk(4), chunk(5)]
        finally:
            await engine.disconnect()


class CountingProvider(OpenAIProvider):
    """A provider subclass with its own ``send_audio``: the engine must call it."""

    def __init__(self, config: OpenAIConfig) -> None:
        super().__init__(config)
        self.seen: list[bytes] = []

    async def send_audio(self, audio: bytes, *, sample_rate: int | None = None) -> None:
        self.seen.append(audio)
        await super().send_audio(audio, sample_rate=sample_rate)


async def test_a_provider_that_overrides_send_audio_gets_every_chunk(transport: str) -> None:
    async with run_fake_openai_server() as handle:
        provider = CountingProvider(
            OpenAIConfig(api_key="sk-test", base_url=handle.url, transport=transport)
        )
        config = VoiceEngineConfig(api_key="sk-test", mode="fast", base_url=handle.url)
        engine = VoiceEngine(config, provider=provider)
        await engine.connect()
        try:
            assert provider.audio_sender is None  # its own send_audio, not the link's
            for value in (1, 2, 3):
                await engine.send_audio(chunk(value))
            assert await appended(handle, 0, 3) == [chunk(1), chunk(2), chunk(3)]
        finally:
            await engine.disconnect()
    assert provider.seen == [chunk(1), chunk(2), chunk(3)]


async def test_local_vad_still_sees_the_audio_in_fast_mode(transport: str) -> None:
    """With ``vad_type="client"`` the audio goes through the local VAD: silence is held
    back (nothing appended) instead of streamed."""
    async with run_fake_openai_server() as handle:
        engine = engine_for(handle, transport, vad_type="client")
        await engine.connect()
        try:
            for _ in range(25):  # half a second of silence
                await engine.send_audio(bytes(2 * CHUNK))
            await engine.send_text("flush")  # a later frame: the appends would be before it
            async with asyncio.timeout(10):
                while not any(  # noqa: ASYNC110 (the fake server's record: no event to wait on)
                    e["type"] == "conversation.item.create" for e in handle.connections[0].received
                ):
                    await asyncio.sleep(0.01)
        finally:
            await engine.disconnect()
    kinds = [e["type"] for e in handle.connections[0].received]
    assert "input_audio_buffer.append" not in kinds


async def test_other_modes_count_the_audio_sent(transport: str) -> None:
    async with run_fake_openai_server() as handle:
        engine = engine_for(handle, transport, mode="provider")
        await engine.connect()
        try:
            for value in range(5):
                await engine.send_audio(chunk(value + 1))
            await appended(handle, 0, 5)
            strategy = engine._strategy
            assert strategy is not None
            assert strategy.metrics.tracker.audio_seconds_in == pytest.approx(0.1)
        finally:
            await engine.disconnect()
