"""The local benchmark's timing wrappers (benchmarks/local_timing.py) around the pipeline's
stages: a consumer that stops early (barge-in: the pipeline closes the reply's stream
after its first piece) stops the wrapped model or voice at once, not when the garbage
collector gets to the wrapper."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from benchmarks.local_timing import TimedLLM, TimedTTS, Timeline

from voxengine.providers.pipeline import TextChunk


class Inner:
    """A stage whose stream records whether it was closed before it ended."""

    label = "inner"

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.pieces = 0

    async def _pieces(self, make: Any) -> AsyncIterator[Any]:
        try:
            for index in range(100):
                self.pieces += 1
                yield make(index)
                await asyncio.sleep(0)
        finally:
            self.closed.set()

    def stream(self, messages: object, tools: object, settings: object) -> AsyncIterator[Any]:
        return self._pieces(lambda i: TextChunk(text=f"word{i} "))

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        return self._pieces(lambda i: bytes(480))


async def _first_then_stop(stream: AsyncIterator[Any]) -> Any:
    """What the pipeline does on barge-in: take one piece, then close the stream."""
    async with contextlib.aclosing(stream) as pieces:  # type: ignore[type-var]
        async for piece in pieces:
            return piece
    return None


async def test_the_timed_llm_closes_the_model_stream_when_the_consumer_stops_early() -> None:
    inner, timeline = Inner(), Timeline()
    timed = TimedLLM(inner, timeline, first_clause=24)  # type: ignore[arg-type]
    first = await _first_then_stop(timed.stream([], [], None))
    assert isinstance(first, TextChunk)
    assert inner.closed.is_set()  # closed by the wrapper's aclose, not by the GC later
    assert inner.pieces == 1  # nothing generated after the consumer left


async def test_the_timed_llm_closes_the_model_stream_when_the_consumer_is_cancelled() -> None:
    inner, timeline = Inner(), Timeline()
    timed = TimedLLM(inner, timeline, first_clause=24)  # type: ignore[arg-type]
    took = asyncio.Event()

    async def consume() -> None:
        stream = timed.stream([], [], None)
        try:
            async for _ in stream:
                took.set()
                await asyncio.Event().wait()  # held, like a reply waiting for its audio
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    task = asyncio.create_task(consume())
    await took.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert inner.closed.is_set()
    assert inner.pieces == 1


async def test_the_timed_tts_closes_the_synthesis_when_the_consumer_stops_early() -> None:
    inner, timeline = Inner(), Timeline()
    timed = TimedTTS(inner, timeline)  # type: ignore[arg-type]
    assert await _first_then_stop(timed.synthesize("Hello.")) == bytes(480)
    assert inner.closed.is_set()
    assert inner.pieces == 1
    assert [call[0] for call in timeline.calls] == ["tts_first_chunk"]
