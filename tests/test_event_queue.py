from __future__ import annotations

import asyncio

import pytest

from voxengine.audio.format import PCM16_24K
from voxengine.errors import ConfigError
from voxengine.event_queue import EventQueue
from voxengine.events import AudioDelta, Role, ToolCall, TranscriptDelta


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
