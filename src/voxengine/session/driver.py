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
from typing import Any, final

from voxengine.commands import CancelResponse, Command, SendAudio, TruncateItem
from voxengine.errors import (
    ConnectionClosed,
    ConnectTimeout,
    InvalidState,
    TransportError,
    VoxError,
)
from voxengine.events import AudioDelta, Event, Interrupted, SessionClosed, SessionReady
from voxengine.protocols import HotPath, ProtocolState, RealtimeProtocol
from voxengine.redaction import redact_url, secrets_in
from voxengine.session.failures import handshake_failure, is_retryable, scrub
from voxengine.session.tracker import ResponseTracker
from voxengine.transport import Connection, Connector, PushConnection
from voxengine.transport.memory import MemoryConnection
from voxengine.transport.websocket import WebSocketConnection

__all__ = ["AudioSink", "EventSink", "RealtimeSession", "ResponseTracker", "is_retryable"]

#: Receives every event of a session with the session it came from (the reconnecting
#: link tells a current connection from a replaced one by it).
EventSink = Callable[["RealtimeSession", Event], None]
#: Receives the audio deltas of the current session directly (see ``audio_sink``).
AudioSink = Callable[[AudioDelta], None]

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


@final
class RealtimeSession:
    """Drives ``protocol`` over a connection opened by ``connector``.

    Use :meth:`open` once, then :meth:`send` commands. Every event reaches ``sink`` in
    the order the protocol produced them, with no queue in between; while
    ``audio_sink`` is set, audio deltas the protocol decodes on its hot path
    (:class:`~voxengine.protocols.HotPath`) go to it directly instead (the link sets
    it to its queue for the current session: the same place ``sink`` would put them).
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
        #: Hot-path audio deltas go here when set (see the class docstring).
        self.audio_sink: AudioSink | None = None
        hot = protocol if isinstance(protocol, HotPath) else None
        self._hot = hot.receive_audio if hot is not None else None
        self._encode = hot.encode_audio if hot is not None else None
        self._connector = connector
        self._open_timeout = open_timeout
        self._conn: Connection | None = None
        #: ``_conn`` when it writes whole frames before it first yields (see _ORDERED_SEND).
        self._direct: WebSocketConnection | MemoryConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._send_lock: asyncio.Lock | None = None  # made when a send has to queue
        # frames taken from the protocol, unsent (a list: usually empty, and an empty
        # deque takes 760 bytes per session)
        self._outbox: list[str | bytes] = []
        self._ready = False
        self._closed = False
        self._ready_waiter: asyncio.Future[None] | None = None  # open() waits on it
        self._closed_waiters: list[asyncio.Future[None]] | None = None
        self._last_activity = 0.0
        self._reading = True  # False once the protocol gave up: later frames are ignored
        self._sending: set[asyncio.Task[None]] | None = None  # sends started by pushed frames
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
        return self._ready and not self._closed

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
            scrub(exc, secrets_in(request.url, request.headers))
            raise

    async def _open(self, url: str, headers: Mapping[str, str]) -> None:
        conn = await self._connector(url, headers, timeout=self._open_timeout)
        self._conn = conn
        if isinstance(conn, _ORDERED_SEND):
            self._direct = conn
        self._last_activity = _monotonic()
        waiter = self._ready_waiter = asyncio.get_running_loop().create_future()
        if isinstance(conn, PushConnection):
            conn.push_to(self._pushed)  # False: it cannot; the reader gets every frame
        self._reader = asyncio.create_task(self._read_loop(), name="voxengine-session-reader")
        with contextlib.suppress(ConnectionClosed):
            # A server that refuses at once closes before our first message goes out;
            # the reader records why, and the wait below raises the typed reason.
            await self._flush()
        try:
            done, _ = await asyncio.wait({waiter}, timeout=self._open_timeout)
        finally:
            self._ready_waiter = None
            waiter.cancel()
        if not self._ready:
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
            raise handshake_failure(exc)

    def _wake_opener(self) -> None:
        waiter = self._ready_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _locked(self) -> bool:
        lock = self._send_lock
        return lock is not None and lock.locked()

    async def send(self, command: Command, *more: Command) -> None:
        """Send ``command`` (then ``more``); raises :class:`InvalidState` if the session
        is not open.

        Commands given together all reach the protocol before its frames are collected,
        so the protocol may merge them into one message.
        """
        if self._conn is None:
            raise InvalidState("session is not open; call connect() first")
        if self._closed:
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
        direct = self._direct
        if len(frames) == 1 and direct is not None and not self._outbox and not self._locked():
            # Nothing queued before it and no writer busy: send it straight away. These
            # connections hand a whole frame to the socket inside ``send`` before it
            # first yields, so frames sent this way keep the order they were taken in.
            await direct.send(frames[0])
            return
        if frames:
            self._outbox.extend(frames)
        if self._outbox:
            await self._send_outbox()

    def send_audio(self, audio: bytes) -> Coroutine[Any, Any, None]:
        """``send(SendAudio(audio=audio))`` for audio the caller has checked (``bytes``
        of whole PCM16 samples): with nothing queued, the protocol's ready-made frame
        (:meth:`~voxengine.protocols.HotPath.encode_audio`) goes straight to the
        connection. Returns the coroutine that writes it (raises as :meth:`send`)."""
        encode, direct = self._encode, self._direct
        if (
            encode is not None
            and direct is not None
            and not self._closed
            and not self._outbox
            and not self._locked()
        ):
            frame = encode(audio)
            if frame is not None:
                return direct.send_utf8(frame)
        return self.send(SendAudio(audio=audio))

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
        """Send what the protocol has queued, in order, one writer at a time: frames
        move to the outbox before the lock is taken (so it keeps the protocol's order);
        the lock holder sends the whole outbox, including frames added meanwhile."""
        if self._take_outgoing():
            await self._send_outbox()

    def _take_outgoing(self) -> bool:
        """Move the protocol's queued frames to the outbox; True if anything is unsent."""
        frames = self._protocol.data_to_send()
        if frames:
            self._outbox.extend(frames)
        return bool(self._outbox)

    async def _send_outbox(self) -> None:
        conn = self._conn
        if conn is None:
            return
        outbox = self._outbox
        lock = self._send_lock
        if lock is None:
            lock = self._send_lock = asyncio.Lock()
        async with lock:
            while outbox:
                await conn.send(outbox.pop(0))

    def _dispatch(self, event: Event) -> None:
        self.tracker.observe(event)
        self.sink(self, event)

    async def wait_closed(self) -> None:
        """Wait until the session has ended and its last event was dispatched."""
        if self._closed:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._closed_waiters
        if waiters is None:
            waiters = self._closed_waiters = []
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if not self._closed:
                waiters.remove(waiter)

    def _set_closed(self) -> None:
        self._closed = True
        self._wake_opener()
        for waiter in self._closed_waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        self._closed_waiters = None

    def _receive(self, frame: str | bytes) -> bool:
        """Decode one frame and dispatch its events; False once the protocol gave up."""
        self._protocol.receive_message(frame)
        return self._collect()

    def _collect(self) -> bool:
        """Dispatch the events the protocol decoded; False once it gave up."""
        protocol = self._protocol
        self._last_activity = now = _monotonic()
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
                    self._ready = True
                    self._wake_opener()
                tracker.observe(event)
            sink(self, event)
        return True

    def _pushed(self, frame: str | bytes) -> None:
        """The push sink: one frame, inside the transport's read callback."""
        if not self._reading:
            return
        try:
            hot = self._hot
            if hot is None:
                receiving = self._receive(frame)
            else:
                event = hot(frame)
                if event is not None:
                    # The hot path (one frame per 20 ms of audio): an audio delta and
                    # nothing else came of the frame. _collect's audio branch, inlined.
                    self._last_activity = now = _monotonic()
                    tracker = self.tracker
                    tracker.progress_at = now
                    if event.item_id != tracker.audio_item_id:
                        tracker.audio_item_id = event.item_id
                        tracker.audio_bytes = 0
                    tracker.audio_bytes += len(event.audio)
                    audio_sink = self.audio_sink
                    if audio_sink is not None:
                        audio_sink(event)
                    else:
                        self.sink(self, event)
                    if self._outbox:  # frames a cancelled send left: get them going
                        self._start_sending(self._send_outbox())
                    return
                receiving = self._collect()
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
        sending = self._sending
        if sending is None:
            sending = self._sending = set()
        sending.add(task)
        task.add_done_callback(sending.discard)

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
            self._set_closed()

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
