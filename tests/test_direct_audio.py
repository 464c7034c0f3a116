"""Fast mode's direct audio: from the socket's read callback straight to
``on_audio_response`` while that callback alone wants the audio, over real sockets to
the fake OpenAI server; the usual event path as soon as anything else does."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

import pytest

from voxengine import AudioDelta, ResponseDone, ResponseStatus, VoiceEngine, VoiceEngineConfig
from voxengine.engine import DISCONNECT_TIMEOUT
from voxengine.events import Reconnected, ShutdownCancelled, TextDelta, TranscriptDelta
from voxengine.testing import FakeOpenAIConfig, FakeOpenAIServerHandle, run_fake_openai_server
from voxengine.transport.backends import TRANSPORTS

#: Where each WebSocket backend's read callback hands a frame over.
READ_HOOK = {"websockets": "_PushingConnection.process_event", "picows": "FrameHandler.on_ws_frame"}


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each WebSocket backend (``VoiceEngineConfig.transport``) in turn."""
    return str(request.param)


def fast_engine(
    handle: FakeOpenAIServerHandle, mode: str = "fast", transport: str = "websockets"
) -> VoiceEngine:
    config = VoiceEngineConfig(
        api_key="sk-test",
        provider="openai",
        mode=mode,  # type: ignore[arg-type]
        base_url=handle.url,
        transport=transport,
    )
    return VoiceEngine(config)


def _callers() -> set[str]:
    """Qualified names of the functions on the stack above the caller."""
    names: set[str] = set()
    frame = sys._getframe(2)
    while frame is not None:
        names.add(frame.f_code.co_qualname)
        frame = frame.f_back  # type: ignore[assignment]
    return names


async def _reply(engine: VoiceEngine, text: str = "Hello there, how are you?") -> None:
    await engine.send_text(text)
    done = await engine.events.wait_for(ResponseDone, timeout=10)
    assert done.status is ResponseStatus.COMPLETED


async def _audio_in_provider_mode(handle: FakeOpenAIServerHandle) -> bytes:
    engine = fast_engine(handle, "provider")
    audio = bytearray()
    engine.on_audio_response = audio.extend
    async with engine:
        await _reply(engine)
    return bytes(audio)


async def test_a_lone_audio_callback_gets_every_chunk_straight_from_the_socket(
    fake_openai: FakeOpenAIServerHandle, transport: str
) -> None:
    expected = await _audio_in_provider_mode(fake_openai)
    engine = fast_engine(fake_openai, transport=transport)
    audio = bytearray()
    stacks: list[set[str]] = []

    def on_audio(pcm: bytes) -> None:
        stacks.append(_callers())
        audio.extend(pcm)

    engine.on_audio_response = on_audio
    assert not engine.direct_audio  # not connected yet
    async with engine:
        assert engine.direct_audio
        await _reply(engine)
    assert not engine.direct_audio  # disconnected
    assert bytes(audio) == expected  # the same audio as the event path gives
    # no event, queue, strategy or bus between the socket and the callback
    for stack in stacks:
        assert READ_HOOK[transport] in stack
        assert not {"EventQueue.put_nowait", "BaseStrategy._deliver", "EventBus.dispatch"} & stack


async def test_any_other_audio_consumer_turns_the_direct_way_off_until_it_leaves(
    fake_openai: FakeOpenAIServerHandle, transport: str
) -> None:
    engine = fast_engine(fake_openai, transport=transport)
    direct, seen = bytearray(), bytearray()
    engine.on_audio_response = direct.extend
    async with engine:
        assert engine.direct_audio
        sub = engine.events.on(AudioDelta, lambda event: seen.extend(event.audio))
        assert not engine.direct_audio
        await _reply(engine)
        assert len(seen) > 0
        assert bytes(seen) == bytes(direct)  # both had every chunk, via the events
        engine.events.off(sub)
        assert engine.direct_audio
        streamed: list[AudioDelta] = []

        async def stream() -> None:
            async for event in engine.events.stream(AudioDelta):
                assert isinstance(event, AudioDelta)
                streamed.append(event)

        reader = asyncio.create_task(stream())
        while engine.direct_audio:  # noqa: ASYNC110 (the stream opens in the reader's first step)
            await asyncio.sleep(0.01)
        before = len(direct)
        await _reply(engine)
        assert sum(len(e.audio) for e in streamed) == len(direct) - before > 0
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        assert engine.direct_audio  # the stream closed
        engine.on_audio_response = None
        assert not engine.direct_audio
        engine.on_audio_response = direct.extend
        assert engine.direct_audio


