"""Streaming the output of blocking model code (a worker thread) into async code.

Local models (llama.cpp, Piper) produce their output from synchronous loops that hold
the CPU for milliseconds to seconds. :func:`stream_from_thread` runs such a loop in the
event loop's default executor and hands each item to the awaiting coroutine as soon as
it is made, so the event loop never blocks and the consumer sees items while the model
is still working.

Cancellation contract: closing the async iterator (``aclose``, or cancelling the task
iterating it) sets the ``stop`` event the loop receives and waits until the thread has
returned, so no model call is still running on the instance when the close returns
(a stage's work methods are never concurrent; see :mod:`..stages`). The loop must check
``stop`` between items.

Backpressure: with ``ahead``, the thread makes at most that many items more than the
consumer has taken, then waits: a consumer that stops pulling for a while (the pipeline
does while the first audio of a reply is synthesised) stops the model too, so the CPU
goes to the work that matters first.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Final, TypeVar, cast

__all__ = ["stream_from_thread"]

T = TypeVar("T")

_DONE: Final = object()


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def stream_from_thread(
    produce: Callable[[threading.Event], Iterator[T]], *, ahead: int | None = None
) -> AsyncIterator[T]:
    """Yield what ``produce(stop)`` yields, running it in a worker thread (at most
    ``ahead`` items ahead of the consumer, when given).

    An exception raised by ``produce`` is re-raised here, after the items before it.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()
    room = threading.Semaphore(ahead) if ahead else None

    def wait_for_room() -> bool:
        """False when stopped while waiting."""
        if room is None:
            return True
        while not room.acquire(timeout=0.05):
            if stop.is_set():
                return False
        return True

    def post(item: object) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def work() -> None:
        items: Iterator[T] | None = None
        try:
            items = produce(stop)
            for item in items:
                if not wait_for_room():
                    break
                post(item)
                if stop.is_set():
                    break
        except BaseException as exc:  # delivered to the consumer below
            post(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if callable(close):  # a generator: run its cleanup (locks, streams) here
                with contextlib.suppress(Exception):
                    close()
            post(_DONE)

    worker = loop.run_in_executor(None, work)
    try:
        while (item := await queue.get()) is not _DONE:
            if isinstance(item, _Failure):
                raise item.error
            if room is not None:
                room.release()
            yield cast(T, item)
    finally:
        stop.set()
        await asyncio.shield(asyncio.wait({worker}))
