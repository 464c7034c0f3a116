"""WebSocket transport on ``picows``, a compiled (Cython) WebSocket client: the optional
second backend (``pip install voxengine[picows]``; select it with
``ProviderConfig(transport="picows")``, see :mod:`voxengine.transport.backends`).

:func:`open_picows` is a :class:`~voxengine.transport.Connector` with the contract of
:func:`~voxengine.transport.websocket.open_websocket`: the same typed errors with the
same messages (:mod:`~voxengine.transport.upgrade`), ``wss://`` verified with the same
:func:`~voxengine.transport.tls.default_ssl_context`, the same message size bound,
keepalive timing, write-buffer limit and close timeout, the same proxy settings from
the environment, credentials redacted from everything it logs or raises. Its
:class:`PicowsConnection` is a :class:`~voxengine.transport.DirectConnection` like
``websockets``': frames are pushed from ``picows``' read hook
(``WSListener.on_ws_frame``, :mod:`~voxengine.transport.picows_listener`), which runs
in the socket's read callback on the event loop's own transport (``uvloop``'s when it
runs), so there is no task switch between the socket and the session.

What differs: ``picows`` parses frames and masks outgoing ones in compiled code (the
gain, in CPU per frame); it supports no compression (``websockets`` here is opened
without it too) and its HTTP parser takes the upgrade response's status and headers
only (a refusal's body is quoted as far as it came with them). A frame larger than
the message bound is refused by ``picows`` itself (1009) without waiting for the
server's close frame, so that close reports no code.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any, final
from urllib.parse import urlsplit

from voxengine.errors import (
    ConfigError,
    ConnectFailed,
    ConnectionClosed,
    InvalidState,
)
from voxengine.redaction import redact, remember_secrets, secrets_in
from voxengine.transport import DirectConnection, FrameSink, TextTap
from voxengine.transport.backends import INSTALL_HINT
from voxengine.transport.picows_listener import (
    MAX_MESSAGE_BYTES,
    FrameHandler,
    listener_class,
)
from voxengine.transport.tls import default_ssl_context
from voxengine.transport.upgrade import check_url, endpoint, refusal, socket_failure

__all__ = ["PicowsConnection", "open_picows", "require_picows"]

#: Keepalive: a ping every 20 s, answered within 20 s (``websockets``' defaults).
PING_INTERVAL = 20.0
PING_TIMEOUT = 20.0


def require_picows() -> Any:
    """The ``picows`` module.

    Raises:
        ConfigError: ``picows`` is not installed (the message says how to install it).
    """
    try:
        import picows
    except ImportError as exc:
        raise ConfigError(f"transport 'picows' needs the picows package: {INSTALL_HINT}") from exc
    return picows


class _RedactingAdapter(logging.LoggerAdapter[logging.Logger]):
    """``picows``' logger: credentials removed from every record (it logs the upgrade
    request, ``Authorization`` included, at its lowest level), and its per-connection
    INFO lines ("WS connection established", "Disconnected") demoted to DEBUG.
    Given as an adapter, not a logger, so ``picows`` makes no child logger per socket
    (a child's records would skip this logger's filters)."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if level == logging.INFO:
            level = logging.DEBUG
        if not self.isEnabledFor(level):
            return
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):
            text = f"{msg} {args}"
        self.logger.log(level, redact(text), **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


_WIRE_LOGGER = _RedactingAdapter(logging.getLogger("voxengine.transport.picows"))


@final
class PicowsConnection(DirectConnection):
    """A :class:`~voxengine.transport.DirectConnection` over a ``picows`` client
    (opened by :func:`open_picows`); every method keeps the contract of
    :class:`~voxengine.transport.websocket.WebSocketConnection`'s."""

    __slots__ = ("_binary", "_handler", "_text")

    def __init__(self, handler: FrameHandler, text: Any, binary: Any) -> None:
        self._handler = handler
        self._text, self._binary = text, binary

    def push_to(self, sink: FrameSink) -> bool:
        """Push frames to ``sink`` from the read callback (see ``PushConnection``).

        Raises:
            InvalidState: this connection already pushes its frames.
        """
        handler = self._handler
        if handler.sink is not None:
            raise InvalidState("this connection already pushes its frames")
        handler.start_push(sink)
        return True

    def tap_text(self, tap: TextTap | None) -> bool:
        """See :meth:`DirectConnection.tap_text`; the tap gets a ``memoryview`` of
        ``picows``' read buffer, valid only during the call."""
        self._handler.tap = tap
        return True

    def when_closed(self, callback: Callable[[ConnectionClosed], None]) -> bool:
        """See :meth:`DirectConnection.when_closed` (exceptions the callback raises are
        logged)."""
        handler = self._handler
        if handler.sink is None or handler.pulling:
            return False
        handler.release()  # the held frames, if any: from now on only pushed ones
        handler.on_close = callback
        closed = handler.closed
        if closed is not None:
            asyncio.get_running_loop().call_soon(_report, callback, closed)
        return True

    async def send(self, data: str | bytes) -> None:
        """Send one frame (text for ``str``, binary for ``bytes``); waits while the
        socket's write buffer is above its high-water mark.

        Raises:
            ConnectionClosed: the connection is closed or closing.
        """
        handler = self._handler
        transport = handler.transport
        assert transport is not None
        if handler.closed is not None or transport.is_close_frame_sent:
            raise await self._closed()
        transport.send(self._text if type(data) is str else self._binary, data)
        if handler.paused:
            await self._drain()

    async def send_utf8(self, data: bytes) -> None:
        """Send one text frame given as its UTF-8 encoding (no ``str`` round trip)."""
        pending = self.write_utf8(data)
        if pending is not None:
            await pending

    def write_utf8(self, data: bytes) -> Awaitable[None] | None:
        """:meth:`send_utf8` without a coroutine while nothing waits: the frame goes to
        ``picows`` at once (``None``); the returned coroutine raises the close, or waits
        for the write buffer to drain (see ``DirectConnection.write_utf8``)."""
        handler = self._handler
        transport = handler.transport
        assert transport is not None
        if handler.closed is not None or transport.is_close_frame_sent:
            return self._raise_closed()
        transport.send(self._text, data)
        if handler.paused:
            return self._drain()
        return None

    async def _raise_closed(self) -> None:
        raise await self._closed()

    async def _drain(self) -> None:
        handler = self._handler
        waiter = asyncio.get_running_loop().create_future()
        waiters = handler.drain_waiters
        if waiters is None:
            waiters = handler.drain_waiters = []
        waiters.append(waiter)
        try:
            await waiter
        finally:
            if handler.drain_waiters is not None and waiter in handler.drain_waiters:
                handler.drain_waiters.remove(waiter)
        if handler.closed is not None:
            raise handler.closed

    async def _closed(self) -> ConnectionClosed:
        """The close, once the closing handshake (under way) has ended."""
        await self._wait_disconnected()
        closed = self._handler.closed
        assert closed is not None
        return closed

    async def _wait_disconnected(self) -> None:
        handler = self._handler
        if handler.closed is not None:
            return
        waiter = handler.disconnected
        if waiter is None:
            waiter = handler.disconnected = asyncio.get_running_loop().create_future()
        await asyncio.shield(waiter)

    async def recv(self) -> str | bytes:
        """Wait for the next frame (once pushing: the close, see ``push_to``)."""
        handler = self._handler
        if handler.sink is not None and not handler.pulling:
            handler.release()  # every earlier message was taken: from now on, only the close
        while not handler.queue:
            closed = handler.closed
            if closed is not None:
                raise closed
            waiter = handler.waiter
            if waiter is None:
                waiter = handler.waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(waiter)
        return handler.taken()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection and wait for the closing handshake (at most
        ``CLOSE_TIMEOUT`` seconds: then the socket is aborted)."""
        self._handler.start_close(code, reason)
        await self._wait_disconnected()


def _report(callback: Callable[[ConnectionClosed], None], closed: ConnectionClosed) -> None:
    try:
        callback(closed)
    except Exception:
        logging.getLogger("voxengine.transport").exception("close callback failed")


def _system_proxy(url: str) -> str | None:
    """The proxy the environment sets for ``url``, chosen as ``websockets`` chooses
    (its ``get_proxy``, where this ``websockets`` has one)."""
    try:
        from websockets.uri import get_proxy, parse_uri
    except ImportError:  # websockets 14: no proxy support, none here either
        return None
    return get_proxy(parse_uri(url))


async def open_picows(
    url: str,
    headers: Mapping[str, str],
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
    ping_interval: float | None = PING_INTERVAL,
    ping_timeout: float | None = PING_TIMEOUT,
) -> PicowsConnection:
    """Open a WebSocket to ``url`` with ``picows`` within ``timeout`` seconds (TCP, TLS
    and upgrade): :func:`~voxengine.transport.websocket.open_websocket`'s contract,
    errors and messages included. ``ping_interval`` / ``ping_timeout`` (seconds,
    ``None``: off) set the keepalive.

    Raises:
        ConfigError: ``picows`` is not installed.
        AuthenticationFailed: HTTP 401 or 403 on the upgrade.
        UpgradeRateLimited: HTTP 429 (``retry_after`` from ``Retry-After``).
        UpgradeRefused: any other HTTP status (``status``).
        CertificateRejected: the server's certificate failed verification.
        TLSFailed: any other TLS handshake failure.
        ConnectTimeout: nothing opened within ``timeout``.
        ConnectFailed: DNS failure, refused or reset connection, an invalid URL, a
            proxy failure, a server that closes or answers garbage during the upgrade.
    """
    picows = require_picows()
    secrets = secrets_in(url, headers)
    remember_secrets(secrets)
    where = endpoint(url)
    check_url(url, secrets)
    parts = urlsplit(url)
    host = parts.hostname or ""
    options: dict[str, Any] = {}
    if parts.scheme == "wss":
        options["ssl_context"] = ssl_context if ssl_context is not None else default_ssl_context()
    proxy = _system_proxy(url)
    if proxy is not None:
        options["proxy"] = proxy
    extra = dict(headers)
    if not any(name.lower() == "user-agent" for name in extra):
        extra["User-Agent"] = "voxengine"
    make = listener_class()

    def factory(request: object, response: object) -> FrameHandler:
        return make(ping_interval, ping_timeout)

    try:
        async with asyncio.timeout(timeout):
            transport, handler = await picows.ws_connect(
                factory,
                url,
                extra_headers=extra,
                websocket_handshake_timeout=timeout,
                max_frame_size=MAX_MESSAGE_BYTES,
                logger_name=_WIRE_LOGGER,
                use_aiofastnet=False,  # the event loop's own transport (see the module)
                enable_auto_ping=False,  # keepalive on a loop timer (picows_listener)
                **options,
            )
    except picows.WSInvalidStatusError as exc:
        response = exc.response
        assert response is not None
        raise refusal(
            int(response.status), response.headers.get, exc.raw_body, where, secrets
        ) from exc
    except picows.WSHandshakeError as exc:
        raise ConnectFailed(
            f"{where} sent an invalid HTTP response to the WebSocket upgrade"
        ) from exc
    except OSError as exc:  # TLS, the timeout, the OS: the same errors on every backend
        raise socket_failure(exc, where, host, timeout) from exc
    except (picows.WSError, ValueError) as exc:  # e.g. a host name IDNA cannot encode
        raise ConnectFailed(
            f"WebSocket connection to {where} failed: {redact(str(exc), secrets)}"
        ) from exc
    except Exception as exc:
        if type(exc).__module__.startswith("python_socks"):  # picows' proxy client
            raise ConnectFailed(
                f"the proxy for {where} failed: {redact(str(exc), secrets)}"
            ) from exc
        raise
    if handler is None:  # the socket closed before the upgrade's answer
        raise ConnectFailed(f"{where} closed the connection during the WebSocket upgrade")
    # The upgrade is spent: keep no copy of its credentials in the open connection
    # (picows keeps the request and the headers it was given).
    transport.request.headers.clear()
    extra.clear()
    return PicowsConnection(handler, picows.WSMsgType.TEXT, picows.WSMsgType.BINARY)