async def _text_in_provider_mode(handle: FakeOpenAIServerHandle) -> list[str]:
    engine = fast_engine(handle, "provider")
    deltas: list[str] = []
    engine.on_text_response = deltas.append
    async with engine:
        await _reply(engine)
    return deltas


async def test_a_lone_text_callback_gets_every_delta_straight_from_the_socket(
    fake_openai: FakeOpenAIServerHandle, transport: str
) -> None:
    expected = await _text_in_provider_mode(fake_openai)
    assert len(expected) > 1
    engine = fast_engine(fake_openai, transport=transport)
    deltas: list[str] = []
    stacks: list[set[str]] = []

    def on_text(delta: str) -> None:
        stacks.append(_callers())
        deltas.append(delta)

    engine.on_text_response = on_text
    async with engine:
        assert not engine.direct_text  # only beside the direct audio
        engine.on_audio_response = lambda pcm: None
        assert engine.direct_audio
        assert engine.direct_text
        await _reply(engine)
    assert not engine.direct_text  # disconnected
    assert deltas == expected  # the same deltas as the event path gives
    for stack in stacks:
        assert READ_HOOK[transport] in stack
        assert not {"EventQueue.put_nowait", "BaseStrategy._deliver", "EventBus.dispatch"} & stack


@pytest.mark.parametrize("kind", [TranscriptDelta, TextDelta])
async def test_any_other_text_consumer_turns_the_direct_text_off_until_it_leaves(
    fake_openai: FakeOpenAIServerHandle, kind: type[TextDelta | TranscriptDelta]
) -> None:
    engine = fast_engine(fake_openai)
    direct: list[str] = []
    seen: list[str] = []
    engine.on_audio_response = lambda pcm: None
    engine.on_text_response = direct.append
    async with engine:
        assert engine.direct_text
        sub = engine.events.on(kind, lambda event: seen.append(event.delta))
        assert engine.direct_audio
        assert not engine.direct_text
        await _reply(engine)
        if kind is TranscriptDelta:  # the fake speaks: its text comes as transcripts
            assert seen
            assert seen == direct
        engine.events.off(sub)
        assert engine.direct_text
        engine.on_text_response = None
        assert engine.direct_audio
        assert not engine.direct_text
        engine.on_text_response = direct.append
        assert engine.direct_text

        async def on_text(delta: str) -> None:
            direct.append(delta)

        engine.on_text_response = on_text  # async: the event path awaits it
        assert engine.direct_audio
        assert not engine.direct_text
        before = len(direct)
        await _reply(engine)
        assert len(direct) > before


