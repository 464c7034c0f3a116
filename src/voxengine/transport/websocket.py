"""WebSocket transport on the ``websockets`` asyncio implementation.

Maps every ``websockets``/OS failure to the voxengine hierarchy, chaining the cause:
HTTP 401/403 at the upgrade → :class:`AuthenticationFailed`; 429 →
:class:`UpgradeRateLimited` (with ``Retry-After``); any other status →
:class:`UpgradeRefused`; certificate verification → :class:`CertificateRejected`;
other TLS failures → :class:`TLSFailed`; no answer in time → :class:`ConnectTimeout`;
DNS, TCP and malformed upgrades → :class:`ConnectFailed`. A closed connection →
:class:`ConnectionClosedOK` / :class:`ConnectionClosedError` with the close frame's
code and reason. ``wss://`` is verified by default (:func:`default_ssl_context`).
Messages never contain credentials: the request's own secrets are masked by value
and credential headers by name (:mod:`voxengine.redaction`), including in refusal
bodies that echo the request.

Frames can be pushed (:class:`~voxengine.transport.PushConnection`). The connection is
opened with a ``ClientConnection`` subclass (``connect(create_connection=...)`` is how
``websockets`` documents customising a connection) that takes whole data messages in
``process_event``, the per-frame hook ``websockets``' own client subclass overrides for
the handshake (the same in every supported release, 14 to 17), and hands them to the sink inside
the socket's read callback instead of queueing them for a reader task to wake up and
fetch. That saves one event-loop iteration and task switch per frame. Control frames,
the closing handshake and the opening handshake stay with ``websockets``; keepalive
pings keep its timing but run on a loop timer (:mod:`~voxengine.transport.keepalive`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, final
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.datastructures import Headers
from websockets.exceptions import InvalidMessage, InvalidStatus
from websockets.frames import CloseCode, Frame, Opcode
from websockets.protocol import Event as WireEvent

from voxengine.errors import (
    ConnectFailed,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
)
from voxengine.redaction import redact, remember_secrets, secrets_in
from voxengine.transport import DirectConnection, FrameSink, TextTap
from voxengine.transport.keepalive import TimerKeepalive
from voxengine.transport.tls import default_ssl_context
from voxengine.transport.upgrade import endpoint as _endpoint
from voxengine.transport.upgrade import parse_retry_after, refusal, socket_failure

__all__ = [
    "WebSocketConnection",
    "default_ssl_context",
    "open_websocket",
    "parse_retry_after",
    "redact",
    "redacting_logger",
]

logger = logging.getLogger("voxengine.transport")


class _RedactingFilter(logging.Filter):
    """Rewrites each record so credentials in handshake traces never reach handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def redacting_logger(name: str) -> logging.Logger:
    """A logger whose records have credentials removed; give it to ``websockets``.

    ``websockets`` logs handshake headers at DEBUG level, ``Authorization`` included;
    every connection voxengine opens or serves logs through such a logger instead.
    """
    log = logging.getLogger(name)
    if not any(isinstance(f, _RedactingFilter) for f in log.filters):
        log.addFilter(_RedactingFilter())
    return log


_WIRE_LOGGER = redacting_logger("voxengine.transport.websockets")

#: Seconds to wait for the peer's close frame before dropping the connection.
_CLOSE_TIMEOUT = 2.0

#: Largest frame accepted from the server; audio deltas are far smaller.
MAX_FRAME_BYTES = 16 * 1024 * 1024


def _closed(exc: websockets.ConnectionClosed) -> ConnectionClosed:
    frame = exc.rcvd
    code = frame.code if frame is not None else None
    reason = frame.reason if frame is not None else ""
    if isinstance(exc, websockets.ConnectionClosedOK):
        return ConnectionClosedOK(code, reason)
    return ConnectionClosedError(code, reason)


_DATA_OPCODES = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)

#: The headers an open connection's upgrade response keeps (see :func:`open_websocket`):
#: none, one empty ``Headers`` shared by every connection (never written to).
_NO_HEADERS = Headers()


