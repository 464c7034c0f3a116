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
  requested again on a new one (:mod:`~voxengine.session.watchdog`: a timer, armed
  only while a response is expected).
* **A supervisor that never dies.** Any failure, including one while restoring, ends
  in a retry or a :class:`~voxengine.events.SessionClosed`; no exception escapes the
  background task, and :meth:`SessionLink.aclose` is bounded. The task runs only once
  the connection has closed (the session's close callback starts it): an open session
  has no task of its own.
* **One ordered event stream** for the application across connections, through a
  bounded :class:`~voxengine.session.queue.EventQueue` (slow consumers lose assistant
  audio oldest-first, reported per response; nothing else is ever dropped). How
  commands and events take the current connection is
  :class:`~voxengine.session.relay.Relay`'s part, which this class extends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.commands import Command, CreateResponse, RestoreItem, SendAudio, UpdateSession
from voxengine.config import ReconnectPolicy, WatchdogPolicy
from voxengine.errors import ConfigError, InvalidState, VoxError
from voxengine.events import Reconnected, Reconnecting, SessionClosed, StallDetected
from voxengine.session.driver import RealtimeSession
from voxengine.session.failures import is_retryable, is_retryable_close
from voxengine.session.history import HistoryEntry
from voxengine.session.relay import Relay, SessionFactory, merge_session
from voxengine.session.watchdog import Watchdog

__all__ = ["SHUTDOWN_TIMEOUT", "SessionLink", "is_retryable_close", "merge_session"]

logger = logging.getLogger("voxengine.providers")

#: Seconds :meth:`SessionLink.aclose` waits for the supervisor after closing the
#: connection, before cancelling it (and again for it to end). With the sessions' own
#: bounded close (``CLOSE_TIMEOUT``, 3 s) a provider's ``disconnect()`` returns within
#: 5 seconds whatever the server does.
SHUTDOWN_TIMEOUT = 1.0

#: The commands that rebuild the conversation (given the link's history) on a new
#: connection, and how many entries could not be restored.
RestorePlan = Callable[[list[HistoryEntry]], tuple[list[Command], int]]


@final
class SessionLink(Relay):
    """Sessions, reconnection, buffering and the watchdog for one provider.

    The way commands and events take is :class:`~voxengine.session.relay.Relay`'s;
    this class supervises the current session (see the module docstring).
    """

    __slots__ = (
        "_abandoning",
        "_delay",
        "_ended",
        "_failures",
        "_opened_at",
        "_opening",
        "_restore_plan",
        "_stall_response",
        "_supervisor",
        "_wake",
        "_watchdog",
        "_watching",
    )

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
        super().__init__(
            session_factory,
            reconnect=reconnect,
            queue_size=queue_size,
            input_format=input_format,
            output_format=output_format,
            name=name,
            acknowledged=acknowledged,
        )
        self._restore_plan = restore_plan
        self._watchdog = watchdog
        #: Runs only after the current session closed: to reconnect, or to end the stream.
        self._supervisor: asyncio.Task[None] | None = None
        self._watching: Watchdog | None = None  # the current session's, while it is open
        self._ended = False  # the stream ended (or is ending) for good
        self._wake: asyncio.Future[None] | None = None  # set by aclose: ends waits at once
        self._opening: RealtimeSession | None = None  # a reconnect attempt in progress
        self._stall_response: str | None = None
        self._abandoning: asyncio.Task[None] | None = None  # closing a stalled connection
        self._failures = 0  # consecutive failed recoveries
        self._delay = reconnect.initial_delay  # the next backoff
        self._opened_at = 0.0  # monotonic time the current session became current

    # -- lifecycle -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while a session is open and not being replaced."""
        session = self.session
        return session is not None and session.is_open and not self._reconnecting

    @property
    def active(self) -> bool:
        """True from :meth:`start` until the session has ended for good."""
        return self._started and not self._over and not self._closing and not self._ended

    def _make_current(self, session: RealtimeSession) -> None:
        self._set_current(session)
        self._opened_at = time.monotonic()
        self._completed_response = False
        self._release_early(session)

    def start(self, session: RealtimeSession) -> None:
        """Supervise the freshly opened ``session`` (made by :meth:`new_session`)."""
        self._closing = False
        self._started = True
        self._ended = False
        self._make_current(session)
        self._over = False
        self._supervisor = None
        if not self._watch(session):  # already gone: supervise its end now
            self._session_lost()

    def _watch(self, session: RealtimeSession) -> bool:
        """Watch the current ``session`` until it closes: its watchdog (a timer, armed
        only while a response is expected) and a close callback that starts the
        supervisor task. While a session is open nothing else runs for it (no task
        waits for the close: memory per idle session). False, with nothing started,
        when ``session`` has already closed."""
        watchdog = Watchdog(session.tracker, self._watchdog, self._opened_at, self._on_stall)
        if not session.call_when_closed(self._session_lost):
            return False
        watchdog.start()
        self._watching = watchdog
        return True

    def _session_lost(self) -> None:
        """The watched session closed: the supervisor decides what follows."""
        session = self.session
        assert session is not None
        task = asyncio.get_running_loop().create_task(
            self._supervise(session), name=f"voxengine-{self._name}"
        )
        self._supervisor = task
        task.add_done_callback(self._supervisor_done)

    def _supervisor_done(self, task: asyncio.Task[None]) -> None:
        if task is self._supervisor and self._ended:
            self._over = True

    def _woken(self) -> asyncio.Future[None]:
        """Done once :meth:`aclose` was called (made on first need)."""
        if self._wake is None:
            self._wake = asyncio.get_running_loop().create_future()
            if self._closing:
                self._wake.set_result(None)
        return self._wake

    async def aclose(self) -> None:
        """Close on purpose: no reconnect; the stream ends after SessionClosed.

        Bounded: the connection's close is bounded (see
        :meth:`RealtimeSession.aclose`), then the supervisor gets
        :data:`SHUTDOWN_TIMEOUT` seconds to finish before it is cancelled. Never
        raises what went wrong in the background.
        """
        self._closing = True
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)
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

    async def _supervise(self, lost: RealtimeSession) -> None:
        """After ``lost`` closed: reconnect, or end the stream cleanly, whatever happens."""
        closed = SessionClosed(code=None, reason="disconnected")
        recovered = False
        try:
            ended = await self._run(lost)
            if ended is None:
                recovered = True  # a new session is current and watched
                return
            closed = ended
        except asyncio.CancelledError:
            raise  # aclose() gave up waiting; the finally still ends the stream
        except Exception as exc:  # a bug: end the session rather than die silently
            logger.exception("%s: session supervisor failed", self._name)
            closed = SessionClosed(code=None, reason=f"internal error: {type(exc).__name__}")
        finally:
            if not recovered:
                await self._end(closed)

    async def _end(self, closed: SessionClosed) -> None:
        """End the stream for good with ``closed``."""
        self._ended = True  # a connect() after the stream ended starts afresh
        self._reconnecting = False
        watchdog, self._watching = self._watching, None
        if watchdog is not None:
            watchdog.stop()
        session = self.session
        if session is not None:
            session.call_when_closed(None)
        if not self._closing:  # sockets first: nothing of it is left once reported
            for session in (self._opening, self.session):
                if session is not None:
                    await self._close_quietly(session)
        self._report_undelivered(closed.reason)
        self._emit(closed)
        self._emit(None)
        self._over = True  # the task ends here (the done callback covers a cancel)

    async def _close_quietly(self, session: RealtimeSession) -> None:
        try:
            await session.aclose()
        except Exception:  # already failed; closing must not add a second failure
            logger.debug("closing a failed session raised", exc_info=True)

    async def _run(self, session: RealtimeSession) -> SessionClosed | None:
        """What follows the close of ``session``: ``None`` once a new session is current
        and watched, else the :class:`SessionClosed` that ends the stream."""
        while True:
            closed = await self._unwatch()
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
            current = self.session
            assert current is not None
            if self._watch(current):
                return None
            session = current  # it closed while being restored: supervise that too

    def _healthy(self) -> bool:
        """Whether the session just lost did its job long enough to reset the budget."""
        up = time.monotonic() - self._opened_at
        return self._completed_response or up >= self._policy.healthy_after

    async def _unwatch(self) -> SessionClosed:
        """Stop watching the session that closed; its close event."""
        watchdog, self._watching = self._watching, None
        if watchdog is not None:
            watchdog.stop()
        abandoning, self._abandoning = self._abandoning, None
        if abandoning is not None:
            abandoning.cancel()
            await asyncio.wait({abandoning})
            if not abandoning.cancelled() and abandoning.exception() is not None:
                logger.error(
                    "%s: closing a stalled connection failed",
                    self._name,
                    exc_info=abandoning.exception(),
                )
        return self._closed_event or SessionClosed(code=None, reason="session ended")

    def _on_stall(self, silent: float, response_id: str | None) -> bool:
        """The watchdog's report (on the current session); True when the stalled
        connection is abandoned."""
        session = self.session
        assert session is not None
        logger.warning("%s: no progress for %.1fs during a response", self._name, silent)
        self._emit(StallDetected(silent_for=silent, response_id=response_id))
        if not (self._watchdog.reconnect and self._policy.enabled):
            return False
        self._stall_response = response_id
        self._abandoning = asyncio.create_task(
            session.aclose(code=1001, reason="client watchdog: response stalled"),
            name="voxengine-watchdog-close",
        )
        return True

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

    async def _backoff(self, delay: float) -> bool:
        """Sleep ``delay`` seconds; False if :meth:`aclose` interrupted the wait."""
        if delay > 0:
            await asyncio.wait({self._woken()}, timeout=delay)
        return not self._closing

    async def _open(self, session: RealtimeSession) -> None:
        """``session.open()``, abandoned at once when :meth:`aclose` is called.

        Raises:
            VoxError: as ``open()`` does; :class:`InvalidState` when closed meanwhile.
        """
        opening = asyncio.ensure_future(session.open())
        try:
            await asyncio.wait({opening, self._woken()}, return_when=asyncio.FIRST_COMPLETED)
        finally:
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
                self._set_current(session)  # its events stay held until Reconnected is out
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
        plan, skipped = self._restore_plan(self.history.entries)
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
