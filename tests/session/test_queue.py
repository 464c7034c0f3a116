from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from voxengine.audio.format import PCM16_24K
from voxengine.errors import ConfigError, InvalidState
from voxengine.events import AudioDelta, Event, Role, ToolCall, TranscriptDelta
from voxengine.session.queue import EventQueue


def audio(n: int) -> AudioDelta:
    return AudioDelta(response_id="r", item_id="i", audio=bytes([n]) * 4800)  # 0.1 s


async def test_overload_drops_oldest_audio_only() -> None:
    q = EventQueue(maxsize=3, audio_format=PCM16_24K)
    call = ToolCall(call_id="c", name="f", arguments="{}")
    text = TranscriptDelta(role=Role.ASSISTANT, item_id="i", delta="hi")
    for event in (audio(1), call, audio(2), text, audio(3), audio(4)):
        q.put_nowait(event)
    got = [await q.get() for _ in range(len(q))]
    assert got == [call, text, audio(4)]
    assert q.dropped_audio_chunks == 3
    assert q.dropped_audio_seconds == pytest.approx(0.3)


async def test_critical_events_exceed_the_bound_rather_than_drop() -> None:
    q = EventQueue(maxsize=2)
    calls = [ToolCall(call_id=str(i), name="f", arguments="{}") for i in range(5)]
    for c in calls:
        q.put_nowait(c)
    assert [await q.get() for _ in range(5)] == calls
    assert q.dropped_audio_chunks == 0


async def test_get_waits_and_end_marker() -> None:
    q = EventQueue()
    task = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.put_nowait(None)
    assert await asyncio.wait_for(task, 1) is None
    with pytest.raises(ConfigError):
        EventQueue(maxsize=0)


# -- push delivery ---------------------------------------------------------------------------


def text(n: int) -> TranscriptDelta:
    return TranscriptDelta(role=Role.ASSISTANT, item_id="i", delta=str(n))


async def test_idle_push_consumer_gets_the_event_inside_put() -> None:
    q = EventQueue()
    got: list[Event | None] = []
    q.deliver_to(got.append)
    q.put_nowait(text(1))
    assert got == [text(1)]  # no task switch happened
    q.put_nowait(None)
    assert got == [text(1), None]
    assert len(q) == 0


async def test_async_consumer_holds_later_events_back_in_order() -> None:
    q = EventQueue(maxsize=2, audio_format=PCM16_24K)
    release = asyncio.Event()
    got: list[Event | None] = []

    def consumer(event: Event | None) -> Awaitable[None] | None:
        got.append(event)
        if event == text(1):
            return _waiter(release)()
        return None

    q.deliver_to(consumer)
    q.put_nowait(text(1))
    for event in (audio(1), text(2), audio(2), audio(3)):
        q.put_nowait(event)  # busy: queued under the overload policy, never blocks
    assert got == [text(1)]
    assert q.dropped_audio_chunks == 2  # bound 2: the oldest audio went
    release.set()
    await q.drained()
    assert got == [text(1), text(2), audio(3)]
    q.put_nowait(text(3))  # idle again: direct
    assert got[-1] == text(3)


def _waiter(event: asyncio.Event) -> Callable[[], Awaitable[None]]:
    async def wait() -> None:
        await event.wait()

    return wait


async def test_events_put_by_the_consumer_itself_come_after_the_current_one() -> None:
    q = EventQueue()
    got: list[Event | None] = []
    depth = 0

    def consumer(event: Event | None) -> None:
        nonlocal depth
        depth += 1
        assert depth == 1, "the consumer was re-entered"
        got.append(event)
        if event == text(1):
            q.put_nowait(text(2))
            q.put_nowait(text(3))
            assert got == [text(1)]
        depth -= 1

    q.deliver_to(consumer)
    q.put_nowait(text(1))
    assert got == [text(1), text(2), text(3)]


async def test_backlog_at_attach_is_delivered_from_a_task() -> None:
    q = EventQueue()
    q.put_nowait(text(1))
    q.put_nowait(text(2))
    got: list[Event | None] = []
    q.deliver_to(got.append)
    assert got == []  # not inside deliver_to
    q.put_nowait(text(3))  # behind the backlog
    await q.drained()
    assert got == [text(1), text(2), text(3)]


async def test_a_failing_consumer_never_reaches_the_producer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    q = EventQueue()
    got: list[Event | None] = []

    def consumer(event: Event | None) -> Awaitable[None] | None:
        got.append(event)
        if event == text(1):
            raise RuntimeError("bug")
        if event == text(2):
            return _failing()
        return None

    async def _failing() -> None:
        raise RuntimeError("async bug")

    q.deliver_to(consumer)
    q.put_nowait(text(1))
    q.put_nowait(text(2))
    q.put_nowait(text(3))
    await q.drained()
    assert got == [text(1), text(2), text(3)]
    assert caplog.text.count("event consumer failed") == 2


async def test_one_consumer_at_a_time() -> None:
    q = EventQueue()
    q.deliver_to(lambda event: None)
    assert q.pushing
    with pytest.raises(InvalidState, match="already has a consumer"):
        q.deliver_to(lambda event: None)
    with pytest.raises(InvalidState, match="get\\(\\) is not available"):
        await q.get()
    pulled = EventQueue()
    waiting = asyncio.create_task(pulled.get())
    await asyncio.sleep(0)
    with pytest.raises(InvalidState):
        pulled.deliver_to(lambda event: None)
    waiting.cancel()


async def test_a_busy_push_consumer_gets_the_overload_policy_and_drained_waits() -> None:
    q = EventQueue(maxsize=2, audio_format=PCM16_24K)
    release = asyncio.Event()
    got: list[Event | None] = []

    async def slow(event: Event | None) -> None:
        got.append(event)
        await release.wait()

    def consumer(event: Event | None) -> Awaitable[object] | None:
        return slow(event)

    call = ToolCall(call_id="c", name="f", arguments="{}")
    q.deliver_to(consumer)
    q.put_nowait(audio(1))  # handed over at once; the consumer is now busy with it
    for event in (audio(2), call, audio(3), audio(4)):
        q.put_nowait(event)  # the producer never waits
    assert len(q) == 2
    assert q.dropped_audio_chunks == 2  # audio(2), then audio(3): oldest waiting first
    assert q.dropped_audio_seconds == pytest.approx(0.2)
    release.set()
    await asyncio.wait_for(q.drained(), 5)
    assert got == [audio(1), call, audio(4)]
    assert len(q) == 0
    with pytest.raises(InvalidState):
        await q.get()