class _PushingConnection(TimerKeepalive):
    """``ClientConnection`` whose data messages can go to a sink instead of ``recv``.

    Until :meth:`start_push`, messages are queued for ``recv`` as usual and counted
    (``queued``; a message whose first fragment came before the switch is queued too).
    From then on each whole message goes to the sink from :meth:`process_event`; while
    ``recv`` has not taken every queued message (:attr:`pulling`) the new ones are
    held, and :meth:`release` pushes them.
    """

    # Slots for what this class adds: ``ClientConnection`` instances already carry
    # about thirty attributes, and a few more in their ``__dict__`` double its size.
    __slots__ = (
        "_abort_timer",
        "_closer",
        "_deadline",
        "_direct",
        "_fragmented_text",
        "_fragments",
        "_queueing_fragments",
        "held",
        "on_close",
        "queued",
        "sink",
        "tap",
    )

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.queued = 0
        self.sink: FrameSink | None = None
        self.held: list[str | bytes] | None = None
        self._queueing_fragments = False  # a fragmented message began before start_push
        self._fragments: list[bytes] = []
        self._fragmented_text = False
        self._closer: asyncio.Task[None] | None = None  # set once pushing failed
        #: ``sink`` while a whole text frame can go straight to it (pushing, nothing
        #: held, not failed, no fragments queued for ``recv``); else ``None``.
        self._direct: FrameSink | None = None
        #: Sees whole text frames first while pushing (see ``WebSocketConnection.tap_text``).
        self.tap: TextTap | None = None
        #: Called with the close once the connection is lost (see ``when_closed``).
        self.on_close: Callable[[ConnectionClosed], None] | None = None
        self._abort_timer: asyncio.TimerHandle | None = None

    @property
    def close_deadline(self) -> float | None:
        """``websockets``' close deadline (loop time), plus a bound on the close.

        Once the connection is closing (a close frame either way, or a protocol error
        in what the peer sent), ``websockets`` sets this deadline but enforces it only
        inside ``close()``: a peer that then neither answers nor closes the TCP
        connection would keep ``recv`` (and the session reading it) waiting for ever.
        Setting it also schedules the socket's abort at the deadline (nothing is added
        to the read callback: the deadline is set once per connection).
        """
        return self._deadline

    @close_deadline.setter
    def close_deadline(self, deadline: float | None) -> None:
        self._deadline = deadline
        if deadline is not None and self._abort_timer is None:
            self._abort_timer = self.loop.call_at(deadline, self._abort_unclosed)

    def _abort_unclosed(self) -> None:
        if not self.connection_lost_waiter.done():
            logger.debug("the peer did not close within the close timeout: aborting")
            self.transport.abort()

    def report_close(self, _: object) -> None:
        """``connection_lost_waiter``'s done callback: the close to :attr:`on_close`."""
        callback = self.on_close
        if callback is None:
            return
        try:
            callback(_closed(self.protocol.close_exc))
        except Exception:
            logger.exception("close callback failed")

    @property
    def pulling(self) -> bool:
        """Messages read before :meth:`start_push` are still to be taken by ``recv``."""
        return self.queued > 0 or self._queueing_fragments

    def start_push(self, sink: FrameSink) -> None:
        self.sink = sink
        self.held = [] if self.pulling else None
        self._update_direct()

    def _update_direct(self) -> None:
        plain = self.held is None and self._closer is None and not self._queueing_fragments
        self._direct = self.sink if plain else None

    def release(self) -> None:
        """Push the held messages; later ones are pushed as they arrive."""
        held, self.held = self.held, None
        self._update_direct()
        for message in held or ():
            self._push(message)

    def process_event(self, event: WireEvent) -> None:
        # ``websockets`` calls this for every event it parsed; it must not raise.
        sink = self._direct
        if sink is not None and type(event) is Frame and event.opcode is Opcode.TEXT and event.fin:
            # The hot path (a whole text frame while pushing): _message and _push inlined.
            tap = self.tap
            if tap is not None:
                try:
                    if tap(event.data):
                        return
                except Exception:
                    logger.exception("text tap failed; closing the connection")
                    self._fail(CloseCode.INTERNAL_ERROR, "internal error")
                    return
            try:
                text = str(event.data, "utf-8")
            except UnicodeDecodeError:
                self._fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text frame")
                return
            try:
                sink(text)
            except Exception:
                logger.exception("frame sink failed; closing the connection")
                self._fail(CloseCode.INTERNAL_ERROR, "internal error")
            return
        if type(event) is Frame and event.opcode in _DATA_OPCODES:
            if self._closer is not None:
                return  # failed: the connection is closing, nothing more is delivered
            if self.sink is not None and not self._queueing_fragments:
                message = self._message(event)
                if message is None:
                    return
                if self.held is not None:
                    self.held.append(message)
                else:
                    self._push(message)
                return
            self._queueing_fragments = not event.fin
            self._update_direct()
            if event.fin:
                self.queued += 1
        super().process_event(event)

    def _message(self, frame: Frame) -> str | bytes | None:
        """The whole message ``frame`` completes (``None`` while fragments remain)."""
        data = frame.data
        if frame.opcode is not Opcode.CONT:
            if frame.fin:
                return self._decoded(data, frame.opcode is Opcode.TEXT)
            self._fragments = [bytes(data)]
            self._fragmented_text = frame.opcode is Opcode.TEXT
            return None
        self._fragments.append(bytes(data))
        if not frame.fin:
            return None
        whole, self._fragments = b"".join(self._fragments), []
        return self._decoded(whole, self._fragmented_text)

    def _decoded(self, data: bytes | bytearray | memoryview, text: bool) -> str | bytes | None:
        if not text:
            return data if type(data) is bytes else bytes(data)
        try:
            return str(data, "utf-8")
        except UnicodeDecodeError:
            # As ``websockets``' own recv does: a text frame must be UTF-8 (RFC 6455 8.1).
            self._fail(CloseCode.INVALID_DATA, "invalid UTF-8 in a text frame")
            return None

    def _push(self, message: str | bytes) -> None:
        if self._closer is not None:
            return  # an earlier message failed the connection
        assert self.sink is not None
        try:
            self.sink(message)
        except Exception:
            logger.exception("frame sink failed; closing the connection")
            self._fail(CloseCode.INTERNAL_ERROR, "internal error")

    def _fail(self, code: int, reason: str) -> None:
        self.held = None  # nothing more is pushed; ``recv`` ends with the close
        if self._closer is None:
            self._closer = asyncio.get_running_loop().create_task(self.close(code, reason))
        self._direct = None


