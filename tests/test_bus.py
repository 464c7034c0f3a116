from __future__ import annotations

import asyncio

import pytest

from voxengine.bus import ANY, EventBus
from voxengine.errors import InvalidState
from voxengine.events import (
    AudioDelta,
    BaseEvent,
    ResponseDone,
    ResponseStatus,
    SessionClosed,
    TextDelta,
)


def text(delta: str) -> TextDelta:
    return TextDelta(response_id="r", item_id="i", delta=delta)


DONE = ResponseDone(response_id="r", status=ResponseStatus.COMPLETED)


async def test_handlers_by_class_wildcard_priority_and_order() -> None:
    bus = EventBus()
    calls: list[str] = []
    bus.on(TextDelta, lambda e: calls.append(f"text:{e.delta}"))
    bus.on(ANY, lambda e: calls.append(f"any:{e.type}"), priority=-5)
    bus.on(TextDelta, lambda e: calls.append("first"), priority=10)

    async def slow(e: BaseEvent) -> None:
        await asyncio.sleep(0.01)
        calls.append("async")

    bus.on(TextDelta, slow)
    await bus.emit(text("a"))
    await bus.emit(DONE)
    assert calls == ["first", "text:a", "async", "any:response.text.delta", "any:response.done"]


async def test_once_off_and_filter() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.once(TextDelta, lambda e: seen.append("once:" + e.delta))
    sub = bus.on(
        TextDelta, lambda e: seen.append("f:" + e.delta), filter=lambda e: e.delta != "skip"
    )

    def plain(e: TextDelta) -> None:
        seen.append("plain")

    bus.on(TextDelta, plain)
    await bus.emit(text("a"))
    await bus.emit(text("skip"))
    assert bus.off(sub) == 1
    assert bus.off(plain) == 1
    await bus.emit(text("b"))
    assert seen == ["once:a", "f:a", "plain", "plain"]


async def test_failing_handler_is_counted_and_others_still_run() -> None:
    bus = EventBus()
    seen: list[str] = []

    def boom(e: BaseEvent) -> None:
        raise RuntimeError("handler bug")

    bus.on(TextDelta, boom)
    bus.on(TextDelta, lambda e: seen.append(e.delta))
    await bus.emit(text("x"))
    assert seen == ["x"]
    assert bus.handler_errors == 1


def test_subscribing_to_a_non_event_is_a_type_error() -> None:
    bus = EventBus()
    with pytest.raises(TypeError):
        bus.on("text.delta", print)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        bus.on(TextDelta, "not callable")  # type: ignore[arg-type]


async def test_stream_history_and_wait_for() -> None:
    bus = EventBus(history_size=2)
    received: list[BaseEvent] = []

    async def consume() -> None:
        async for event in bus.stream(TextDelta):
            received.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(bus.wait_for(ResponseDone, timeout=1))
    await asyncio.sleep(0)
    await bus.emit(text("a"))
    await bus.emit(AudioDelta(response_id="r", item_id="i", audio=b"\x00\x00"))
    await bus.emit(DONE)
    assert await waiter == DONE
    await bus.emit(SessionClosed(code=1000, reason=""))
    await asyncio.wait_for(task, 1)
    assert received == [text("a")]
    assert [type(e) for e in bus.history] == [ResponseDone, SessionClosed]
    with pytest.raises(InvalidState):
        async for _ in bus.stream():
            pass


async def test_wait_for_times_out_and_fails_on_close() -> None:
    bus = EventBus()
    with pytest.raises(TimeoutError):
        await bus.wait_for(ResponseDone, timeout=0.01)
    waiter = asyncio.create_task(bus.wait_for(ResponseDone, timeout=1))
    await asyncio.sleep(0)
    await bus.emit(SessionClosed(code=None))
    with pytest.raises(InvalidState, match="closed"):
        await waiter


async def test_a_lagging_stream_is_bounded_and_drops_only_audio() -> None:
    bus = EventBus(stream_size=3)
    stream = bus.stream()
    first = asyncio.ensure_future(stream.__anext__())  # subscribes; then lags behind
    await asyncio.sleep(0)
    for i in range(5):
        await bus.emit(AudioDelta(response_id="r", item_id="i", audio=bytes([i, 0])))
    await bus.emit(text("kept"))
    await bus.emit(SessionClosed(code=1000))
    received = [await first] + [e async for e in stream]
    audio = [e for e in received if isinstance(e, AudioDelta)]
    assert len(audio) < 5  # oldest audio dropped under overload
    assert received[-2:] == [text("kept"), SessionClosed(code=1000)]


async def test_dispatch_runs_synchronous_handlers_without_a_coroutine() -> None:
    bus = EventBus()
    calls: list[str] = []
    bus.on(TextDelta, lambda e: calls.append(e.delta))
    assert bus.dispatch(text("a")) is None
    assert calls == ["a"]
    assert bus.history == [text("a")]


