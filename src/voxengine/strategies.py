"""Engine modes as configurations of one pipeline.

Every mode reads the same provider event stream and delivers it to the same
:class:`~voxengine.bus.EventBus`; modes differ only in what bookkeeping runs
between the socket and the application's handlers:

* ``fast`` (:class:`FastLaneStrategy`): nothing — events go straight to handlers.
* ``provider`` (:class:`ProviderStrategy`): conversation history and usage/latency
  metrics.
* ``big``: the same lane as ``provider`` — one class, :class:`ProviderStrategy`, in
  a second configuration (``BigLaneStrategy`` is that class under its promised name).
  What makes a "big" engine (local VAD, tools, failover, transcripts) is set on
  :class:`~voxengine.VoiceEngineConfig` (the presets do it), not by a second copy of
  the event path; the mode name is kept for the configs and presets that use it.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from inspect import isawaitable
from typing import ClassVar, final

from voxengine.bus import EventBus
from voxengine.events import AudioDelta, Event, SessionClosed
from voxengine.metrics import SessionMetrics
from voxengine.providers.base import BaseProvider
from voxengine.session.history import ConversationHistory

__all__ = ["BaseStrategy", "BigLaneStrategy", "FastLaneStrategy", "ProviderStrategy"]

logger = logging.getLogger("voxengine.strategies")


class BaseStrategy(abc.ABC):
    """Pumps a provider's events through observers into an event bus.

    ``on_closed`` sees the provider's final :class:`SessionClosed` first; if it returns
    True the event is withheld from the bus (the engine is failing over).

    ``extra_observers`` see every event after the mode's own observers. When
    ``audio_observers`` is given, assistant audio (:class:`AudioDelta`, 50 events a
    second) goes to those instead of ``extra_observers``: a live sequence (the engine's
    playback, present only while an output device is open), so that a mode without
    audio bookkeeping hands audio from the socket to the bus with nothing in between.
    """

    #: The engine mode this strategy serves (``VoiceEngineConfig.mode``); a strategy
    #: serving several modes is given the name when constructed.
    mode: str
    #: Whether :attr:`history` shows the conversation.
    keeps_history: ClassVar[bool] = True

    def __init__(
        self,
        provider: BaseProvider,
        bus: EventBus,
        extra_observers: Sequence[Callable[[Event], None]] = (),
        on_closed: Callable[[SessionClosed], bool] = lambda event: False,
        *,
        mode: str | None = None,
        audio_observers: Sequence[Callable[[Event], None]] | None = None,
    ) -> None:
        if mode is not None:
            self.mode = mode
        self.provider = provider
        self.bus = bus
        self._on_closed = on_closed
        kept = provider.kept_history if self.keeps_history else None
        # Both made on first use (see the properties): a mode that keeps neither pays
        # for neither while its session is idle.
        self._history: ConversationHistory | None = kept
        self._own_history = kept is None
        self._metrics: SessionMetrics | None = None
        own = self.observers()
        self._observers: tuple[Callable[[Event], None], ...] = (*own, *extra_observers)
        #: Observers of audio: the mode's own, then the live ``audio_observers``.
        self._audio_observers = own if audio_observers is not None else self._observers
        self._extra_audio_observers: Sequence[Callable[[Event], None]] = (
            audio_observers if audio_observers is not None else ()
        )
        self._task: asyncio.Task[None] | None = None
        self._running = False  # from start() until every event was delivered
        self._done: asyncio.Future[None] | None = None  # made when someone waits for that
        self._stopped = False
        #: The task awaiting async handlers, and the event type they handle.
        self._handler_task: asyncio.Task[object] | None = None
        self._handling: str | None = None

    @property
    def history(self) -> ConversationHistory:
        """The conversation: the provider's own history when it keeps one (a view: one
        copy, fed once), else this strategy's, fed by :meth:`observers` (empty in a
        mode that keeps none)."""
        history = self._history
        if history is None:
            history = self._history = ConversationHistory()
        return history

    @property
    def metrics(self) -> SessionMetrics:
        """Counters and latencies, fed by :meth:`observers` (a mode that collects none
        still counts the requests the engine marks)."""
        metrics = self._metrics
        if metrics is None:
            metrics = self._metrics = SessionMetrics(self.provider.output_format)
        return metrics

    @abc.abstractmethod
    def observers(self) -> Sequence[Callable[[Event], None]]:
        """The mode's synchronous bookkeeping, run on every event before the handlers.

        ``extra_observers`` (the engine's audio playback and barge-in) run after these.
        """

    def start(self) -> None:
        """Start delivering the current session's events.

        Providers that can push (:meth:`BaseProvider.deliver_events`) call
        :meth:`_deliver` straight from their socket reader; others are pumped from
        :meth:`BaseProvider.events` by a task.
        """
        self._running = True
        self._done = None
        self._stopped = False
        if not self.provider.deliver_events(self._deliver):
            self._task = asyncio.create_task(self._pump(), name=f"voxengine-{self.mode}-pump")

    def _deliver(self, event: Event | None) -> Awaitable[None] | None:
        """Observers, then the bus; returns what the bus left to await (async handlers)."""
        if self._stopped:
            return None
        if type(event) is AudioDelta:  # the hot path: 50 a second
            for observe in self._audio_observers:
                try:
                    observe(event)
                except Exception:
                    logger.exception("observer %r failed on %s", observe, event.type)
            for observe in self._extra_audio_observers:
                try:
                    observe(event)
                except Exception:
                    logger.exception("observer %r failed on %s", observe, event.type)
            bus = self.bus
            route = bus.audio_route
            if route is None:
                pending = bus.dispatch(event)
                return None if pending is None else self._await_handlers(event, pending)
            for index, sub in enumerate(route):  # bus.dispatch's loop, for plain handlers
                if not sub.active:
                    continue
                try:
                    result = sub.handler(event)
                except Exception:
                    bus.handler_failed(sub, event)
                    continue
                if result is not None and isawaitable(result):
                    rest = bus.continue_dispatch(event, route, index, result)
                    return self._await_handlers(event, rest)
            return None
        if event is None:
            self._finish()
            return None
        for observe in self._observers:
            try:
                observe(event)
            except Exception:  # a bookkeeping bug must not stop the conversation
                logger.exception("observer %r failed on %s", observe, event.type)
        if isinstance(event, SessionClosed) and self._on_closed(event):
            self._finish()  # the engine takes over (failover); no close for the app
            return None
        pending = self.bus.dispatch(event)
        return None if pending is None else self._await_handlers(event, pending)

    async def _await_handlers(self, event: Event, pending: Awaitable[None]) -> None:
        """Await async handlers, noting which task does it (for :meth:`aclose`)."""
        self._handler_task = asyncio.current_task()
        self._handling = event.type
        try:
            await pending
        finally:
            self._handler_task = None
            self._handling = None

    async def _pump(self) -> None:
        try:
            async for event in self.provider.events():
                pending = self._deliver(event)
                if pending is not None:
                    await pending
                if self._stopped:
                    return
        finally:
            self._finish()

    def _finish(self) -> None:
        self._stopped = True
        self._running = False
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def _delivered(self) -> asyncio.Future[None]:
        """Done once every event was delivered (made on first need: an idle session
        keeps no future for it)."""
        done = self._done
        if done is None:
            done = self._done = asyncio.get_running_loop().create_future()
            if not self._running:
                done.set_result(None)
        return done

    async def wait_closed(self) -> None:
        """Wait until every event of the session has been delivered."""
        if self._running:
            await asyncio.shield(self._delivered())

    async def aclose(self, timeout: float = 1.0) -> tuple[str, ...]:
        """Wait up to ``timeout`` seconds for the last events to be delivered, then stop
        delivering: handlers still running are cancelled. Returns the event types whose
        handlers were cancelled."""
        if self._running:
            await asyncio.wait({self._delivered()}, timeout=timeout)
        if not self._running:
            return ()
        cancelled = (self._handling,) if self._handling is not None else ()
        logger.warning("disconnect cancelled event handler(s) still running: %s", cancelled)
        for task in (self._handler_task, self._task):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=timeout)
        self._finish()
        return cancelled


@final
class FastLaneStrategy(BaseStrategy):
    """Least work between socket and callback: no history, no metrics."""

    mode = "fast"
    keeps_history: ClassVar[bool] = False

    def observers(self) -> Sequence[Callable[[Event], None]]:
        """None."""
        return ()


class ProviderStrategy(BaseStrategy):
    """History and metrics for any registered provider; serves ``provider`` and ``big``."""

    mode = "provider"

    def observers(self) -> list[Callable[[Event], None]]:
        """History and metrics."""
        if self._own_history:
            return [self.history.observe, self.metrics.observe]
        return [self.metrics.observe]


#: The ``big`` mode's lane: :class:`ProviderStrategy` (constructed with ``mode="big"``).
BigLaneStrategy = ProviderStrategy

#: The strategy class of each engine mode; construct it with ``mode=`` the key.
STRATEGIES: dict[str, type[BaseStrategy]] = {
    "fast": FastLaneStrategy,
    "provider": ProviderStrategy,
    "big": ProviderStrategy,
}