@final
class WebSocketConnection(DirectConnection):
    """A :class:`~voxengine.transport.DirectConnection` over a ``websockets`` client."""

    # Slots: one of these per session (memory per idle session).
    __slots__ = ("_ws",)

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    def push_to(self, sink: FrameSink) -> bool:
        """Push frames to ``sink`` from the read callback (see ``PushConnection``).

        Returns False for a ``websockets`` connection not opened by
        :func:`open_websocket` (it cannot push; read it with :meth:`recv`).

        Raises:
            InvalidState: this connection already pushes its frames.
        """
        ws = self._ws
        if not isinstance(ws, _PushingConnection):
            return False
        if ws.sink is not None:
            raise InvalidState("this connection already pushes its frames")
        ws.start_push(sink)
        return True

    def tap_text(self, tap: TextTap | None) -> bool:
        """Let ``tap`` see each whole text frame first, while frames are pushed
        (``None``: stop); returns False (and changes nothing) if this connection cannot.

        The tap runs in the read callback before the frame is decoded: it gets the
        payload's raw bytes and returns True when it took the frame, which then never
        reaches the sink; False sends the frame on as usual (UTF-8 checked, then to
        the sink), so the tap need not check anything it does not take. It sees only
        frames that would go straight to the sink (never held, fragmented or control
        frames), so frames keep their order. An exception it raises is logged and
        closes the connection (1011), as the sink's does.
        """
        ws = self._ws
        if not isinstance(ws, _PushingConnection):
            return False
        ws.tap = tap
        return True

    def when_closed(self, callback: Callable[[ConnectionClosed], None]) -> bool:
        """Once pushing, with every frame read before :meth:`push_to` taken by
        :meth:`recv`: call ``callback`` with the close (what :meth:`recv` would raise)
        when the connection has closed, instead of a :meth:`recv` waiting for it, and
        return True. Otherwise register nothing and return False (keep calling
        :meth:`recv`). Exceptions the callback raises are logged."""
        ws = self._ws
        if not isinstance(ws, _PushingConnection) or ws.sink is None or ws.pulling:
            return False
        ws.release()  # the held frames, if any: from now on only pushed ones
        ws.on_close = callback
        ws.connection_lost_waiter.add_done_callback(ws.report_close)
        return True

    async def send(self, data: str | bytes) -> None:
        """Send one frame (text for ``str``, binary for ``bytes``)."""
        try:
            await self._ws.send(data)
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def send_utf8(self, data: bytes) -> None:
        """Send one text frame given as its UTF-8 encoding (no ``str`` round trip)."""
        try:
            await self._ws.send(data, text=True)
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc

    #: ``websockets``' own close (see :meth:`write_utf8`).
    write_errors: ClassVar[tuple[type[Exception], ...]] = (websockets.ConnectionClosed,)

    def write_utf8(self, data: bytes) -> Awaitable[None]:
        """``websockets``' own ``send`` coroutine for the text frame: no coroutine of
        this connection's around it (see ``DirectConnection.write_utf8``)."""
        return self._ws.send(data, True)

    def write_failure(self, exc: Exception) -> ConnectionClosed:
        """The close ``websockets``' ``ConnectionClosed`` means (as :meth:`send_utf8`)."""
        assert isinstance(exc, websockets.ConnectionClosed)
        return _closed(exc)

    async def recv(self) -> str | bytes:
        """Wait for the next frame (once pushing: the close, see ``push_to``)."""
        ws = self._ws
        pushing = ws if isinstance(ws, _PushingConnection) and ws.sink is not None else None
        if pushing is not None and not pushing.pulling:
            pushing.release()  # every earlier message was taken: from now on, only the close
        try:
            frame = await ws.recv()
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc
        if pushing is not None:
            pushing.queued -= 1  # one of the messages read before push_to
        return frame

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection and wait for the closing handshake."""
        await self._ws.close(code, reason)


def _refused(exc: InvalidStatus, where: str, secrets: set[str]) -> ConnectFailed:
    response = exc.response
    return refusal(response.status_code, response.headers.get, response.body, where, secrets)


async def open_websocket(
    url: str,
    headers: Mapping[str, str],
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> WebSocketConnection:
    """Open a WebSocket to ``url`` within ``timeout`` seconds (TCP, TLS and upgrade).

    ``wss://`` URLs are verified with ``ssl_context`` when given (e.g. a private CA),
    else with :func:`default_ssl_context` (system trust store, ``$SSL_CERT_FILE`` /
    ``$SSL_CERT_DIR``). ``ssl_context`` is ignored for ``ws://``.

    Every failure is a :class:`ConnectFailed` whose message names the endpoint (never
    the path, query or credentials) and what failed; the ``websockets`` or OS error is
    chained as ``__cause__``. Any other exception is a bug.

    Raises:
        AuthenticationFailed: HTTP 401 or 403 on the upgrade.
        UpgradeRateLimited: HTTP 429 (``retry_after`` from ``Retry-After``).
        UpgradeRefused: any other HTTP status (``status``).
        CertificateRejected: the server's certificate failed verification
            (``reason``: hostname mismatch, untrusted certificate, ...).
        TLSFailed: any other TLS handshake failure.
        ConnectTimeout: nothing opened within ``timeout``, e.g. a server that accepts
            TCP but never answers the upgrade.
        ConnectFailed: DNS failure, refused or reset connection, an invalid URL, a
            server that closes or answers garbage during the upgrade.
    """
    secrets = secrets_in(url, headers)
    remember_secrets(secrets)
    where = _endpoint(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        secure = parts.scheme == "wss"
    except ValueError as exc:
        raise ConnectFailed(f"invalid WebSocket URL: {redact(str(exc), secrets)}") from exc
    options: dict[str, Any] = {}
    if secure:
        options["ssl"] = ssl_context if ssl_context is not None else default_ssl_context()
    try:
        ws = await connect(
            url,
            additional_headers=dict(headers),
            open_timeout=timeout,
            max_size=MAX_FRAME_BYTES,
            compression=None,
            user_agent_header="voxengine",
            logger=_WIRE_LOGGER,
            close_timeout=_CLOSE_TIMEOUT,
            create_connection=_PushingConnection,
            **options,
        )
    except InvalidStatus as exc:
        raise _refused(exc, where, secrets) from exc
    except OSError as exc:  # TLS, the timeout, the OS: the same errors on every backend
        raise socket_failure(exc, where, host, timeout) from exc
    except InvalidMessage as exc:
        cause = exc.__cause__
        if isinstance(cause, EOFError | OSError):
            message = f"{where} closed the connection during the WebSocket upgrade"
        else:
            message = f"{where} sent an invalid HTTP response to the WebSocket upgrade"
        raise ConnectFailed(message) from exc
    except websockets.InvalidURI as exc:
        raise ConnectFailed(f"invalid WebSocket URL: {redact(str(exc), secrets)}") from exc
    except websockets.exceptions.WebSocketException as exc:
        detail = redact(str(exc), secrets)
        raise ConnectFailed(f"WebSocket upgrade with {where} failed: {detail}") from exc
    except ValueError as exc:  # e.g. a host name IDNA cannot encode
        raise ConnectFailed(
            f"invalid WebSocket URL or option for {where}: {redact(str(exc), secrets)}"
        ) from exc
    # The upgrade request is spent: keep no copy of its credentials (nor its headers:
    # about 2 KB per session) in the open connection. ``websockets`` reads it only
    # during the handshake. Nor the response's headers (about 1.7 KB): nothing reads
    # them once open (the response object itself stays: ``websockets`` keeps it).
    ws.request = None
    if ws.response is not None:
        ws.response.headers = _NO_HEADERS
    return WebSocketConnection(ws)
