"""The typed errors of a failed WebSocket opening, shared by every backend.

Each backend (:mod:`~voxengine.transport.websocket`, :mod:`~voxengine.transport.picows`)
catches its own library's exceptions and maps them here, so the same failure gives the
same :class:`~voxengine.errors.ConnectFailed` subclass and message whichever backend
opened the connection: an HTTP status on the upgrade (:func:`refusal`), an OS error
(:func:`os_failure`; with TLS and timeouts, :func:`socket_failure`), a bad URL
(:func:`check_url`). Messages name the endpoint
(:func:`endpoint`: scheme, host and port, never the path, query or credentials), and
refusal bodies are redacted before they are cut.
"""

from __future__ import annotations

import email.utils
import errno
import math
import socket
import ssl
import time
from collections.abc import Callable

import websockets
from websockets.uri import parse_uri

from voxengine.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectTimeout,
    UpgradeRateLimited,
    UpgradeRefused,
)
from voxengine.redaction import redact
from voxengine.transport.tls import tls_failure

__all__ = [
    "check_url",
    "endpoint",
    "os_failure",
    "parse_retry_after",
    "refusal",
    "socket_failure",
]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from an HTTP ``Retry-After`` value (RFC 9110 §10.2.3).

    Accepts delay-seconds (``"30"``; a decimal is tolerated) and an HTTP-date (the
    delay until then, never negative). ``None`` when absent or unparsable.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # RFC 9110 dates are GMT; a zone-less date is not one
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def endpoint(url: str) -> str:
    """``scheme://host:port`` of ``url``: where we connect, without path, query or user."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    shown = f"[{host}]" if ":" in host else host
    default = 443 if parts.scheme == "wss" else 80
    return f"{parts.scheme}://{shown}:{port or default}"


def check_url(url: str, secrets: set[str]) -> None:
    """Refuse what is not a ``ws://`` or ``wss://`` URL with a host (the same rules
    for every backend: ``websockets``' own parser).

    Raises:
        ConnectFailed: the URL is invalid (its message redacted of ``secrets``).
    """
    try:
        parse_uri(url)
    except (websockets.InvalidURI, ValueError) as exc:
        raise ConnectFailed(f"invalid WebSocket URL: {redact(str(exc), secrets)}") from exc


def socket_failure(exc: OSError, where: str, host: str, timeout: float) -> ConnectFailed:
    """The typed error for an opening that failed below HTTP: TLS (``TLSFailed``), the
    ``timeout`` seconds passing (``ConnectTimeout``), any other OS error
    (:func:`os_failure`). Every backend catches ``OSError`` (``ssl.SSLError`` and
    ``TimeoutError`` are ones) around its whole opening and raises this from it."""
    if isinstance(exc, ssl.SSLError):
        return tls_failure(exc, where)
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(
            f"no WebSocket connection to {where} within {timeout:g} s "
            "(TCP connect, TLS or HTTP upgrade unanswered)"
        )
    return os_failure(exc, where, host)


def os_failure(exc: OSError, where: str, host: str) -> ConnectFailed:
    """The typed error for an OS error while connecting to ``where``."""
    if isinstance(exc, socket.gaierror):
        return ConnectFailed(f"DNS lookup failed for {host!r} ({exc.strerror or exc})")
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return ConnectFailed(f"connection refused by {where}")
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return ConnectFailed(f"connection to {where} was reset during the WebSocket upgrade")
    return ConnectFailed(f"could not connect to {where}: {exc.strerror or exc}")


def refusal(
    status: int,
    header: Callable[[str], str | None],
    body: bytes | None,
    where: str,
    secrets: set[str],
) -> ConnectFailed:
    """The typed error for an HTTP ``status`` answering the upgrade (``header(name)``
    reads a response header): 401/403 → :class:`AuthenticationFailed`, 429 →
    :class:`UpgradeRateLimited` with ``Retry-After``, any other →
    :class:`UpgradeRefused`. The first 300 characters of ``body`` are quoted, redacted
    of ``secrets`` and credential headers first (servers echo requests)."""
    # Redact the whole body before cutting it, so no prefix of a secret survives the cut.
    text = redact(body.decode("utf-8", "replace"), secrets) if body else ""
    text = text[:300].strip()
    detail = f": {text}" if text else ""
    if status in (401, 403):
        return AuthenticationFailed(
            f"{where} refused the credentials (HTTP {status} on the WebSocket upgrade){detail}"
        )
    if status == 429:
        retry_after = parse_retry_after(header("Retry-After"))
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        return UpgradeRateLimited(
            f"{where} is rate limiting connections (HTTP 429 on the WebSocket upgrade{wait})"
            f"{detail}",
            retry_after=retry_after,
        )
    return UpgradeRefused(
        f"{where} refused the WebSocket upgrade (HTTP {status}){detail}", status=status
    )
