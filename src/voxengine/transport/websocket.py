"""WebSocket transport on the ``websockets`` asyncio implementation.

Maps every ``websockets``/OS failure to the voxengine hierarchy, chaining the cause:
HTTP 401/403 at the upgrade → :class:`AuthenticationFailed`; any other refused
upgrade, DNS, TCP, TLS or timeout failure → :class:`ConnectFailed`; a closed
connection → :class:`ConnectionClosedOK` / :class:`ConnectionClosedError` with the
close frame's code and reason.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Mapping
from typing import final

import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from voxengine.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
)

__all__ = ["WebSocketConnection", "open_websocket", "redacting_logger"]

logger = logging.getLogger("voxengine.transport")

_SECRET_HEADER = re.compile(
    r"((?:authorization|api-key|x-goog-api-key|x-api-key|openai-insecure-api-key)\s*[:.=]\s*)"
    r"(?:(bearer|token|basic)\s+)?[^\s,;'\"]+",
    re.IGNORECASE,
)
_SECRET_QUERY = re.compile(r"([?&](?:key|api-key|api_key|access_token)=)[^&\s'\"]+", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with credential header values and secret query values replaced by ``***``."""
    text = _SECRET_HEADER.sub(
        lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + "***", text
    )
    return _SECRET_QUERY.sub(r"\1***", text)


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


@final
class WebSocketConnection:
    """A :class:`~voxengine.transport.Connection` over a ``websockets`` client."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    async def send(self, data: str | bytes) -> None:
        """Send one frame (text for ``str``, binary for ``bytes``)."""
        try:
            await self._ws.send(data)
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def recv(self) -> str | bytes:
        """Wait for the next frame."""
        try:
            return await self._ws.recv()
        except websockets.ConnectionClosed as exc:
            raise _closed(exc) from exc

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection and wait for the closing handshake."""
        await self._ws.close(code, reason)


async def open_websocket(
    url: str,
    headers: Mapping[str, str],
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> WebSocketConnection:
    """Open a WebSocket to ``url`` within ``timeout`` seconds.

    ``ssl_context`` overrides certificate verification for ``wss://`` URLs (e.g. a
    private CA); the default verifies against the system's trust store.

    Raises:
        AuthenticationFailed: the server answered the upgrade with 401 or 403.
        ConnectFailed: any other failure to open the connection.
    """
    try:
        ws = await connect(
            url,
            additional_headers=dict(headers),
            open_timeout=timeout,
            max_size=MAX_FRAME_BYTES,
            compression=None,
            user_agent_header="voxengine",
            logger=_WIRE_LOGGER,
            ssl=ssl_context,
            close_timeout=_CLOSE_TIMEOUT,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        body = exc.response.body.decode("utf-8", "replace")[:200] if exc.response.body else ""
        if status in (401, 403):
            raise AuthenticationFailed(f"server refused the credentials (HTTP {status})") from exc
        raise ConnectFailed(f"server refused the WebSocket upgrade (HTTP {status}) {body}") from exc
    except (TimeoutError, OSError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
        raise ConnectFailed(f"could not connect: {type(exc).__name__}: {redact(str(exc))}") from exc
    return WebSocketConnection(ws)