async def test_dispatch_hands_back_the_rest_after_an_async_handler() -> None:
    bus = EventBus()
    calls: list[str] = []
    gate = asyncio.Event()

    async def slow(e: TextDelta) -> None:
        await gate.wait()
        calls.append("async")

    async def failing(e: TextDelta) -> None:
        raise RuntimeError("handler bug")

    bus.on(TextDelta, lambda e: calls.append("first"), priority=2)
    bus.on(TextDelta, slow, priority=1)
    bus.on(TextDelta, failing)
    bus.on(TextDelta, lambda e: calls.append("last"), priority=-1)
    pending = bus.dispatch(text("a"))
    assert calls == ["first"]  # the later handlers wait for the async one
    assert pending is not None
    gate.set()
    await pending
    assert calls == ["first", "async", "last"]
    assert bus.handler_errors == 1


async def test_dispatched_session_close_ends_streams_after_async_handlers() -> None:
    bus = EventBus()
    seen: list[BaseEvent] = []

    async def consume() -> None:
        async for event in bus:
            seen.append(event)

    reader = asyncio.create_task(consume())
    await asyncio.sleep(0)

    async def slow(e: SessionClosed) -> None:
        await asyncio.sleep(0.01)

    bus.on(SessionClosed, slow)
    closed = SessionClosed(code=1000)
    pending = bus.dispatch(closed)
    assert pending is not None
    await pending
    await asyncio.wait_for(reader, 1)
    assert seen == [closed]


async def test_wait_for_times_out_with_a_typed_error_that_is_also_a_timeout_error() -> None:
    from voxengine.errors import EventTimeout, VoxError

    bus = EventBus()
    with pytest.raises(EventTimeout, match=r"no ResponseDone within 0\.01 s") as caught:
        await bus.wait_for(ResponseDone, timeout=0.01)
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, VoxError)


async def test_wait_for_on_a_bus_that_is_not_open_fails_at_once() -> None:
    bus = EventBus(waitable=False)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(InvalidState, match="connect"):
        await bus.wait_for(ResponseDone, timeout=30)
    assert loop.time() - started < 5  # not the 30 s timeout
    bus.reopen()
    waiter = asyncio.ensure_future(bus.wait_for(ResponseDone, timeout=30))
    await asyncio.sleep(0)
    await bus.emit(DONE)
    assert await waiter is DONE
    await bus.emit(SessionClosed(code=1000, reason="bye"))
    with pytest.raises(InvalidState):  # closed for good: nothing more will arrive
        await bus.wait_for(ResponseDone, timeout=30)


async def test_engine_wait_for_before_connect_raises_invalid_state_at_once() -> None:
    from voxengine import VoiceEngine, VoiceEngineConfig

    engine = VoiceEngine(VoiceEngineConfig(provider="mock"))
    with pytest.raises(InvalidState, match="connect"):
        await engine.events.wait_for(ResponseDone, timeout=30)
    async with engine:
        waiter = asyncio.ensure_future(engine.events.wait_for(ResponseDone, timeout=30))
        await engine.send_text("hello")
        done = await waiter
    assert done.status is ResponseStatus.COMPLETED


AUDIO = AudioDelta(response_id="r", item_id="i", audio=b"\x00\x00")


async def test_the_audio_route_lists_plain_audio_handlers_only_while_nothing_else_needs_dispatch() -> (
    None
):
    bus = EventBus()
    assert bus.audio_route == ()
    first = bus.on(AudioDelta, lambda e: None, priority=5)
    text_only = bus.on(TextDelta, lambda e: None)
    wildcard = bus.on(ANY, lambda e: None)
    assert bus.audio_route == (first, wildcard)  # dispatch order; text handlers not in it
    filtered = bus.on(AudioDelta, lambda e: None, filter=lambda e: True)
    assert bus.audio_route is None  # a filter: only dispatch applies it
    bus.off(filtered)
    assert bus.audio_route == (first, wildcard)
    bus.once(AudioDelta, lambda e: None)
    assert bus.audio_route is None
    bus.dispatch(AUDIO)  # the once handler ran and left
    assert bus.audio_route == (first, wildcard)
    stream = bus.stream(AudioDelta)
    reader = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert bus.audio_route is None  # a stream must see the audio too
    bus.dispatch(AUDIO)
    assert await reader == AUDIO
    await stream.aclose()
    assert bus.audio_route == (first, wildcard)
    bus.off(text_only)


async def test_continue_dispatch_runs_the_rest_after_an_async_audio_handler() -> None:
    bus = EventBus()
    calls: list[str] = []

    async def slow(event: AudioDelta) -> None:
        await asyncio.sleep(0)
        calls.append("slow")

    def broken(event: AudioDelta) -> None:
        raise RuntimeError("handler bug")

    bus.on(AudioDelta, slow, priority=2)
    bus.on(AudioDelta, broken, priority=1)
    bus.on(AudioDelta, lambda e: calls.append("last"))
    route = bus.audio_route
    assert route is not None
    result = route[0].handler(AUDIO)
    await bus.continue_dispatch(AUDIO, route, 0, result)
    assert calls == ["slow", "last"]
    assert bus.handler_errors == 1
