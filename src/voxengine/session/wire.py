"""The connection side of a :class:`~voxengine.session.RealtimeSession`: frames in and out.

Frames in: pushed from the transport's read callback (:meth:`SessionWire._pushed`,
with the protocol's hot path for audio), or pulled by the reader task, which takes
the frames read before pushing started and then hands the close over to a callback
when the connection offers one. Frames out: taken from the protocol into an outbox and
written in order, one writer at a time. Events go to the session's sinks in the order
the protocol produced them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from voxengine.errors import ConnectionClosed, VoxError
from voxengine.events import AudioDelta, Event, SessionClosed, SessionReady
from voxengine.protocols import AudioTapping, HotPath, ProtocolState, RealtimeProtocol
from voxengine.session.tap import AudioTap
from voxengine.session.tracker import ResponseTracker
from voxengine.transport import Connection, Connector, DirectConnection
from voxengine.transport.memory import MemoryConnection

__all__ = ["AudioSink", "SessionWire"]

#: Receives every event with the session it came from (``EventSink`` in the driver).
_Sink = Callable[[Any, Event], None]
#: Receives the audio deltas of the current session directly (see ``audio_sink``).
AudioSink = Callable[[AudioDelta], None]

logger = logging.getLogger("voxengine.session")

_monotonic = time.monotonic

#: Seconds given to the close handshake after the protocol gave up.
_CLOSE_WAIT = 2.5


class SessionWire:
    """State and frame handling shared by every :class:`RealtimeSession` (which adds
    opening, commands and closing); not used on its own."""

    # Slots: one of these per session (memory per idle session).
    __slots__ = (
        "_audio_tap",
        "_closed",
        "_closed_waiters",
        "_conn",
        "_connector",
        "_direct",
        "_hot",
        "_last_activity",
        "_on_closed",
        "_open_timeout",
        "_outbox",
        "_protocol",
        "_reader",
        "_reader_error",
        "_reading",
        "_ready",
        "_ready_waiter",
        "_sending",
        "_tapped",
        "_writing",
        "audio_sink",
        "sink",
        "tracker",
    )

    def __init__(
        self,
        protocol: RealtimeProtocol,
        connector: Connector,
        *,
        open_timeout: float = 10.0,
        sink: _Sink,
    ) -> None:
        self._protocol = protocol
        #: Every event goes to ``sink(self, event)``, in the reader, in order.
        self.sink = sink
        #: Hot-path audio deltas go here when set (see the class docstring).
        self.audio_sink: AudioSink | None = None
        self._audio_tap: AudioTap | None = None  # see the audio_tap property
        self._tapped = False
        hot = protocol if isinstance(protocol, HotPath) else None
        #: The protocol, when it offers the hot path (its methods are looked up per
        #: frame, like ``receive_message``'s, so a wrapped or patched one is used).
        self._hot: HotPath | None = hot
        self._connector = connector
        self._open_timeout = open_timeout
        self._conn: Connection | None = None
        #: ``_conn`` when it writes whole frames before it first yields (see _ORDERED_SEND).
        self._direct: DirectConnection | MemoryConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        # Done when the writer sending the outbox stops (None: no writer): the one-writer
        # rule without a lock kept per session (memory per idle session).
        self._writing: asyncio.Future[None] | None = None
        # frames taken from the protocol, unsent (a list: usually empty, and an empty
        # deque takes 760 bytes per session)
        self._outbox: list[str | bytes] = []
        self._ready = False
        self._closed = False
        self._ready_waiter: asyncio.Future[None] | None = None  # open() waits on it
        self._closed_waiters: list[asyncio.Future[None]] | None = None
        self._on_closed: Callable[[], None] | None = None  # see call_when_closed
        self._last_activity = 0.0
        self._reading = True  # False once the protocol gave up: later frames are ignored
        self._sending: set[asyncio.Task[None]] | None = None  # sends started by pushed frames
        self._reader_error: Exception | None = None  # a local failure that ended the reader
        self.tracker = ResponseTracker(protocol.output_format)

    def _wake_opener(self) -> None:
        waiter = self._ready_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _locked(self) -> bool:
        return self._writing is not None

    async def _flush(self) -> None:
        """Send what the protocol has queued, in order, one writer at a time: frames
        move to the outbox before a writer starts (so it keeps the protocol's order);
        the writer sends the whole outbox, including frames added meanwhile."""
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
        while (writing := self._writing) is not None:  # one writer at a time
            await asyncio.wait({writing})
        if not outbox:
            return  # the writer before sent them
        self._writing = turn = asyncio.get_running_loop().create_future()
        try:
            while outbox:
                await conn.send(outbox.pop(0))
        except asyncio.CancelledError:
            if outbox and self._reading and not self._closed:
                # the caller's send was cancelled: a writer of its own sends the rest
                # (it starts once this one let go of the turn)
                self._start_sending(self._send_outbox())
            raise
        finally:
            self._writing = None
            turn.set_result(None)

    @property
    def audio_tap(self) -> AudioTap | None:
        """Where clean audio deltas go straight from the socket (see
        :mod:`voxengine.session.tap`); ``None``: through :attr:`audio_sink` or the sink.

        Takes effect when the protocol offers ``AudioTapping`` and the connection
        ``tap_text``; otherwise audio keeps its usual way."""
        return self._audio_tap

    @audio_tap.setter
    def audio_tap(self, tap: AudioTap | None) -> None:
        self._audio_tap = tap
        self._install_tap()

    @property
    def audio_tapped(self) -> bool:
        """True while :attr:`audio_tap` is in effect on this session's connection."""
        return self._tapped

    def _install_tap(self) -> None:
        """Give the connection the protocol's tap for :attr:`audio_tap` (or take it away:
        also once the session stops reading, so nothing reaches the callbacks after)."""
        conn, tap, protocol = self._conn, self._audio_tap, self._protocol
        if not isinstance(conn, DirectConnection):
            return
        if tap is None or not self._reading or not isinstance(protocol, AudioTapping):
            conn.tap_text(None)
            self._tapped = False
            return
        self._tapped = conn.tap_text(protocol.audio_tap(tap, self.tracker, _monotonic))

    def _stop_reading(self) -> None:
        """The protocol gave up or the connection closed: later frames are ignored."""
        self._reading = False
        if self._tapped:
            self._install_tap()

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

    def call_when_closed(self, callback: Callable[[], None] | None) -> bool:
        """Call ``callback()`` once the session has ended and its last event was
        dispatched (what :meth:`wait_closed` waits for), instead of a task waiting;
        ``None`` forgets the callback. One callback at a time. Returns False, and
        registers nothing, when the session has already ended."""
        if self._closed:
            return False
        self._on_closed = callback
        return True

    def _set_closed(self) -> None:
        self._closed = True
        self._wake_opener()
        for waiter in self._closed_waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        self._closed_waiters = None
        callback, self._on_closed = self._on_closed, None
        if callback is not None:
            try:
                callback()
            except Exception:  # a bug: the session still counts as closed
                logger.exception("session close callback failed")

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
            self._stop_reading()
            return False
        tracker, sink = self.tracker, self.sink
        for event in protocol.events_received():
            # _dispatch, inlined, with this frame's time stamp for audio
            if type(event) is AudioDelta:
                tracker.audio_arrived(event.item_id, len(event.audio), now)
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
                event = hot.receive_audio(frame)
                if event is not None:
                    # The hot path (one frame per 20 ms of audio): an audio delta and
                    # nothing else came of the frame. _collect's audio branch, inlined
                    # (ResponseTracker.audio_arrived without the call: 50 frames a second).
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
            self._stop_reading()
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
        handed_over = False
        try:
            while True:
                if isinstance(conn, DirectConnection) and conn.when_closed(self._peer_closed):
                    # Pushing, and every frame read before is taken: the close comes as
                    # a callback; no task has to wait for it (memory per idle session),
                    # and none is kept: this one ends here.
                    handed_over = True
                    self._reader = None
                    return
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
            if not handed_over:
                self._finish_reading()

    def _peer_closed(self, exc: ConnectionClosed) -> None:
        """The close, from the connection (after the reader handed over)."""
        if self._closed:
            return
        try:
            self._protocol.receive_close(exc.code, exc.reason)
        except Exception:  # a bug: the session still ends
            logger.exception("session close handling failed")
        self._finish_reading()

    def _finish_reading(self) -> None:
        """Dispatch the session's last events (a SessionClosed last) and mark it closed."""
        if self._closed:
            return
        self._stop_reading()
        events = self._protocol.events_received()
        if not any(isinstance(e, SessionClosed) for e in events):
            events.append(SessionClosed(code=None, reason="session ended"))
        try:
            for event in events:
                self._dispatch(event)
        finally:
            self._set_closed()
