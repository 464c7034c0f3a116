"""Keeps one logical conversation alive across connections.

:class:`SessionLink` owns the current :class:`~voxengine.session.RealtimeSession` of a
provider and everything needed to survive its loss:

* **Reconnect.** After an unexpected close it reconnects with exponential backoff
  (``ReconnectPolicy``), restores the conversation (the provider decides how: replay
  of items, or a resumption handle), re-applies session updates, re-sends the user
  audio of the turn in progress, then delivers the commands queued meanwhile — in
  the order the application issued them. Authentication and configuration refusals
  end the session instead of retrying.
* **Bounded buffering.** While disconnected, commands queue; queued user audio is
  bounded (``ReconnectPolicy.audio_buffer``) and what is dropped is reported with an
  :class:`~voxengine.events.AudioDropped` event, never silently.
* **Watchdog.** A response that goes silent for ``WatchdogPolicy.response_stall``
  seconds is reported (:class:`~voxengine.events.StallDetected`) and, by default, the
  connection is abandoned and the response requested again on a new one.
* **One ordered event stream** for the application across connections, through a
  bounded :class:`~voxengine.event_queue.EventQueue` (slow consumers lose assistant
  audio oldest-first, reported per response; nothing else is ever dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import fields, replace
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.commands import (
    ClearAudio,
    Command,
    CommitAudio,
    CreateResponse,
    RestoreItem,
    SendAudio,
    UpdateSession,
)
from voxengine.config import ReconnectPolicy, SessionConfig, WatchdogPolicy
from voxengine.errors import (
    AuthenticationFailed,
    ConnectionClosed,
    InvalidState,
    ProviderError,
    SessionExpired,
    TransportError,
    VoxError,
)
from voxengine.event_queue import Consumer, EventQueue
from voxengine.events import (
    AudioDelta,
    AudioDropped,
    Event,
    InputCleared,
    InputCommitted,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ResumptionUpdate,
    SessionClosed,
    StallDetected,
)
from voxengine.history import ConversationHistory
from voxengine.session import RealtimeSession, is_retryable

__all__ = ["SessionLink", "merge_session"]

logger = logging.getLogger("voxengine.providers")

#: The event classes :meth:`SessionLink._observe` acts on besides the history's.
_LINK_EVENTS: frozenset[type] = frozenset(
    {InputCommitted, InputCleared, ResumptionUpdate, ResponseDone}
)

SessionFactory = Callable[[], RealtimeSession]
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
    """Sessions, reconnection, buffering and the watchdog for one provider."""

    def __init__(
        self,
        session_factory: SessionFactory,
        restore_plan: RestorePlan,
        *,
        reconnect: ReconnectPolicy,
        watchdog: WatchdogPolicy,
        queue_size: int,
        output_format: AudioFormat,
        name: str,
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
        self._reconnecting = False
        self._pending: deque[Command] = deque()
        self._pending_audio_seconds = 0.0
        self._retained: deque[bytes] = deque()  # delivered audio of the turn in progress
        self._retained_bytes = 0
        self._session_updates: SessionConfig | None = None
        self._reported_drops = 0.0
        self._stall_response: str | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """True while a session is open and not being replaced."""
        session = self.session
        return session is not None and session.is_open and not self._reconnecting

    @property
    def reconnecting(self) -> bool:
        """True between losing a connection and restoring the conversation on a new one."""
        return self._reconnecting

    def new_session(self) -> RealtimeSession:
        """A session whose events reach this link's stream once it becomes current."""
        session = self._factory()
        self._early[session] = []
        session.sink = functools.partial(self._on_event, session)
        return session

    def discard(self, session: RealtimeSession) -> None:
        """Forget a session that failed to open (its events never reach the stream)."""
        self._early.pop(session, None)

    def _make_current(self, session: RealtimeSession) -> None:
        self.session = session
        self._closed_event = None
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
        """Close on purpose: no reconnect; the stream ends after SessionClosed."""
        self._closing = True
        if self.session is not None:
            await self.session.aclose()
        if self._supervisor is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor

    # -- commands ---------------------------------------------------------------------

    async def send(self, command: Command) -> None:
        """Deliver ``command`` now, or queue it while the link is reconnecting.

        Raises:
            InvalidState: never connected, closed on purpose, or given up.
        """
        if self.session is None or self._closing or not self._started:
            raise InvalidState(f"{self._name} provider is not connected; call connect() first")
        if self._supervisor is not None and self._supervisor.done():
            raise InvalidState(f"{self._name} session has ended")
        if isinstance(command, UpdateSession):
            self._session_updates = merge_session(self._session_updates, command.config)
        if self._reconnecting:
            self._queue_command(command)
            return
        try:
            await self.session.send(command)
        except (InvalidState, TransportError) as exc:
            if self._closing or not self._policy.enabled:
                raise
            logger.info("%s: send failed (%s); queued for the reconnect", self._name, exc)
            self._queue_command(command)
            return
        self._delivered(command)

    def _delivered(self, command: Command) -> None:
        if isinstance(command, SendAudio):
            # per outgoing chunk: counted in bytes, converted to seconds only when read
            self._retained.append(command.audio)
            self._retained_bytes += len(command.audio)
            assert self.session is not None
            limit = self._policy.audio_buffer * self.session.protocol.input_format.bytes_per_second
            while self._retained and self._retained_bytes > limit:
                old = self._retained.popleft()  # delivered already: trimming loses nothing
                self._retained_bytes -= len(old)
        elif isinstance(command, CommitAudio | ClearAudio):
            self._clear_retained()

    def _clear_retained(self) -> None:
        self._retained.clear()
        self._retained_bytes = 0

    def _queue_command(self, command: Command) -> None:
        self._pending.append(command)
        if not isinstance(command, SendAudio):
            return
        self._pending_audio_seconds += self._seconds(command.audio)
        dropped = 0.0
        while self._pending_audio_seconds > self._policy.audio_buffer:
            for index, queued in enumerate(self._pending):
                if isinstance(queued, SendAudio):
                    del self._pending[index]
                    seconds = self._seconds(queued.audio)
                    self._pending_audio_seconds -= seconds
                    dropped += seconds
                    break
        if dropped:
            self._emit(AudioDropped(direction="input", seconds=dropped, reason="reconnecting"))

    def _seconds(self, audio: bytes) -> float:
        assert self.session is not None
        return self.session.protocol.input_format.duration(len(audio))

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
                self._clear_retained()
            case ResumptionUpdate(handle=handle, resumable=resumable):
                if resumable and handle:
                    self.resumption_handle = handle
            case ResponseDone():
                self._report_output_drops()
            case _:
                pass

    def _report_output_drops(self) -> None:
        queue = self._queue
        new = queue.dropped_audio_seconds - self._reported_drops
        if new > 0:
            self._reported_drops = queue.dropped_audio_seconds
            self._emit(AudioDropped(direction="output", seconds=new, reason="slow consumer"))

    # -- supervision ------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            session = self.session
            assert session is not None
            closed = await self._pump(session)
            if self._closing or not self._should_reconnect(session):
                self._emit(closed)
                self._emit(None)
                return
            reason = closed.reason or f"connection closed (code {closed.code})"
            if not await self._reconnect(reason, session):
                self._emit(closed)
                self._emit(None)
                return

    async def _pump(self, session: RealtimeSession) -> SessionClosed:
        watchdog = asyncio.create_task(self._watch(session), name="voxengine-watchdog")
        try:
            await session.wait_closed()
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
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
        loop = asyncio.get_running_loop()
        reported = False
        while True:
            await asyncio.sleep(self._watchdog.check_interval)
            tracker = session.tracker
            response_id = tracker.active_response_id
            silent = loop.time() - max(session.last_activity, tracker.requested_at)
            if not tracker.expecting_output or silent < stall:
                reported = False
                continue
            if reported:
                continue
            reported = True
            logger.warning("%s: no event for %.1fs during a response", self._name, silent)
            self._emit(StallDetected(silent_for=silent, response_id=response_id))
            if self._watchdog.reconnect and self._policy.enabled:
                self._stall_response = response_id
                await session.aclose(code=1001, reason="client watchdog: response stalled")
                return

    async def _reconnect(self, reason: str, lost: RealtimeSession) -> bool:
        self._reconnecting = True
        regenerate = lost.tracker.expecting_output
        delay = self._policy.initial_delay
        try:
            for attempt in range(1, self._policy.max_attempts + 1):
                self._emit(Reconnecting(attempt=attempt, delay=delay, reason=reason))
                await asyncio.sleep(delay)
                if self._closing:
                    return False
                session = self.new_session()
                try:
                    await session.open()
                except VoxError as exc:
                    self.discard(session)
                    logger.warning("%s: reconnect %d failed: %s", self._name, attempt, exc)
                    if not is_retryable(exc):
                        return False
                    delay = min(max(delay * 2, 0.05), self._policy.max_delay)
                    continue
                self.session = session  # its events stay held until Reconnected is out
                self._closed_event = None
                restored, skipped, audio, commands = await self._restore(session, regenerate)
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
                return True
            return False
        finally:
            self._reconnecting = False

    async def _restore(
        self, session: RealtimeSession, regenerate: bool
    ) -> tuple[int, int, float, int]:
        plan, skipped = self._restore_plan()
        for command in plan:
            await session.send(command)
        if self._session_updates is not None:
            await session.send(UpdateSession(config=self._session_updates))
        retained = b"".join(self._retained)
        audio = self._seconds(retained)
        self._clear_retained()
        if retained:
            await session.send(SendAudio(audio=retained))
            self._delivered(SendAudio(audio=retained))
        commands = 0
        while self._pending:
            command = self._pending.popleft()
            if isinstance(command, SendAudio):
                audio += self._seconds(command.audio)
            else:
                commands += 1
            await session.send(command)
            self._delivered(command)
        self._pending_audio_seconds = 0.0
        if regenerate and not any(isinstance(c, CreateResponse) for c in plan):
            await session.send(CreateResponse())
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
