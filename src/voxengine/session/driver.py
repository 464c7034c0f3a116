"""One realtime session: drives one sans-I/O protocol over one transport connection.

The driver is the loop from the design notes: every received frame goes to
``protocol.receive_message``; whatever the protocol wants to send is written in order;
decoded events go, in order, to the session's ``sink`` (the
:class:`~voxengine.session.link.SessionLink`, which owns the one bounded event queue
the application reads). A transport that can push frames
(:class:`~voxengine.transport.PushConnection`) hands each frame to the session inside
its socket read callback; the reader task then only takes the frames read before that
and waits for the close. The session also follows the response lifecycle (which
response is active, how much audio of which assistant item has arrived) so that
interruption can cancel and truncate correctly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.commands import CancelResponse, Command, CreateResponse, SendAudio, TruncateItem
from voxengine.errors import (
    AuthenticationFailed,
    CertificateRejected,
    ConfigError,
    ConnectFailed,
    ConnectionClosed,
    ConnectTimeout,
    HandshakeClosed,
    InvalidState,
    ProviderError,
    RateLimited,
    TransportError,
    UpgradeRefused,
    VoxError,
)
from voxengine.events import (
    AudioDelta,
    AudioDone,
    Event,
    Interrupted,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    SessionClosed,
    SessionReady,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallDelta,
    TranscriptDelta,
    TranscriptDone,
)
from voxengine.protocols import ProtocolState, RealtimeProtocol
from voxengine.redaction import redact, redact_url, secrets_in
from voxengine.transport import Connection, Connector, PushConnection
from voxengine.transport.memory import MemoryConnection
from voxengine.transport.websocket import WebSocketConnection

__all__ = ["EventSink", "RealtimeSession", "ResponseTracker"]

#: Receives every event of a session with the session it came from (the reconnecting
#: link tells a current connection from a replaced one by it).
EventSink = Callable[["RealtimeSession", Event], None]

logger = logging.getLogger("voxengine.session")

_monotonic = time.monotonic

#: Connections whose ``send`` writes the whole frame before it first yields (no lock
#: needed to keep concurrent sends in order; wrappers may not, so they take the lock).
_ORDERED_SEND = (WebSocketConnection, MemoryConnection)

#: Seconds :meth:`RealtimeSession.aclose` takes at most.
CLOSE_TIMEOUT = 3.0
#: Seconds given to the close handshake (the transport aborts the TCP connection
#: itself after its own, shorter, close timeout), and to closing after a refusal.
_CLOSE_WAIT = 2.5


#: The event classes :meth:`ResponseTracker.observe` matches (audio is handled first).
_TRACKED_EVENTS: frozenset[type] = frozenset({ResponseStarted, ProviderErrorEvent, ResponseDone})

#: Output of a response: what the watchdog counts as progress (keep-alive traffic such
#: as rate-limit updates, and anything else, is not). Audio deltas are handled first.
_PROGRESS_EVENTS: frozenset[type] = frozenset(
    {
        ResponseStarted,
        ResponseDone,
        TextDelta,
        TextDone,
        AudioDone,
        TranscriptDelta,
        TranscriptDone,
        ToolCallDelta,
        ToolCall,
    }
)


@final
class ResponseTracker:
    """Follows responses and assistant audio as events pass, for interruption.

    ``active_response_id`` is the response in progress (``None`` between responses);
    ``audio_item_id`` is the assistant item whose audio arrived last and
    ``audio_received`` how many seconds of it arrived. ``progress_at`` is when (on
    :func:`time.monotonic`'s clock, like ``requested_at``) the last output of a
    response arrived: the watchdog measures stalls from it.
    """

    def __init__(self, output_format: AudioFormat) -> None:
        self._format = output_format
        #: A response was requested and has not started yet.
        self.awaiting_response = False
        #: Monotonic time of the last response request.
        self.requested_at = 0.0
        #: Monotonic time of the last response output (see ``_PROGRESS_EVENTS``).
        self.progress_at = 0.0
        self.active_response_id: str | None = None
        self.audio_item_id: str | None = None
        #: Bytes of audio received for ``audio_item_id``.
        self.audio_bytes = 0

    @property
    def expecting_output(self) -> bool:
        """A response is running or has been asked for: silence now means a stall."""
        return self.awaiting_response or self.active_response_id is not None

    def requested(self, command: Command, now: float) -> None:
        """Note a command (sent at monotonic time ``now``) that asks for a response."""
        if isinstance(command, CreateResponse):
            self.awaiting_response = True
            self.requested_at = now

    @property
    def audio_received(self) -> float:
        """Seconds of audio received for ``audio_item_id``."""
        return self._format.duration(self.audio_bytes)

    def observe(self, event: Event) -> None:
        """Update the state from one event."""
        if type(event) is AudioDelta:  # the hot path: one per 20 ms of audio
            self.progress_at = _monotonic()
            if event.item_id != self.audio_item_id:
                self.audio_item_id = event.item_id
                self.audio_bytes = 0
            self.audio_bytes += len(event.audio)
            return
        kind = type(event)
        if kind in _PROGRESS_EVENTS:
            self.progress_at = time.monotonic()
        if kind not in _TRACKED_EVENTS:
            return
        match event:
            case ResponseStarted(response_id=response_id):
                self.active_response_id = response_id
                self.awaiting_response = False
            case ProviderErrorEvent():
                self.awaiting_response = False  # e.g. a refused response.create
            case ResponseDone(response_id=response_id):
                if response_id == self.active_response_id or not response_id:
                    self.active_response_id = None
            case _:
                pass


@final
class RealtimeSession:
    """Drives ``protocol`` over a connection opened by ``connector``.

    Use :meth:`open` once, then :meth:`send` commands. Every event reaches ``sink`` in
    the order the protocol produced them, with no queue in between.
    """

    def __init__(
        self,
        protocol: RealtimeProtocol,
        connector: Connector,
        *,
        open_timeout: float = 10.0,
        sink: EventSink,
    ) -> None:
        self._protocol = protocol
        #: Every event goes to ``sink(self, event)``, in the reader, in order.
        self.sink = sink
        self._connector = connector
        self._open_timeout = open_timeout
        self._conn: Connection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._send_lock = asyncio.Lock()
        # frames taken from the protocol, unsent (a list: usually empty, and an empty
        # deque takes 760 bytes per session)
        self._outbox: list[str | bytes] = []
        self._ready = asyncio.Event()
        self._closed = asyncio.Event()
        self._last_activity = 0.0
        self._reading = True  # False once the protocol gave up: later frames are ignored
        self._sending: set[asyncio.Task[None]] = set()  # sends started by pushed frames
        self._reader_error: Exception | None = None  # a local failure that ended the reader
        self.tracker = ResponseTracker(protocol.output_format)

    @property
    def protocol(self) -> RealtimeProtocol:
        """The protocol state machine this session drives."""
        return self._protocol

    @property
    def last_activity(self) -> float:
        """:func:`time.monotonic` time of the last frame received from the server."""
        return self._last_activity

    @property
    def is_open(self) -> bool:
        """True between a successful :meth:`open` and the end of the session."""
        return self._ready.is_set() and not self._closed.is_set()

    async def open(self) -> None:
        """Connect and complete the protocol handshake.

        Raises:
            ConnectFailed: the connection could not be opened (the connector's
                subclasses: AuthenticationFailed, UpgradeRefused, TLSFailed, ...).
            HandshakeClosed: the connection closed or dropped before the session was
                ready without an auth/config meaning (retryable, see :func:`is_retryable`).
            ConnectTimeout: no session handshake within ``open_timeout``.
            AuthenticationFailed: the close meant "bad credentials".
            ProviderError: the service refused the session (bad model, bad config).
            InvalidState: the session was already opened.
        """
        if self._conn is not None:
            raise InvalidState("session already opened")
        request = self._protocol.connect_request()
        logger.debug("connecting to %s", redact_url(request.url))
        try:
            await self._open(request.url, request.headers)
        except VoxError as exc:
            # The last line of defence: whatever raised, its text never shows the key.
            _scrubbed(exc, secrets_in(request.url, request.headers))
            raise

    async def _open(self, url: str, headers: Mapping[str, str]) -> None:
        conn = await self._connector(url, headers, timeout=self._open_timeout)
        self._conn = conn
        self._last_activity = _monotonic()
        if isinstance(conn, PushConnection):
            conn.push_to(self._pushed)  # False: it cannot; the reader gets every frame
        self._reader = asyncio.create_task(self._read_loop(), name="voxengine-session-reader")
        with contextlib.suppress(ConnectionClosed):
            # A server that refuses at once closes before our first message goes out;
            # the reader records why, and the wait below raises the typed reason.
            await self._flush()
        ready = asyncio.create_task(self._ready.wait())
        closed = asyncio.create_task(self._closed.wait())
        try:
            done, _ = await asyncio.wait(
                {ready, closed}, timeout=self._open_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            ready.cancel()
            closed.cancel()
        if not self._ready.is_set():
            exc = self._protocol.close_exc
            await self.aclose()
            if exc is None and not done:
                raise ConnectTimeout(f"no session handshake within {self._open_timeout:g} s")
            local = self._reader_error
            if local is not None:
                # Not the network: a local failure (e.g. a replay divergence) or a bug.
                # Retrying would repeat it; raise it (typed) or the close it caused.
                if isinstance(local, VoxError) and not isinstance(local, TransportError):
                    raise local
                if exc is not None:
                    raise exc
            raise _handshake_failure(exc)

    async def send(self, command: Command, *more: Command) -> None:
        """Send ``command`` (then ``more``); raises :class:`InvalidState` if the session
        is not open.

        Commands given together all reach the protocol before its frames are collected,
        so the protocol may merge them into one message.
        """
        if self._conn is None:
            raise InvalidState("session is not open; call connect() first")
        if self._closed.is_set():
            raise InvalidState("session is closed")
        protocol = self._protocol
        protocol.send(command)
        if type(command) is not SendAudio:  # audio asks for nothing (the hot path)
            self.tracker.requested(command, _monotonic())
        for each in more:
            protocol.send(each)
            self.tracker.requested(each, _monotonic())
        # Some protocols report what a command did locally (e.g. a message the service
        # will not echo); those events go out in order with the received ones.
        for event in protocol.events_received():
            self._dispatch(event)
        frames = protocol.data_to_send()
        conn = self._conn
        if (
            len(frames) == 1
            and isinstance(conn, _ORDERED_SEND)
            and not self._outbox
            and not self._send_lock.locked()
        ):
            # Nothing queued before it and no writer busy: send it straight away. These
            # connections hand a whole frame to the socket inside ``send`` before it
            # first yields, so frames sent this way keep the order they were taken in.
            await conn.send(frames[0])
            return
        if frames:
            self._outbox.extend(frames)
        if self._outbox:
            await self._send_outbox()

    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        """Cancel the active response and truncate assistant audio at ``played`` s.

        ``item_id`` is the assistant item being heard (default: the one whose audio
        arrived last) and ``played`` how much of it the user heard; for the latest item
        it is clamped to the audio received. With ``played=None`` nothing is truncated
        (the caller does not know what was played). ``cancel=False`` skips the cancel
        (the provider already cancelled, e.g. server VAD barge-in). Returns the
        :class:`Interrupted` event, which is also delivered through :meth:`events`.
        """
        tracker = self.tracker
        if cancel and tracker.active_response_id is not None:
            await self.send(CancelResponse())
        item_id = item_id or tracker.audio_item_id
        heard: float | None = None
        if item_id is not None and played is not None:
            heard = max(0.0, played)
            if item_id == tracker.audio_item_id:
                heard = min(heard, tracker.audio_received)
            await self.send(TruncateItem(item_id=item_id, audio_end=heard))
        event = Interrupted(item_id=item_id, played=heard)
        self._dispatch(event)
        return event

    async def _flush(self) -> None:
        """Send what the protocol has queued, in order, one writer at a time.

        Frames move to the session's outbox before the lock is taken (no await in
        between, so the outbox keeps the protocol's order); the lock holder sends the
        whole outbox, including frames other tasks add while it waits on the socket.
        With nothing to send (the reader's usual case) no lock is taken.
        """
        if self._take_outgoing():
            await self._send_outbox()

    def _take_outgoing(self) -> bool:
        """Move the protocol's queued frames to the outbox; True if anything is unsent.

        Synchronous, so the reader (whose frames rarely leave anything to send) pays no
        coroutine for :meth:`_flush`.
        """
        frames = self._protocol.data_to_send()
        if frames:
            self._outbox.extend(frames)
        return bool(self._outbox)

    async def _send_outbox(self) -> None:
        conn = self._conn
        if conn is None:
            return
        outbox = self._outbox
        async with self._send_lock:
            while outbox:
                await conn.send(outbox.pop(0))

    def _dispatch(self, event: Event) -> None:
        self.tracker.observe(event)
        self.sink(self, event)

    async def wait_closed(self) -> None:
        """Wait until the session has ended and its last event was dispatched."""
        await self._closed.wait()

    def _receive(self, frame: str | bytes) -> bool:
        """Decode one frame and dispatch its events; False once the protocol gave up."""
        protocol = self._protocol
        self._last_activity = now = _monotonic()
        protocol.receive_message(frame)
        if protocol.state is ProtocolState.CLOSED:
            # The protocol gave up (e.g. configuration refused in the handshake).
            self._reading = False
            return False
        tracker, sink = self.tracker, self.sink
        for event in protocol.events_received():
            # _dispatch, inlined (one frame's events on the hot path), and for audio
            # ResponseTracker.observe's audio branch too, with this frame's time stamp
            if type(event) is AudioDelta:
                tracker.progress_at = now
                if event.item_id != tracker.audio_item_id:
                    tracker.audio_item_id = event.item_id
                    tracker.audio_bytes = 0
                tracker.audio_bytes += len(event.audio)
            else:
                if type(event) is SessionReady:
                    self._ready.set()
                tracker.observe(event)
            sink(self, event)
        return True

    def _pushed(self, frame: str | bytes) -> None:
        """The push sink: one frame, inside the transport's read callback."""
        if not self._reading:
            return
        try:
            receiving = self._receive(frame)
        except Exception as exc:  # a bug: report it and end the session
            self._reader_failed(exc)
            self._reading = False
            self._start_sending(self._close_connection(1011, "internal error"))
            return
        if not receiving:  # the reader waits for the close: make it come
            self._start_sending(self._close_connection(1000, "client closing"))
            return
        frames = self._protocol.data_to_send()  # _take_outgoing, inlined (hot path)
        if frames:
            self._outbox.extend(frames)
        if self._outbox:
            self._start_sending(self._send_outbox())

    def _reader_failed(self, exc: Exception) -> None:
        """Log the failure (from inside its ``except``) and end the protocol with it."""
        self._reader_error = exc
        logger.exception("session reader failed")
        self._protocol.receive_close(None, f"{type(exc).__name__}: {exc}")

    def _start_sending(self, send: Coroutine[object, object, None]) -> None:
        task = asyncio.get_running_loop().create_task(self._quietly(send))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _quietly(self, send: Coroutine[object, object, None]) -> None:
        try:
            await send
        except (ConnectionClosed, OSError):
            pass  # the reader sees the close and reports it
        except Exception:
            logger.exception("sending from the session reader failed")

    async def _close_connection(self, code: int, reason: str) -> None:
        if self._conn is not None:
            await self._conn.close(code, reason)

    async def _read_loop(self) -> None:
        conn = self._conn
        assert conn is not None
        protocol = self._protocol
        try:
            while True:
                try:
                    frame = await conn.recv()
                except ConnectionClosed as exc:
                    protocol.receive_close(exc.code, exc.reason)
                    break
                if not self._reading or not self._receive(frame):
                    # The protocol gave up (e.g. a fatal error the server did not
                    # follow with a close): close the socket rather than leave it open.
                    with contextlib.suppress(VoxError, OSError, TimeoutError):
                        await asyncio.wait_for(
                            self._close_connection(1000, "client closing"), _CLOSE_WAIT
                        )
                    break
                if self._take_outgoing():
                    await self._send_outbox()
        except ConnectionClosed as exc:
            protocol.receive_close(exc.code, exc.reason)
        except Exception as exc:  # a bug or an unexpected transport failure: report it
            self._reader_failed(exc)
        finally:
            self._reading = False
            events = protocol.events_received()
            if not any(isinstance(e, SessionClosed) for e in events):
                events.append(SessionClosed(code=None, reason="session ended"))
            for event in events:
                self._dispatch(event)
            self._closed.set()

    def failure(self) -> VoxError | None:
        """Why the session ended, if it ended because of a failure."""
        return self._protocol.close_exc

    async def aclose(self, code: int = 1000, reason: str = "client closing") -> None:
        """Close the connection; wait for the reader and for sends it started. Idempotent.

        Bounded: returns within :data:`CLOSE_TIMEOUT` seconds whatever the peer does
        (the close handshake, then the reader and the sends it started share that
        time; what is left after it is cancelled).

        A ``code`` other than 1000 closes without marking the close as requested, so
        the session ends as failed (used to abandon a stalled connection).
        """
        if code == 1000:
            self._protocol.start_closing()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_TIMEOUT

        def left() -> float:
            return max(0.0, deadline - loop.time())

        conn = self._conn
        if conn is not None:
            with contextlib.suppress(VoxError, OSError, TimeoutError):
                await asyncio.wait_for(conn.close(code, reason), _CLOSE_WAIT)
        reader = self._reader
        if reader is not None and not reader.done():
            await asyncio.wait({reader}, timeout=left())
            if not reader.done():
                reader.cancel()
                await asyncio.wait({reader})  # its finally only dispatches, at once
        if self._sending:  # they end at once on a closed connection (errors are logged)
            sending = set(self._sending)
            await asyncio.wait(sending, timeout=left())
            for task in sending:
                task.cancel()


def _scrubbed(exc: VoxError, secrets: set[str]) -> None:
    """Mask ``secrets`` in ``exc``'s message and text attributes, in place."""
    if not secrets:
        return
    exc.args = tuple(redact(a, secrets) if isinstance(a, str) else a for a in exc.args)
    for name in ("message", "reason", "detail"):
        value = getattr(exc, name, None)
        if isinstance(value, str):
            setattr(exc, name, redact(value, secrets))


#: ProviderError codes a server sends when it failed, not the request (Gemini 1011).
_SERVER_FAULTS = frozenset({"internal", "unavailable", "server_error"})


def _handshake_failure(exc: VoxError | None) -> VoxError:
    """What :meth:`RealtimeSession.open` raises for a session that never became ready.

    A close or drop with no auth/config meaning becomes a retryable
    :class:`HandshakeClosed` (chained to the close); refusals keep their type.
    """
    if exc is None:
        return HandshakeClosed(None, "connection closed")
    if isinstance(exc, ConnectionClosed) or (
        type(exc) is ProviderError and exc.code in _SERVER_FAULTS
    ):
        code = exc.code if isinstance(exc, ConnectionClosed) else None
        reason = exc.reason if isinstance(exc, ConnectionClosed) else str(exc)
        failure = HandshakeClosed(code, reason)
        failure.__cause__ = exc
        return failure
    return exc


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed connect (or reconnect attempt) may be tried again.

    * Transport failures — refused or reset TCP, DNS, TLS handshake, timeouts, a
      close or drop during the handshake (:class:`HandshakeClosed`), HTTP 5xx/408 on
      the upgrade — yes.
    * HTTP 429 on the upgrade (:class:`~voxengine.errors.UpgradeRateLimited`) — yes,
      after its ``retry_after`` seconds when given.
    * Refused credentials, a rejected certificate, other HTTP 4xx, configuration and
      service refusals (:class:`ProviderError`, including rate limits and quotas
      reported by the service on an open connection) — never.
    """
    if not isinstance(exc, ConnectFailed):
        return False
    if isinstance(exc, RateLimited):
        return True  # the upgrade's 429: wait retry_after, then try again
    if isinstance(exc, AuthenticationFailed | CertificateRejected | ProviderError | ConfigError):
        return False
    if isinstance(exc, UpgradeRefused):
        return exc.status >= 500 or exc.status == 408
    return True
