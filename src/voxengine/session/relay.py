"""The conversation's way through whichever connection is current: :class:`Relay`.

Commands go down to the current :class:`~voxengine.session.RealtimeSession`, or wait
in the :class:`~voxengine.session.ledger.InputLedger` while the link reconnects; events
come up from it into the one bounded :class:`~voxengine.session.queue.EventQueue`
(events of a session that is not current yet are held until it is, a replaced one's
stragglers are dropped), feeding the one :class:`~voxengine.session.history.
ConversationHistory` on their way. :class:`~voxengine.session.link.SessionLink` adds
the supervision (reconnects, restore, the watchdog) on top.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import fields, replace

from voxengine.audio.format import AudioFormat
from voxengine.commands import Command, SendAudio, UpdateSession
from voxengine.config import ReconnectPolicy, SessionConfig
from voxengine.errors import InvalidState, TransportError
from voxengine.events import (
    AudioDelta,
    AudioDropped,
    Event,
    InputCleared,
    InputCommitted,
    ItemAdded,
    ItemDone,
    ResponseDone,
    ResponseStatus,
    ResumptionUpdate,
    SessionClosed,
)
from voxengine.session.driver import EventSink, RealtimeSession
from voxengine.session.history import ConversationHistory
from voxengine.session.ledger import InputLedger
from voxengine.session.queue import Consumer, EventQueue
from voxengine.session.tap import AudioTap

__all__ = ["Relay", "SessionFactory", "merge_session"]

logger = logging.getLogger("voxengine.providers")

#: The event classes :meth:`Relay._observe` acts on besides the history's.
_LINK_EVENTS: frozenset[type] = frozenset(
    {InputCommitted, InputCleared, ResumptionUpdate, ResponseDone, ItemAdded, ItemDone}
)

SessionFactory = Callable[[EventSink], RealtimeSession]


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


class Relay:
    """Commands down, events up, for the current session (see the module docstring).

    ``acknowledged`` says whether the protocol's service confirms the items the client
    creates (OpenAI does, with ``conversation.item.added``): then texts and tool
    outputs are kept until confirmed and re-sent after a reconnect if they were not.
    Without confirmations (Gemini Live) an input counts as delivered once written.
    """

    # Slots: a link has about thirty attributes, and from thirty on an instance
    # ``__dict__`` stops sharing its keys with the class's others (1.6 KB per session).
    __slots__ = (
        "_audio_tap",
        "_closed_event",
        "_closing",
        "_completed_response",
        "_early",
        "_factory",
        "_ledger",
        "_name",
        "_over",
        "_policy",
        "_queue",
        "_reconnecting",
        "_reported_drops",
        "_session_updates",
        "_started",
        "history",
        "resumption_handle",
        "session",
    )

    def __init__(
        self,
        session_factory: SessionFactory,
        *,
        reconnect: ReconnectPolicy,
        queue_size: int,
        input_format: AudioFormat,
        output_format: AudioFormat,
        name: str,
        acknowledged: bool = True,
    ) -> None:
        self._factory = session_factory
        self._policy = reconnect
        self._name = name
        self.session: RealtimeSession | None = None
        self.history = ConversationHistory()
        self.resumption_handle: str | None = None
        self._queue = EventQueue(queue_size, output_format)
        self._started = False
        self._closing = False
        self._reconnecting = False
        # sessions not current yet and what they said meanwhile (None: no such session)
        self._early: dict[RealtimeSession, list[Event]] | None = None
        self._closed_event: SessionClosed | None = None
        self._ledger = InputLedger(input_format, reconnect.audio_buffer, acknowledged)
        self._session_updates: SessionConfig | None = None
        self._reported_drops = 0.0
        self._completed_response = False  # the current session completed a response
        #: Over for good (SessionLink: set when its supervisor task has finished).
        self._over = False
        #: Where the current session hands clean audio deltas straight from its socket
        #: (see :meth:`tap_audio`).
        self._audio_tap: AudioTap | None = None

    @property
    def reconnecting(self) -> bool:
        """True between losing a connection and restoring the conversation on a new one."""
        return self._reconnecting

    def new_session(self) -> RealtimeSession:
        """A session whose events reach this link's stream once it becomes current."""
        session = self._factory(self._on_event)
        early = self._early
        if early is None:
            early = self._early = {}
        early[session] = []
        return session

    def discard(self, session: RealtimeSession) -> None:
        """Forget a session that failed to open (its events never reach the stream)."""
        early = self._early
        if early is not None:
            early.pop(session, None)
            if not early:
                self._early = None

    def _set_current(self, session: RealtimeSession) -> None:
        """Events of ``session`` reach the stream from now on (audio straight to the
        queue); a replaced session's stragglers do not."""
        previous = self.session
        if previous is not None and previous is not session:
            previous.audio_sink = None
            if previous.audio_tap is not None:
                previous.audio_tap = None
        self.session = session
        session.audio_sink = self._queue.put_nowait
        if self._audio_tap is not None:
            session.audio_tap = self._audio_tap
        self._closed_event = None

    def _release_early(self, session: RealtimeSession) -> None:
        """Deliver what ``session`` said before it became current."""
        early = self._early
        held = early.pop(session, []) if early is not None else []
        if not early:
            self._early = None  # no dict at all while every session is current
        for event in held:
            self._on_event(session, event)

    def _on_event(self, session: RealtimeSession, event: Event) -> None:
        """The session sink: runs in the session's reader, in order, without awaiting."""
        if session is not self.session:
            early = self._early.get(session) if self._early is not None else None
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

    async def send(self, command: Command, *more: Command) -> None:
        """Deliver the commands now (together: see :meth:`RealtimeSession.send`), or
        queue them while the link is reconnecting.

        Raises:
            InvalidState: never connected, closed on purpose, or given up.
        """
        if self.session is None or self._closing or not self._started:
            raise InvalidState(f"{self._name} provider is not connected; call connect() first")
        if self._over:
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

    def tap_audio(self, tap: AudioTap | None) -> bool:
        """Hand clean audio deltas of the current session, and of every later one, to
        ``tap`` straight from the socket, bypassing the event queue (``None``: stop);
        see :mod:`voxengine.session.tap`. Returns whether the current session's
        connection takes the tap (its protocol and transport must both offer it)."""
        self._audio_tap = tap
        session = self.session
        if session is None:
            return False
        session.audio_tap = tap
        return session.audio_tapped

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

    async def send_audio(self, audio: bytes) -> None:
        """``send(SendAudio(audio=audio))`` (its check of the audio: an
        :class:`~voxengine.errors.AudioError` for what is not PCM16; empty audio sends
        nothing), through the session's direct audio path
        (:meth:`~voxengine.session.RealtimeSession.write_audio`): the only coroutine of
        voxengine's on the way to the backend's own send. The same contract as
        :meth:`send`: a write that fails (the backend's own close exception translated
        to voxengine's) is queued for the reconnect, or raised when closing or not
        reconnecting; audio is noted as delivered (kept for a re-send until the turn is
        committed) only once written.

        Raises:
            AudioError: not PCM16 audio.
            InvalidState: never connected, closed on purpose, or given up.
            ConnectionClosed: the write failed and the link does not reconnect.
        """
        if (
            type(audio) is not bytes
            or not audio
            or len(audio) & 1
            or (audio[0] == 0x52 and audio[:4] == b"RIFF")  # "R": no slice for the rest
        ):
            audio = SendAudio(audio=audio).audio  # AudioError for what is not PCM16
            if not audio:
                return
        session = self.session
        if session is None or self._closing or not self._started or self._over:
            await self.send(SendAudio(audio=audio))  # raises the usual InvalidState
            return
        if self._reconnecting:
            self._queue_command(SendAudio(audio=audio))
            return
        try:
            pending = session.write_audio(audio)
            if pending is not None:
                await pending
        except (InvalidState, TransportError) as exc:
            self._audio_failed(audio, exc)
            return
        except session.write_errors as exc:  # the backend's own close: as a TransportError
            self._audio_failed(audio, session.write_failure(exc), exc)
            return
        self._ledger.delivered_audio(audio)

    def _audio_failed(
        self, audio: bytes, exc: InvalidState | TransportError, cause: Exception | None = None
    ) -> None:
        """A send of ``audio`` failed with ``exc``: queue it for the reconnect, or raise
        ``exc`` (closing, or no reconnects)."""
        if self._closing or not self._policy.enabled:
            if cause is None:
                raise exc
            raise exc from cause
        logger.info("%s: send failed (%s); queued for the reconnect", self._name, exc)
        self._queue_command(SendAudio(audio=audio))
