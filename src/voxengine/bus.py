"""Event dispatch for applications: subscribe by class, iterate, wait.

Handlers are keyed by event class; subscribing to a base class receives its
subclasses, so ``bus.on(BaseEvent, fn)`` (or ``bus.on(ANY, fn)``) is the wildcard.
Handlers run on the event loop, one event at a time, in priority order (higher
first, then subscription order); a coroutine handler is awaited before the next
handler runs, so every handler sees events in order. A handler that raises is
logged and counted in :attr:`EventBus.handler_errors`; the others still run.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, final

from voxengine.errors import EventTimeout, InvalidState
from voxengine.events import AudioDelta, BaseEvent, Event, SessionClosed
from voxengine.session.queue import EventQueue

__all__ = ["ANY", "EventBus", "Handler", "Subscription"]

logger = logging.getLogger("voxengine.bus")

E = TypeVar("E", bound=BaseEvent)
Handler = Callable[[Any], Awaitable[object] | object]

#: Subscribe to this to receive every event.
ANY = BaseEvent


@dataclass(eq=False, slots=True)
class Subscription:
    """A registered handler; pass it (or the handler) to :meth:`EventBus.off`."""

    event_types: tuple[type[BaseEvent], ...]
    handler: Handler
    priority: int = 0
    filter: Callable[[Any], bool] | None = None
    once: bool = False
    order: int = 0
    active: bool = field(default=True)


@final
class EventBus:
    """Ordered, class-keyed event dispatch with history and async iteration.

    Args:
        history_size: how many recent events :attr:`history` keeps.
        stream_size: bound of each :meth:`stream`'s backlog; a stream that falls
            further behind loses assistant audio oldest-first, never other events
            (see :mod:`voxengine.session.queue`).
        waitable: whether :meth:`wait_for` may wait now; a bus that belongs to a
            session that is not open yet (the engine's, before ``connect()``) is made
            with ``False`` and becomes waitable at :meth:`reopen`.
    """

    # Slots: one of these per session (memory per idle session).
    __slots__ = (
        "_by_type",
        "_closed",
        "_counter",
        "_history",
        "_history_size",
        "_stream_size",
        "_streams",
        "_subs",
        "_waitable",
        "audio_route",
        "handler_errors",
        "on_change",
    )

    def __init__(
        self, history_size: int = 1000, stream_size: int = 2000, *, waitable: bool = True
    ) -> None:
        self._subs: list[Subscription] = []
        self._by_type: dict[type[BaseEvent], tuple[Subscription, ...]] = {}
        self._counter = 0
        # a list trimmed in batches, not a deque: a session's bus holds a handful of
        # events, and an empty deque alone takes 760 bytes
        self._history: list[Event] = []
        self._history_size = max(0, history_size)
        self._streams: tuple[EventQueue, ...] = ()  # rebuilt when a stream opens or ends
        self._stream_size = stream_size
        self._closed = False
        self._waitable = waitable
        self.handler_errors = 0
        #: The subscriptions of :class:`AudioDelta`, in dispatch order, while every one
        #: is plain (no filter, not once) and no stream is open; else ``None``. A
        #: consumer may then call them itself, as :meth:`dispatch` would (checking
        #: ``active``, reporting failures with :meth:`handler_failed`, handing an
        #: awaitable result to :meth:`continue_dispatch`): the audio path's shortcut.
        self.audio_route: tuple[Subscription, ...] | None = ()
        #: Called after the subscriptions or the open streams changed (``audio_route`` is
        #: then up to date); ``None``: nobody asks.
        self.on_change: Callable[[], None] | None = None

    # -- subscription ---------------------------------------------------------------

    def on(
        self,
        event_type: type[BaseEvent] | tuple[type[BaseEvent], ...],
        handler: Handler,
        *,
        priority: int = 0,
        filter: Callable[[Any], bool] | None = None,
        once: bool = False,
    ) -> Subscription:
        """Call ``handler(event)`` for events of ``event_type`` (a class or tuple of classes).

        Raises:
            TypeError: if ``event_type`` is not an event class or ``handler`` not callable.
        """
        types = event_type if isinstance(event_type, tuple) else (event_type,)
        for t in types:
            if not (isinstance(t, type) and issubclass(t, BaseEvent)):
                raise TypeError(f"subscribe to event classes (e.g. AudioDelta), not {t!r}")
        if not callable(handler):
            raise TypeError("handler must be callable")
        self._counter += 1
        sub = Subscription(types, handler, priority, filter, once, self._counter)
        self._subs.append(sub)
        self._subs.sort(key=lambda s: (-s.priority, s.order))
        self._changed()
        return sub

    def once(
        self,
        event_type: type[BaseEvent] | tuple[type[BaseEvent], ...],
        handler: Handler,
        *,
        priority: int = 0,
        filter: Callable[[Any], bool] | None = None,
    ) -> Subscription:
        """Like :meth:`on`, but the handler is removed after its first call."""
        return self.on(event_type, handler, priority=priority, filter=filter, once=True)

    def off(self, target: Subscription | Handler) -> int:
        """Remove a subscription, or every subscription of a handler; returns how many."""
        before = len(self._subs)
        for s in self._subs:
            if s is target or s.handler == target:
                s.active = False
        self._remove_inactive()
        return before - len(self._subs)

    # -- dispatch -------------------------------------------------------------------

    @property
    def history(self) -> list[Event]:
        """Recent events (audio chunks excepted), oldest first."""
        size = self._history_size
        return self._history[-size:] if size else []

    def _handlers_for(self, kind: type[BaseEvent]) -> tuple[Subscription, ...]:
        subs = self._by_type.get(kind)
        if subs is None:
            subs = tuple(s for s in self._subs if issubclass(kind, s.event_types))
            self._by_type[kind] = subs
        return subs

    async def emit(self, event: Event) -> None:
        """Deliver ``event`` to history, streams and matching handlers, in that order.

        Audio chunks are not kept in :attr:`history` (they would pin megabytes per
        session); streams and handlers get them.
        """
        pending = self.dispatch(event)
        if pending is not None:
            await pending

    def dispatch(self, event: Event) -> Awaitable[None] | None:
        """:meth:`emit` without a coroutine while the handlers are synchronous.

        Runs handlers until one returns an awaitable; then returns an awaitable that
        waits for it and runs the remaining handlers (the caller must await it before
        dispatching the next event). Returns ``None`` when every handler is done.
        """
        if not isinstance(event, AudioDelta):
            history = self._history
            history.append(event)
            if len(history) > 2 * self._history_size:
                del history[: len(history) - self._history_size]
        for queue in self._streams:
            queue.put_nowait(event)
        subs = self._by_type.get(type(event)) or self._handlers_for(type(event))
        for index, sub in enumerate(subs):
            if sub.filter is None and not sub.once:
                # _run inlined for a plain subscription (the audio path's handlers)
                if not sub.active:
                    continue
                try:
                    result = sub.handler(event)
                except Exception:
                    self._failed(sub, event)
                    continue
                if result is None or not inspect.isawaitable(result):
                    continue
                pending: Awaitable[object] | None = self._guard(sub, event, result)
            else:
                pending = self._run(sub, event)
            if pending is not None:
                return self._finish(event, pending, subs[index + 1 :])
        if isinstance(event, SessionClosed):
            self.close()
        return None

    def _run(self, sub: Subscription, event: Event) -> Awaitable[object] | None:
        """Call one handler; returns what it left to await (errors are logged)."""
        if not sub.active or (sub.filter is not None and not sub.filter(event)):
            return None
        if sub.once:
            sub.active = False
            self._remove_inactive()
        try:
            result = sub.handler(event)
        except Exception:
            self._failed(sub, event)
            return None
        if result is not None and inspect.isawaitable(result):
            return self._guard(sub, event, result)
        return None

    async def _guard(self, sub: Subscription, event: Event, result: Awaitable[object]) -> None:
        try:
            await result
        except Exception:
            self._failed(sub, event)

    def _failed(self, sub: Subscription, event: Event) -> None:
        self.handler_errors += 1
        logger.exception("event handler %r failed on %s", sub.handler, event.type)

    async def _finish(
        self, event: Event, pending: Awaitable[object], rest: tuple[Subscription, ...]
    ) -> None:
        await pending
        for sub in rest:
            more = self._run(sub, event)
            if more is not None:
                await more
        if isinstance(event, SessionClosed):
            self.close()

    def _remove_inactive(self) -> None:
        self._subs = [s for s in self._subs if s.active]
        self._changed()

    def _changed(self) -> None:
        """Subscriptions or streams changed: forget the per-class lists, redo the route."""
        self._by_type.clear()
        self.audio_route = self.plain_route(AudioDelta)
        if self.on_change is not None:
            self.on_change()

    def plain_route(self, event_type: type[BaseEvent]) -> tuple[Subscription, ...] | None:
        """The subscriptions of ``event_type``, in dispatch order, while every one is
        plain (no filter, not once) and no stream is open; else ``None`` (what
        :attr:`audio_route` holds for :class:`AudioDelta`)."""
        subs = self._handlers_for(event_type)
        plain = not self._streams and all(s.filter is None and not s.once for s in subs)
        return subs if plain else None

    def continue_dispatch(
        self,
        event: Event,
        subs: tuple[Subscription, ...],
        index: int,
        result: Awaitable[object],
    ) -> Awaitable[None]:
        """What :meth:`dispatch` returns when ``subs[index]`` (of ``audio_route``, called
        by a consumer itself) returned the awaitable ``result``: it awaits it, then runs
        the handlers after it. The caller awaits it before the next event."""
        return self._finish(event, self._guard(subs[index], event, result), subs[index + 1 :])

    def handler_failed(self, sub: Subscription, event: Event) -> None:
        """Count and log the exception being handled, raised by ``sub``'s handler."""
        self._failed(sub, event)

    def close(self) -> None:
        """End every :meth:`stream` after the events already queued."""
        self._closed = True
        self._waitable = False
        for queue in self._streams:
            queue.put_nowait(None)

    def reopen(self) -> None:
        """Allow new streams (and waits) when a session opens or reopens."""
        self._closed = False
        self._waitable = True

    # -- consumption ----------------------------------------------------------------

    async def stream(self, *event_types: type[BaseEvent]) -> AsyncIterator[Event]:
        """Iterate future events (of ``event_types``, default all) until the session closes."""
        if self._closed:
            raise InvalidState("the session is closed; connect() again first")
        queue = EventQueue(self._stream_size)
        self._streams = (*self._streams, queue)
        self._changed()
        types = event_types or (BaseEvent,)
        try:
            while (event := await queue.get()) is not None:
                if isinstance(event, types):
                    yield event
        finally:
            self._streams = tuple(q for q in self._streams if q is not queue)
            self._changed()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self.stream()

    async def wait_for(
        self,
        event_type: type[E],
        *,
        timeout: float | None = None,
        filter: Callable[[E], bool] | None = None,
    ) -> E:
        """Wait for the next event of ``event_type`` (matching ``filter``).

        Raises:
            EventTimeout: (a :class:`TimeoutError`) if none arrives within ``timeout``
                seconds.
            InvalidState: at once if the session is not open (before ``connect()`` or
                after it closed), or when it closes first.
        """
        if not self._waitable:
            raise InvalidState(
                f"cannot wait for {event_type.__name__}: the session is not open "
                "(call connect() first, or wait inside 'async with engine:')"
            )
        future: asyncio.Future[E] = asyncio.get_running_loop().create_future()

        def resolve(event: Any) -> None:
            if not future.done():
                future.set_result(event)

        def closed(event: Any) -> None:
            if not future.done():
                future.set_exception(InvalidState(f"session closed before {event_type.__name__}"))

        sub = self.on(event_type, resolve, filter=filter, priority=1_000_000)
        close_sub = (
            None if issubclass(SessionClosed, event_type) else self.on(SessionClosed, closed)
        )
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise EventTimeout(f"no {event_type.__name__} within {timeout:g} s") from None
        finally:
            self.off(sub)
            if close_sub is not None:
                self.off(close_sub)
