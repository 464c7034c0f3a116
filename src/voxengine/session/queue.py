"""A bounded event queue with a documented overload policy.

Producers (the socket reader) never wait: :meth:`EventQueue.put_nowait` always
returns at once, so a slow consumer can never stall the connection. When more than
``maxsize`` events are waiting:

* assistant audio (:class:`~voxengine.events.AudioDelta`) is dropped oldest-first
  and counted (``dropped_audio_chunks``/``dropped_audio_seconds``);
* everything else — transcripts, tool calls, errors, lifecycle events — is never
  dropped: the bound is exceeded for them rather than lose them.

Two ways to consume, one at a time per queue:

* **pull**: ``await queue.get()`` from a consumer task;
* **push** (:meth:`EventQueue.deliver_to`): the queue calls a consumer function inside
  :meth:`~EventQueue.put_nowait` itself, so an event reaches it without a task switch.
  A consumer that returns an awaitable (an async handler is still running) makes the
  queue *busy*: a drain task awaits it, and later events wait in the queue — under the
  same overload policy — until it is done, then are delivered in order. So the
  producer still never waits, and events never overtake one another.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.errors import ConfigError, InvalidState
from voxengine.events import AudioDelta, Event

__all__ = ["Consumer", "EventQueue"]

logger = logging.getLogger("voxengine.events")

Consumer = Callable[[Event | None], Awaitable[object] | None]
"""A push consumer: called with each event (``None`` = end of stream), in order.

It returns ``None`` when it is done with the event, or an awaitable that finishes
the event's delivery (the queue awaits it before delivering the next one)."""


def _kind(event: Event | None) -> str:
    # the event's type, never its repr: that would log audio payloads
    return "end of stream" if event is None else event.type


@final
class EventQueue:
    """FIFO of events (``None`` marks the end) for one consumer; see the module docstring."""

    # Slots: one of these per session (memory per idle session).
    __slots__ = (
        "_audio",
        "_busy",
        "_consumer",
        "_drainer",
        "_format",
        "_items",
        "_maxsize",
        "_waiter",
        "dropped_audio_chunks",
        "dropped_audio_seconds",
    )

    def __init__(self, maxsize: int = 2000, audio_format: AudioFormat | None = None) -> None:
        if maxsize < 1:
            raise ConfigError("maxsize must be >= 1")
        self._maxsize = maxsize
        self._format = audio_format
        # made on first use: a pushing queue rarely holds anything, and an empty
        # deque takes 760 bytes per session
        self._items: deque[Event | None] | None = None
        self._audio = 0  # AudioDelta entries waiting
        self._waiter: asyncio.Future[None] | None = None
        self._consumer: Consumer | None = None
        self._busy = False  # the push consumer is handling an event
        self._drainer: asyncio.Task[None] | None = None
        self.dropped_audio_chunks = 0
        self.dropped_audio_seconds = 0.0

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else 0

    def put_nowait(self, event: Event | None) -> None:
        """Queue ``event`` (``None`` = end of stream); never blocks, may drop old audio.

        With a push consumer that is idle, the event is handed to it right here.
        """
        consumer = self._consumer
        if consumer is not None and not self._busy and not self._items:
            # _push and _call inlined for the usual case: a synchronous consumer that
            # queued nothing meanwhile (one event per 20 ms of audio comes this way).
            self._busy = True
            try:
                pending = consumer(event)
            except Exception:  # the consumer's bug must not reach the producer
                logger.exception("event consumer failed on %s", _kind(event))
                pending = None
            if pending is None and not self._items:
                self._busy = False
                return
            self._resume(pending)
            return
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(event)
        if isinstance(event, AudioDelta):
            self._audio += 1
        if len(items) > self._maxsize and self._audio:
            self._drop_oldest_audio()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _drop_oldest_audio(self) -> None:
        items = self._items
        assert items is not None
        for index, item in enumerate(items):
            if isinstance(item, AudioDelta):
                del items[index]
                self._audio -= 1
                self.dropped_audio_chunks += 1
                if self._format is not None:
                    self.dropped_audio_seconds += self._format.duration(len(item.audio))
                return

    def deliver_to(self, consumer: Consumer) -> None:
        """Push every event to ``consumer`` from now on (see the module docstring).

        Events already queued are delivered from a task soon after, not inside this
        call. Must be called from the event loop's thread.

        Raises:
            InvalidState: a consumer is already attached, or a task is in :meth:`get`.
        """
        if self._consumer is not None or self._waiter is not None:
            raise InvalidState("this event queue already has a consumer")
        self._consumer = consumer
        if self._items:
            self._busy = True
            self._drainer = asyncio.get_running_loop().create_task(self._drain(None))

    @property
    def pushing(self) -> bool:
        """True while a push consumer is attached."""
        return self._consumer is not None

    def _call(self, event: Event | None) -> Awaitable[object] | None:
        assert self._consumer is not None
        try:
            return self._consumer(event)
        except Exception:  # the consumer's bug must not reach the producer (the socket)
            logger.exception("event consumer failed on %s", _kind(event))
            return None

    def _pop(self) -> Event | None:
        items = self._items
        assert items is not None
        item = items.popleft()
        if not items:
            self._items = None  # an empty deque is 760 bytes: made again when needed
        if isinstance(item, AudioDelta):
            self._audio -= 1
        return item

    def _resume(self, pending: Awaitable[object] | None) -> None:
        """Continue a push (busy) after the consumer returned ``pending`` for an event."""
        while True:
            if pending is not None:  # stay busy until the drain task has finished it
                self._drainer = asyncio.get_running_loop().create_task(self._drain(pending))
                return
            if not self._items:
                break
            pending = self._call(self._pop())
        self._busy = False

    async def _drain(self, pending: Awaitable[object] | None) -> None:
        try:
            while True:
                if pending is not None:
                    try:
                        await pending
                    except Exception:
                        logger.exception("event consumer failed")
                if not self._items:
                    return
                pending = self._call(self._pop())
        finally:
            self._busy = False
            self._drainer = None

    async def drained(self) -> None:
        """Wait until the push consumer has finished every event queued so far."""
        while self._drainer is not None:
            await asyncio.shield(self._drainer)

    async def get(self) -> Event | None:
        """The next event, waiting if none is queued.

        Raises:
            InvalidState: a push consumer is attached.
        """
        if self._consumer is not None:
            raise InvalidState("this event queue pushes to a consumer; get() is not available")
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pop()
