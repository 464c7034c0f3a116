"""The frame side of the ``picows`` backend: one listener per connection.

``picows`` parses frames in compiled code and calls ``WSListener.on_ws_frame`` for each
one, inside the socket's read callback. :class:`FrameHandler` is that listener's logic
(the class ``picows`` instantiates, :func:`listener_class`, adds ``picows``' own base
and is made on first use, so importing this module never imports ``picows``):

* whole text frames go straight to the sink while pushing (the hot path: the tap
  first, then UTF-8 decoding, then the sink), exactly as the ``websockets`` backend
  hands them over (:class:`~voxengine.transport.PushConnection`);
* fragmented messages are reassembled here (``picows`` delivers frames, not messages),
  bounded by :data:`MAX_MESSAGE_BYTES` (1009 beyond it); a stray or missing
  continuation frame fails the connection (1002);
* frames read before ``push_to`` are queued for ``recv`` (reading pauses while
  :data:`MAX_QUEUE` of them wait), and later ones held until ``recv`` has taken those;
* the closing handshake: a close frame is answered and the socket closed; a close we
  start is given :data:`CLOSE_TIMEOUT` seconds before the socket is aborted;
* keepalive pings on a loop timer (one timer per idle connection, no task), failing
  the connection with 1011 "keepalive ping timeout" when no pong comes in time;
* writing pauses at the socket's high-water mark (:data:`WRITE_LIMIT` bytes buffered):
  ``send`` then waits for it to drain, so a slow server cannot grow memory unbounded.

Pings are answered by ``picows`` (auto-pong).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from voxengine.errors import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from voxengine.transport import FrameSink, TextTap

if TYPE_CHECKING:
    from picows import WSFrame, WSTransport

__all__ = ["FrameHandler", "listener_class"]

logger = logging.getLogger("voxengine.transport")

#: Largest message accepted from the server (the ``websockets`` backend's bound too).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Seconds to wait for the peer's close frame before dropping the connection.
CLOSE_TIMEOUT = 2.0
#: High-water mark of the socket's write buffer, in bytes (``websockets``' default).
WRITE_LIMIT = 2**15
#: Messages queued for ``recv`` before reading pauses (``websockets``' ``max_queue``).
MAX_QUEUE = 16

_OK_CODES = (1000, 1001, 1005)

# picows' message types, set by listener_class() when picows is first imported
_TEXT: Any = None
_BINARY: Any = None
_CONTINUATION: Any = None
_CLOSE: Any = None
_PONG: Any = None
_CLOSE_CODE: Callable[[int], Any] = int


class FrameHandler:
    """The logic of the ``picows`` listener (see the module); the connection
    (:class:`~voxengine.transport.picows.PicowsConnection`) drives it."""

    if not TYPE_CHECKING:  # the concrete listener class declares the slots
        __slots__ = ()

    transport: WSTransport | None
    queue: collections.deque[str | bytes]
    sink: FrameSink | None
    held: list[str | bytes] | None
    tap: TextTap | None
    on_close: Callable[[ConnectionClosed], None] | None
    closed: ConnectionClosed | None

    def __init__(self, ping_interval: float | None, ping_timeout: float | None) -> None:
        super().__init__()
        self.transport = None
        self.queue = collections.deque()  # read before push_to, for recv
        self.sink = None
        self.held = None
        self.tap = None
        self.on_close = None
        self.closed = None  # the close, once disconnected
        #: ``sink`` while a whole text frame can go straight to it (pushing, nothing
        #: held, not failed, no fragments queued for ``recv``); else ``None``.
        self.direct: FrameSink | None = None
        self.failed = False
        self.queueing_fragments = False  # a fragmented message began before push_to
        self.fragments: list[bytes] | None = None
        self.fragmented_text = False
        self.fragment_size = 0
        self.waiter: asyncio.Future[None] | None = None  # recv waiting for a message
        self.drain_waiters: list[asyncio.Future[None]] | None = None  # sends, paused
        self.paused = False
        self.reading_paused = False
        self.disconnected: asyncio.Future[None] | None = None  # close() waits on it
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.ping_timer: asyncio.TimerHandle | None = None
        self.pong_timer: asyncio.TimerHandle | None = None
        self.close_timer: asyncio.TimerHandle | None = None

    # -- picows' callbacks -------------------------------------------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        transport.underlying_transport.set_write_buffer_limits(high=WRITE_LIMIT)
        if self.ping_interval is not None:
            loop = asyncio.get_running_loop()
            self.ping_timer = loop.call_later(self.ping_interval, self._ping_due)

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        # picows calls this for every frame it parsed but pings; it must not raise.
        sink = self.direct
        msg_type = frame.msg_type
        if sink is not None and msg_type is _TEXT and frame.fin:
            # The hot path (a whole text frame while pushing): _decoded and _push inlined.
            tap = self.tap
            if tap is not None:
                try:
                    if tap(frame.get_payload_as_memoryview()):
                        return
                except Exception:
                    logger.exception("text tap failed; closing the connection")
                    self.fail(1011, "internal error")
                    return
            try:
                text = frame.get_payload_as_utf8_text()
            except UnicodeDecodeError:
                self.fail(1007, "invalid UTF-8 in a text frame")
                return
            try:
                sink(text)
            except Exception:
                logger.exception("frame sink failed; closing the connection")
                self.fail(1011, "internal error")
            return
        if msg_type is _TEXT or msg_type is _BINARY or msg_type is _CONTINUATION:
            self._data_frame(frame)
        elif msg_type is _CLOSE:
            self._close_received(frame)
        elif msg_type is _PONG:
            timer, self.pong_timer = self.pong_timer, None
            if timer is not None:
                timer.cancel()

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        for timer in (self.ping_timer, self.pong_timer, self.close_timer):
            if timer is not None:
                timer.cancel()
        self.ping_timer = self.pong_timer = self.close_timer = None
        self.direct = None
        self.closed = closed = _close_of(transport)
        loop = asyncio.get_running_loop()
        # picows keeps a local failure (a hostile frame) for wait_disconnected() to
        # raise; take it, or asyncio reports a future whose exception nobody retrieved.
        reaper = loop.create_task(transport.wait_disconnected())
        reaper.add_done_callback(_retrieve)
        self._wake()
        for waiter in self.drain_waiters or ():
            if not waiter.done():
                waiter.set_result(None)
        self.drain_waiters = None
        if self.disconnected is not None and not self.disconnected.done():
            self.disconnected.set_result(None)
        callback = self.on_close
        if callback is not None:
            try:
                callback(closed)
            except Exception:
                logger.exception("close callback failed")

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        waiters, self.drain_waiters = self.drain_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    # -- messages ----------------------------------------------------------------------

    @property
    def pulling(self) -> bool:
        """Messages read before ``push_to`` are still to be taken by ``recv``."""
        return bool(self.queue) or self.queueing_fragments

    def start_push(self, sink: FrameSink) -> None:
        self.sink = sink
        self.held = [] if self.pulling else None
        self._update_direct()

    def _update_direct(self) -> None:
        plain = self.held is None and not self.failed and not self.queueing_fragments
        self.direct = self.sink if plain and self.closed is None else None

    def release(self) -> None:
        """Push the held messages; later ones are pushed as they arrive."""
        held, self.held = self.held, None
        self._update_direct()
        for message in held or ():
            self._push(message)

    def _data_frame(self, frame: WSFrame) -> None:
        if self.failed:
            return  # the connection is closing: nothing more is delivered
        fragments = self.fragments
        if frame.msg_type is _CONTINUATION:
            if fragments is None:
                self.fail(1002, "unexpected continuation frame")
                return
            self.fragment_size += frame.payload_size
            if self.fragment_size > MAX_MESSAGE_BYTES:
                self.fail(1009, "message too big")
                return
            fragments.append(frame.get_payload_as_bytes())
            if not frame.fin:
                return
            self.fragments = None
            message = self._decoded(b"".join(fragments), self.fragmented_text)
        elif fragments is not None:
            self.fail(1002, "expected a continuation frame")
            return
        elif not frame.fin:
            self.fragments = [frame.get_payload_as_bytes()]
            self.fragment_size = frame.payload_size
            self.fragmented_text = frame.msg_type is _TEXT
            if self.sink is None:
                self.queueing_fragments = True  # the whole message is recv's
            return
        elif frame.msg_type is _TEXT:
            message = self._decoded(frame.get_payload_as_bytes(), True)
        else:
            message = frame.get_payload_as_bytes()
        if message is None:
            return
        if self.sink is None or self.queueing_fragments:
            self.queueing_fragments = False
            self._update_direct()
            self.queue.append(message)
            if len(self.queue) >= MAX_QUEUE and self.transport is not None:
                self.reading_paused = True
                self.transport.underlying_transport.pause_reading()
            self._wake()
        elif self.held is not None:
            self.held.append(message)
        else:
            self._push(message)

    def _decoded(self, data: bytes, text: bool) -> str | bytes | None:
        if not text:
            return data
        try:
            return data.decode()
        except UnicodeDecodeError:
            # A text message must be UTF-8 (RFC 6455 8.1), as websockets' own recv checks.
            self.fail(1007, "invalid UTF-8 in a text frame")
            return None

    def _push(self, message: str | bytes) -> None:
        if self.failed:
            return  # an earlier message failed the connection
        assert self.sink is not None
        try:
            self.sink(message)
        except Exception:
            logger.exception("frame sink failed; closing the connection")
            self.fail(1011, "internal error")

    def taken(self) -> str | bytes:
        """The oldest queued message, for ``recv`` (reading resumes as the queue empties)."""
        message = self.queue.popleft()
        if self.reading_paused and len(self.queue) <= MAX_QUEUE // 4:
            self.reading_paused = False
            if self.transport is not None and self.closed is None:
                self.transport.underlying_transport.resume_reading()
        return message

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- closing -----------------------------------------------------------------------

    def fail(self, code: int, reason: str) -> None:
        """Stop delivering and close with ``code``: a local failure (bad frame, a
        failing sink or tap, no pong)."""
        self.held = None  # nothing more is pushed; ``recv`` ends with the close
        self.failed = True
        self.direct = None
        self.start_close(code, reason)

    def start_close(self, code: int, reason: str) -> None:
        """Send the close frame (once) and abort the socket if the peer has not closed
        within :data:`CLOSE_TIMEOUT` seconds."""
        transport = self.transport
        if transport is None or self.closed is not None:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(_CLOSE_CODE(code), reason.encode())
        if self.close_timer is None:
            loop = asyncio.get_running_loop()
            self.close_timer = loop.call_later(CLOSE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        self.close_timer = None
        if self.transport is not None:
            self.transport.disconnect(graceful=False)

    def _close_received(self, frame: WSFrame) -> None:
        transport = self.transport
        assert transport is not None
        if not transport.is_close_frame_sent:
            code = frame.get_close_code().value
            transport.send_close(frame.get_close_code() if code else _CLOSE_CODE(1000))
        transport.disconnect()  # the server has said its last word: close our side

    # -- keepalive ---------------------------------------------------------------------

    def _ping_due(self) -> None:
        transport = self.transport
        if transport is None or self.closed is not None or transport.is_close_frame_sent:
            self.ping_timer = None
            return
        loop = asyncio.get_running_loop()
        transport.send_ping()
        if self.ping_timeout is not None and self.pong_timer is None:
            self.pong_timer = loop.call_later(self.ping_timeout, self._pong_overdue)
        assert self.ping_interval is not None
        self.ping_timer = loop.call_later(self.ping_interval, self._ping_due)

    def _pong_overdue(self) -> None:
        self.pong_timer = None
        logger.info("no pong within %g s: closing the connection", self.ping_timeout)
        self.fail(1011, "keepalive ping timeout")


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _close_of(transport: WSTransport) -> ConnectionClosed:
    """What ``recv`` raises once ``transport`` is disconnected: the received close
    frame's code and reason (``None`` when none came); OK when both sides closed with
    1000, 1001 or no code, as ``websockets`` decides."""
    handshake = transport.close_handshake
    rcvd = handshake.recv if handshake is not None else None
    sent = handshake.sent if handshake is not None else None
    if rcvd is None:
        return ConnectionClosedError(None, "")
    code = rcvd.code.value or 1005  # a close frame without a code: 1005 (RFC 6455 7.1.5)
    reason = rcvd.reason or ""
    if sent is not None and code in _OK_CODES and (sent.code.value or 1005) in _OK_CODES:
        return ConnectionClosedOK(code, reason)
    return ConnectionClosedError(code, reason)


@functools.cache
def listener_class() -> type[FrameHandler]:
    """The listener ``picows`` instantiates: :class:`FrameHandler` on ``picows``'
    ``WSListener`` (imports ``picows``)."""
    global _TEXT, _BINARY, _CONTINUATION, _CLOSE, _PONG, _CLOSE_CODE
    from picows import WSCloseCode, WSListener, WSMsgType

    _TEXT, _BINARY, _CONTINUATION = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION
    _CLOSE, _PONG, _CLOSE_CODE = WSMsgType.CLOSE, WSMsgType.PONG, WSCloseCode

    class Listener(FrameHandler, WSListener):
        __slots__ = (
            "close_timer",
            "closed",
            "direct",
            "disconnected",
            "drain_waiters",
            "failed",
            "fragment_size",
            "fragmented_text",
            "fragments",
            "held",
            "on_close",
            "paused",
            "ping_interval",
            "ping_timeout",
            "ping_timer",
            "pong_timer",
            "queue",
            "queueing_fragments",
            "reading_paused",
            "sink",
            "tap",
            "transport",
            "waiter",
        )

    return Listener