async def test_async_callbacks_take_the_event_path_and_are_awaited(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    engine = fast_engine(fake_openai)
    audio = bytearray()

    async def on_audio(pcm: bytes) -> None:
        await asyncio.sleep(0)
        audio.extend(pcm)

    engine.on_audio_response = on_audio
    async with engine:
        assert not engine.direct_audio
        await _reply(engine)
    assert len(audio) > 0


async def test_a_plain_callback_returning_an_awaitable_has_it_awaited(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    engine = fast_engine(fake_openai)
    finished: list[int] = []
    awaited = asyncio.Event()

    async def later(size: int) -> None:
        await asyncio.sleep(0)
        finished.append(size)
        awaited.set()

    engine.on_audio_response = lambda pcm: later(len(pcm))
    async with engine:
        assert engine.direct_audio
        await _reply(engine)
        await asyncio.wait_for(awaited.wait(), 5)
    assert sum(finished) > 0


async def test_disconnect_cancels_an_awaitable_the_callback_left_hanging(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    """No task outlives ``disconnect()``: what a plain callback returned and never
    finished is cancelled after the grace period and reported like a hung handler."""
    engine = fast_engine(fake_openai)
    hanging: list[asyncio.Future[None]] = []
    reports: list[ShutdownCancelled] = []

    def callback(pcm: bytes) -> asyncio.Future[None]:
        future = asyncio.get_running_loop().create_future()  # never set
        hanging.append(future)
        return future

    engine.on_audio_response = callback
    engine.events.on(ShutdownCancelled, reports.append)
    await engine.connect()
    assert engine.direct_audio
    await _reply(engine)
    assert hanging
    started = time.monotonic()
    await engine.disconnect()
    assert time.monotonic() - started < DISCONNECT_TIMEOUT
    assert all(future.cancelled() for future in hanging)
    assert [r.handlers for r in reports] == [(AudioDelta.type,)]
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]


@pytest.mark.parametrize("which", ["on_audio_response", "on_text_response"])
async def test_a_failing_callback_is_counted_and_the_conversation_goes_on(
    fake_openai: FakeOpenAIServerHandle,
    caplog: pytest.LogCaptureFixture,
    transport: str,
    which: str,
) -> None:
    engine = fast_engine(fake_openai, transport=transport)
    calls: list[object] = []

    def broken(data: object) -> None:
        calls.append(data)
        raise RuntimeError("application bug")

    engine.on_audio_response = lambda pcm: None
    engine.on_text_response = lambda text: None
    setattr(engine, which, broken)
    async with engine:
        assert engine.direct_audio
        assert engine.direct_text
        await _reply(engine)
        await _reply(engine, "And again")
        assert engine.is_connected
    assert engine.events.handler_errors == len(calls) > 0
    assert f"{which} failed" in caplog.text


async def test_interrupt_truncates_at_the_audio_received_the_direct_way(transport: str) -> None:
    async with run_fake_openai_server(FakeOpenAIConfig(paced=True), pace_seconds=0.02) as handle:
        engine = fast_engine(handle, transport=transport)
        audio = bytearray()
        enough = asyncio.Event()

        def on_audio(pcm: bytes) -> None:
            audio.extend(pcm)
            if len(audio) >= 4800:  # 0.1 s of 24 kHz PCM16
                enough.set()

        engine.on_audio_response = on_audio
        async with engine:
            assert engine.direct_audio
            await engine.send_text("One two three four five six seven eight nine ten")
            await asyncio.wait_for(enough.wait(), 10)
            interrupted = await engine.interrupt(played=60.0)  # clamped to what came
            received = len(audio) / 48_000
            assert interrupted.played is not None
            assert 0.1 <= interrupted.played <= received + 0.5
            done = await engine.events.wait_for(ResponseDone, timeout=10)
            assert done.status is ResponseStatus.CANCELLED
        [truncate] = [
            e for e in handle.connections[0].received if e["type"] == "conversation.item.truncate"
        ]
        assert truncate["audio_end_ms"] == round(interrupted.played * 1000)


async def test_the_connection_after_a_reconnect_is_tapped_too(
    dropping: FakeOpenAIServerHandle, transport: str
) -> None:
    config: dict[str, Any] = {"api_key": "sk-test", "base_url": dropping.url}
    config["transport"] = transport
    engine = VoiceEngine(VoiceEngineConfig(provider="openai", mode="fast", **config))
    stacks: list[set[str]] = []
    engine.on_audio_response = lambda pcm: stacks.append(_callers())
    async with engine:
        await engine.send_text("Tell me about the tides")
        await engine.events.wait_for(Reconnected, timeout=10)
        done = await engine.events.wait_for(ResponseDone, timeout=10)
        assert done.status is ResponseStatus.COMPLETED
        assert engine.direct_audio
    assert len(dropping.connections) == 2
    assert len(stacks) > 3  # audio of the second connection came too ...
    assert all("EventQueue.put_nowait" not in stack for stack in stacks)  # ... directly


async def test_a_connection_that_cannot_tap_keeps_the_event_path() -> None:
    """The mock provider's in-memory transport has no ``tap_text``: the engine asks,
    is told no, and the callback still gets every chunk through the events."""
    from voxengine.providers import MockConfig, MockProvider

    provider = MockProvider(MockConfig(api_key="test-key", replies=("Hello there.",)))
    engine = VoiceEngine(VoiceEngineConfig(provider="mock", mode="fast"), provider=provider)
    audio = bytearray()
    engine.on_audio_response = audio.extend
    async with engine:
        assert not engine.direct_audio
        await _reply(engine)
    assert len(audio) == pytest.approx(2 * 0.25 * 48_000, rel=0.05)
