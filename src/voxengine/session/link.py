"""Keeps one logical conversation alive across connections.

:class:`SessionLink` owns the current :class:`~voxengine.session.RealtimeSession` of a
provider and everything needed to survive its loss:

* **Bounded reconnects.** After an unexpected close it reconnects with exponential
  backoff (``ReconnectPolicy``), restores the conversation (the provider decides how:
  replay of items, or a resumption handle), re-applies session updates, re-sends the
  user audio of the turn in progress and what the service had not confirmed, then
  delivers the commands queued meanwhile — in the order the application issued them.
  ``max_attempts`` bounds *consecutive* failed recoveries: a recovery fails when the
  new connection cannot be opened, when it is lost while the conversation is being
  restored, or when it is lost again before it became healthy (completed a response,
  or stayed up ``healthy_after`` seconds). The backoff grows across them and honours a
  server's ``retry_after``. Giving up, authentication and configuration refusals end
  the session with a :class:`~voxengine.events.SessionClosed` carrying the typed
  failure (``error``).
* **Nothing lost silently.** Texts and tool outputs are kept until the service
  confirms them (``conversation.item.added``/``created``) and re-sent on the next
  connection if it did not; while disconnected, commands queue; queued user audio is
  bounded (``ReconnectPolicy.audio_buffer``) and what is dropped is reported with an
  :class:`~voxengine.events.AudioDropped` event. When the session ends with input
  still undelivered, an :class:`~voxengine.events.UndeliveredInput` event names it
  before the :class:`~voxengine.events.SessionClosed`. (The bookkeeping is
  :class:`~voxengine.session.ledger.InputLedger`.)
* **Watchdog.** A response that makes no progress (no output: audio, text,
  transcripts, function-call arguments, its end) for ``WatchdogPolicy.response_stall``
  seconds is reported (:class:`~voxengine.events.StallDetected`) — keep-alive traffic
  does not count — and, by default, the connection is abandoned and the response
  requested again on a new one.
* **A supervisor that never dies.** Any failure, including one while restoring, ends
  in a retry or a :class:`~voxengine.events.SessionClosed`; no exception escapes the
  background task, and :meth:`SessionLink.aclose` is bounded.
* **One ordered event stream** for the application across connections, through a
  bounded :class:`~voxengine.session.queue.EventQueue` (slow consumers lose assistant
  audio oldest-first, reported per response; nothing else is ever dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import fields, replace
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.commands import (
    Command,
    CreateResponse,
    RestoreItem,
    SendAudio,
    UpdateSession,
)
from voxengine.config import ReconnectPolicy, SessionConfig, WatchdogPolicy
from voxengine.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionClosed,
    InvalidState,
    ProviderError,
    SessionExpired,
    TransportError,
    VoxError,
)
from voxengine.events import (
    AudioDelta,
    AudioDropped,
    Event,
    InputCleared,
    InputCommitted,
    ItemAdded,
    ItemDone,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ResponseStatus,
    ResumptionUpdate,
    SessionClosed,
    StallDetected,
)
from voxengine.session.driver import EventSink, RealtimeSession, is_retryable
from voxengine.session.history import ConversationHistory
from voxengine.session.ledger import InputLedger
from voxengine.session.queue import Consumer, EventQueue

__all__ = ["SHUTDOWN_TIMEOUT", "SessionLink", "merge_session"]

logger = logging.getLogger("voxengine.providers")

#: The event classes :meth:`SessionLink._observe` acts on besides the history's.
_LINK_EVENTS: frozenset[type] = frozenset(
    {InputCommitted, InputCleared, ResumptionUpdate, ResponseDone, ItemAdded, ItemDone}
)

#: Seconds :meth:`SessionLink.aclose` waits for the supervisor after closing the
#: connection, before cancelling it (and again for it to end). With the sessions' own
#: bounded close (``CLOSE_TIMEOUT``, 3 s) a provider's ``disconnect()`` returns within
#: 5 seconds whatever the server does.
SHUTDOWN_TIMEOUT = 1.0

SessionFactory = Callable[[EventSink], RealtimeSession]
RestorePlan = Callable[[], tuple[list[Command], int]]


def merge_session(base: SessionConfig | None, update: SessionConfig) -> SessionConfig:
    """``base`` with every non-``None`` field of ``update`` applied."""
    if base is None:
        return update
    changes = {
        f.name: getattr(update, f.name)
        for f in fields(update)
        if getattr(update, f.name) is not None
    }
    return replace(base, **changes)


@final
class SessionLink:
    """Sessions, reconnection, buffering and the watchdog for one provider.

    ``acknowledged`` says whether the protocol's service confirms the items the client
    creates (OpenAI does, with ``conversation.item.added``): then texts and tool
    outputs are kept until confirmed and re-sent after a reconnect if they were not.
    Without confirmations (Gemini Live) an input counts as delivered once written.
    """

    def __init__(
        self,
        session_factory: SessionFactory,
        restore_plan: RestorePlan,
        *,
        reconnect: ReconnectPolicy,
        watchdog: WatchdogPolicy,
        queue_size: int,
        input_format: AudioFormat,
        output_format: AudioFormat,
        name: str,
        acknowledged: bool = True,
    ) -> None:
        self._factory = session_factory
        self._restore_plan = restore_plan
        self._policy = reconnect
        self._watchdog = watchdog
        self._name = name
        self.session: RealtimeSession | None = None
        self.history = ConversationHistory()
        self.resumption_handle: str | None = None
        self._queue = EventQueue(queue_size, output_format)
        self._started = False
        self._early: dict[RealtimeSession, list[Event]] = {}
        self._closed_event: SessionClosed | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._ended = False  # the supervisor finished (or is finishing)
        self._wake = asyncio.Event()  # set by aclose: ends a backoff sleep at once
        self._opening: RealtimeSession | None = None  # a reconnect attempt in progress
        self._reconnecting = False
        self._ledger = InputLedger(input_format, reconnect.audio_buffer, acknowledged)
        self._session_updates: SessionConfig | None = None
        self._reported_drops = 0.0
        self._stall_response: str | None = None
        self._failures = 0  # consecutive failed recoveries
        self._delay = reconnect.initial_delay  # the next backoff
        self._opened_at = 0.0  # monotonic time the current session became current
        self._completed_response = False  # the current session completed a response

    # -- lifecycle -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while a session is open and not being replaced."""
        session = self.session
        return session is not None and session.is_open and not self._reconnecting

    @property
    def active(self) -> bool:
        """True from :meth:`start` until the session has ended for good."""
        supervisor = self._supervisor
        return (
            supervisor is not None
            and not supervisor.done()
            and not self._closing
            and not self._ended
        )

    @property
    def reconnecting(self) -> bool:
        """True between losing a connection and restoring the conversation on a new one."""
        return self._reconnecting

    def new_session(self) -> RealtimeSession:
        """A session whose events reach this link's stream once it becomes current."""
        session = self._factory(self._on_event)
        self._early[session] = []
        return session

    def discard(self, session: RealtimeSession) -> None:
        """Forget a session that failed to open (its events never reach the stream)."""
        self._early.pop(session, None)

    def _make_current(self, session: RealtimeSession) -> None:
        self.session = session
        self._closed_event = None
        self._opened_at = time.monotonic()
        self._completed_response = False
        for event in self._early.pop(session, []):
            self._on_event(session, event)

    def start(self, session: RealtimeSession) -> None:
        """Supervise the freshly opened ``session`` (made by :meth:`new_session`)."""
        self._closing = False
        self._started = True
        self._make_current(session)
        self._supervisor = asyncio.create_task(self._supervise(), name=f"voxengine-{self._name}")

    def _on_event(self, session: RealtimeSession, event: Event) -> None:
        """The session sink: runs in the session's reader, in order, without awaiting."""
        if session is not self.session:
            early = self._early.get(session)
            if early is not None:  # not current yet: held until it opens, dropped if it fails
                early.append(event)
            return  # otherwise a replaced connection's stragglers
        if type(event) is AudioDelta:  # the hot path: no bookkeeping reads audio chunks
            self._queue.put_nowait(event)
            return
        if isinstance(event, SessionClosed):
            self._closed_event = event  # the supervisor decides what the application sees
            return
        self._observe(event)
        self._emit(event)

    async def aclose(self) -> None:
        """Close on purpose: no reconnect; the stream ends after SessionClosed.

        Bounded: the connection's close is bounded (see
        :meth:`RealtimeSession.aclose`), then the supervisor gets
        :data:`SHUTDOWN_TIMEOUT` seconds to finish before it is cancelled. Never
        raises what went wrong in the background.
        """
        self._closing = True
        self._wake.set()
        sessions = {s for s in (self._opening, self.session) if s is not None}
        if sessions:  # concurrently: each is bounded by CLOSE_TIMEOUT
            await asyncio.gather(*(s.aclose() for s in sessions), return_exceptions=True)
        supervisor = self._supervisor
        if supervisor is None or supervisor.done():
            return
        await asyncio.wait({supervisor}, timeout=SHUTDOWN_TIMEOUT)
        if not supervisor.done():
            logger.warning("%s: session supervisor did not stop in time; cancelled", self._name)
            supervisor.cancel()
            await asyncio.wait({supervisor}, timeout=SHUTDOWN_TIMEOUT)

    # -- commands ---------------------------------------------------------------------

    async def send(self, command: Command, *more: Command) -> None:
        """Deliver the commands now (together: see :meth:`RealtimeSession.send`), or
        queue them while the link is reconnecting.

        Raises:
            InvalidState: never connected, closed on purpose, or given up.
        """
        if self.session is None or self._closing or not self._started:
            raise InvalidState(f"{self._name} provider is not connected; call connect() first")
        if self._supervisor is not None and self._supervisor.done():
            raise InvalidState(f"{self._name} session has ended")
        commands = (command, *more) if more else None
        for each in commands or (command,):
            if isinstance(each, UpdateSession):
                self._session_updates = merge_session(self._session_updates, each.config)
        if self._reconnecting:
            for each in commands or (command,):
                self._queue_command(each)
            return
        try:
            await self.session.send(command, *more)
        except (InvalidState, TransportError) as exc:
            if self._closing or not self._policy.enabled:
                raise
            logger.info("%s: send failed (%s); queued for the reconnect", self._name, exc)
            for each in commands or (command,):
                self._queue_command(each)
            return
        if commands is None:
            self._ledger.delivered(command)
        else:
            for each in commands:
                self._ledger.delivered(each)

    def _queue_command(self, command: Command) -> None:
        dropped = self._ledger.queue(command)
        if dropped:
            self._emit(AudioDropped(direction="input", seconds=dropped, reason="reconnecting"))

    def _requeue_unconfirmed(self) -> None:
        """Put what the lost connection never confirmed back in front of the queue."""
        count = self._ledger.requeue_unconfirmed()
        if count:
            logger.info(
                "%s: %d input(s) not confirmed before the drop; re-sent after the reconnect",
                self._name,
                count,
            )

    # -- events ---------------------------------------------------------------------

    def _emit(self, event: Event | None) -> None:
        self._queue.put_nowait(event)

    async def events(self) -> AsyncIterator[Event]:
        """The conversation's events, across reconnects; ends after SessionClosed."""
        queue = self._queue
        if not self._started:
            raise InvalidState(f"{self._name} provider is not connected; call connect() first")
        while True:
            event = await queue.get()
            if event is None:
                queue.put_nowait(None)  # later iterators end too
                return
            yield event

    def deliver_events(self, consumer: Consumer) -> None:
        """Push the stream to ``consumer`` instead of :meth:`events` (see EventQueue)."""
        self._queue.deliver_to(consumer)

    def emit_local(self, event: Event) -> None:
        """Deliver an event the provider produced itself (e.g. Interrupted while offline)."""
        self._emit(event)

    def _observe(self, event: Event) -> None:
        self.history.observe(event)
        if type(event) not in _LINK_EVENTS:
            return
        match event:
            case InputCommitted() | InputCleared():
                self._ledger.clear_retained()
            case ResumptionUpdate(handle=handle, resumable=resumable):
                if resumable and handle:
                    self.resumption_handle = handle
            case ResponseDone(status=status):
                if status is ResponseStatus.COMPLETED:
                    self._completed_response = True
                self._report_output_drops()
            case ItemAdded() | ItemDone():
                self._ledger.confirm(event)
            case _:
                pass

    def _report_output_drops(self) -> None:
        queue = self._queue
        new = queue.dropped_audio_seconds - self._reported_drops
        if new > 0:
            self._reported_drops = queue.dropped_audio_seconds
            self._emit(AudioDropped(direction="output", seconds=new, reason="slow consumer"))

    def _report_undelivered(self, reason: str) -> None:
        """Name what never reached the service (see :class:`UndeliveredInput`)."""
        report = self._ledger.undelivered(reason, closing=self._closing)
        if report is not None:
            self._emit(report)

    # -- supervision ------------------------------------------------------------------

    async def _supervise(self) -> None:
        """Run the session to its end; whatever happens, the stream ends cleanly."""
        closed = SessionClosed(code=None, reason="disconnected")
        try:
            closed = await self._run()
        except asyncio.CancelledError:
            raise  # aclose() gave up waiting; the finally still ends the stream
        except Exception as exc:  # a bug: end the session rather than die silently
            logger.exception("%s: session supervisor failed", self._name)
            closed = SessionClosed(code=None, reason=f"internal error: {type(exc).__name__}")
        finally:
            self._ended = True  # a connect() after the stream ended starts afresh
            self._reconnecting = False
            if not self._closing:  # sockets first: nothing of it is left once reported
                for session in (self._opening, self.session):
                    if session is not None:
                        await self._close_quietly(session)
            self._report_undelivered(closed.reason)
            self._emit(closed)
            self._emit(None)

    async def _close_quietly(self, session: RealtimeSession) -> None:
        try:
            await session.aclose()
        except Exception:  # already failed; closing must not add a second failure
            logger.debug("closing a failed session raised", exc_info=True)

    async def _run(self) -> SessionClosed:
        while True:
            session = self.session
            assert session is not None
            closed = await self._pump(session)
            if self._closing:
                return closed
            failure = session.failure()
            if not self._should_reconnect(session):
                return replace(closed, error=failure) if failure is not None else closed
            self._reconnecting = True  # from here sends queue
            self._requeue_unconfirmed()
            if self._healthy():
                self._failures = 0
                self._delay = self._policy.initial_delay
            reason = closed.reason or f"connection closed (code {closed.code})"
            ended = await self._recover(reason, session, closed, failure)
            if ended is not None:
                return ended

    def _healthy(self) -> bool:
        """Whether the session just lost did its job long enough to reset the budget."""
        up = time.monotonic() - self._opened_at
        return self._completed_response or up >= self._policy.healthy_after

    async def _pump(self, session: RealtimeSession) -> SessionClosed:
        watchdog = asyncio.create_task(self._watch(session), name="voxengine-watchdog")
        try:
            await session.wait_closed()
        finally:
            watchdog.cancel()
            await asyncio.wait({watchdog})
            if not watchdog.cancelled() and watchdog.exception() is not None:
                logger.error("%s: watchdog failed", self._name, exc_info=watchdog.exception())
        return self._closed_event or SessionClosed(code=None, reason="session ended")

    def _should_reconnect(self, session: RealtimeSession) -> bool:
        if not self._policy.enabled or self._policy.max_attempts == 0:
            return False
        if self._stall_response is not None:
            self._stall_response = None
            return True  # we abandoned a stalled connection
        failure = session.failure()
        if failure is None:
            return False  # closed on our request
        return is_retryable_close(failure)

    async def _watch(self, session: RealtimeSession) -> None:
        stall = self._watchdog.response_stall
        if stall is None:
            return
        reported = False
        while True:
            await asyncio.sleep(self._watchdog.check_interval)
            tracker = session.tracker
            response_id = tracker.active_response_id
            since = max(self._opened_at, tracker.progress_at, tracker.requested_at)
            silent = time.monotonic() - since
            if not tracker.expecting_output or silent < stall:
                reported = False
                continue
            if reported:
                continue
            reported = True
            logger.warning("%s: no progress for %.1fs during a response", self._name, silent)
            self._emit(StallDetected(silent_for=silent, response_id=response_id))
            if self._watchdog.reconnect and self._policy.enabled:
                self._stall_response = response_id
                await session.aclose(code=1001, reason="client watchdog: response stalled")
                return

    async def _backoff(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; False if :meth:`aclose` interrupted the wait."""
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
        return not self._closing

    async def _open(self, session: RealtimeSession) -> None:
        """``session.open()``, abandoned at once when :meth:`aclose` is called.

        Raises:
            VoxError: as ``open()`` does; :class:`InvalidState` when closed meanwhile.
        """
        opening = asyncio.ensure_future(session.open())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({opening, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            woken.cancel()
            if not opening.done():
                opening.cancel()
                await asyncio.wait({opening})
                await self._close_quietly(session)  # open() leaves its socket when cancelled
        if opening.cancelled():
            raise InvalidState("closed while reconnecting")
        opening.result()  # raises what open() raised

    async def _recover(
        self, reason: str, lost: RealtimeSession, closed: SessionClosed, failure: VoxError | None
    ) -> SessionClosed | None:
        """Reconnect and restore; ``None`` once a new session is current, else the
        :class:`SessionClosed` that ends the link (given up, refused or closed)."""
        regenerate = lost.tracker.expecting_output
        last_error = failure
        try:
            while True:
                if self._failures >= self._policy.max_attempts:
                    message = (
                        f"gave up reconnecting after {self._failures} consecutive failed "
                        f"attempt(s): {reason}"
                    )
                    logger.error("%s: %s", self._name, message)
                    return SessionClosed(code=closed.code, reason=message, error=last_error)
                self._failures += 1
                attempt = self._failures
                delay = self._delay
                self._delay = min(max(delay * 2, 0.05), self._policy.max_delay)
                self._emit(Reconnecting(attempt=attempt, delay=delay, reason=reason))
                if not await self._backoff(delay):
                    return closed
                session = self.new_session()
                self._opening = session
                try:
                    await self._open(session)
                except VoxError as exc:
                    self.discard(session)
                    if self._closing:  # disconnect() abandoned it: not a failure
                        return closed
                    logger.warning("%s: reconnect %d failed: %s", self._name, attempt, exc)
                    last_error = exc
                    if not is_retryable(exc):
                        return SessionClosed(
                            code=None, reason=f"reconnect refused: {exc}", error=exc
                        )
                    reason = str(exc) or type(exc).__name__
                    retry_after = getattr(exc, "retry_after", None)
                    if isinstance(retry_after, int | float) and retry_after > self._delay:
                        self._delay = float(retry_after)  # the server said when
                    continue
                except BaseException:  # cancelled: leave no socket behind
                    self.discard(session)
                    await self._close_quietly(session)
                    raise
                finally:
                    self._opening = None
                if self._closing:
                    self.discard(session)
                    await self._close_quietly(session)
                    return closed
                self.session = session  # its events stay held until Reconnected is out
                self._closed_event = None
                try:
                    counts = await self._restore(session, regenerate)
                except (VoxError, OSError) as exc:
                    # Lost while restoring: a failed recovery like any other; nothing
                    # queued was consumed (see _restore).
                    self.discard(session)
                    await self._close_quietly(session)
                    if self._closing:
                        return closed
                    logger.warning(
                        "%s: connection lost while restoring (attempt %d): %s",
                        self._name,
                        attempt,
                        exc,
                    )
                    last_error = exc if isinstance(exc, VoxError) else None
                    reason = f"connection lost while restoring: {exc}"
                    continue
                restored, skipped, audio, commands = counts
                self._emit(
                    Reconnected(
                        attempt=attempt,
                        restored_items=restored,
                        skipped_items=skipped,
                        resent_audio=audio,
                        resent_commands=commands,
                    )
                )
                self._make_current(session)  # SessionReady and the rest, after Reconnected
                refused = self._ledger.refused_report()
                if refused is not None:
                    self._emit(refused)
                return None
        finally:
            self._reconnecting = False

    async def _restore(
        self, session: RealtimeSession, regenerate: bool
    ) -> tuple[int, int, float, int]:
        """Rebuild the conversation on ``session`` and deliver what is queued.

        Transactional for the queue: commands are taken from it one by one and, if the
        connection fails before the end, put back in order (with the retained audio),
        so the next attempt delivers them; the queue is empty when this returns (no
        await follows the last check). Raises what the failing send raised.
        """
        ledger = self._ledger
        plan, skipped = self._restore_plan()
        for item in plan:
            await session.send(item)
        if self._session_updates is not None:
            await session.send(UpdateSession(config=self._session_updates))
        retained = ledger.retained_audio()
        if retained:
            await session.send(SendAudio(audio=retained))
        sent: list[Command] = []
        taken: list[Command] = []  # sent or refused, in order
        try:
            while ledger.queued or regenerate:
                next_command = ledger.take()
                if next_command is None:  # everything is out: ask again for the lost response
                    regenerate = False
                    if not any(isinstance(c, CreateResponse) for c in (*plan, *sent)):
                        await session.send(CreateResponse())
                    continue  # (commands queued meanwhile go out too)
                command = next_command
                taken.append(command)
                try:
                    await session.send(command)
                except ConfigError as exc:  # this connection cannot express it: never will
                    logger.warning(
                        "%s: queued %s cannot be delivered: %s",
                        self._name,
                        type(command).__name__,
                        exc,
                    )
                    ledger.refuse(command)
                    continue
                sent.append(command)
        except BaseException:
            ledger.forget_refusals()  # the next connection tries them all again
            ledger.put_back(taken)
            raise
        ledger.clear_retained()
        audio = ledger.seconds(retained)
        if retained:
            ledger.delivered(SendAudio(audio=retained))
        commands = 0
        for command in sent:
            if isinstance(command, SendAudio):
                audio += ledger.seconds(command.audio)
            else:
                commands += 1
            ledger.delivered(command)
        restored = sum(1 for c in plan if isinstance(c, RestoreItem))
        return restored, skipped, audio, commands


def is_retryable_close(failure: VoxError) -> bool:
    """Whether a session that ended with ``failure`` may be reconnected.

    Lost connections, stalls and the session duration cap: yes. Refused credentials,
    refused configuration and quota or rate limits: no — retrying would only repeat
    the refusal (and hammer the service).
    """
    if isinstance(failure, SessionExpired):
        return True
    if isinstance(failure, AuthenticationFailed | ProviderError):
        return False
    return isinstance(failure, ConnectionClosed | TransportError)
