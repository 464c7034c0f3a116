"""The voxengine exception hierarchy.

Exceptions are raised for failures of the call the application made; recoverable
provider errors (a rejected ``response.cancel``, a rate-limit notice) arrive as
:class:`voxengine.events.ProviderErrorEvent` instead.

Every failure to open a connection is a :class:`ConnectFailed` (never a bare
``OSError``/``ValueError``) whose message says what failed; which of them a
``connect()`` retries is decided by :func:`voxengine.session.is_retryable`.
Exception texts never contain an API key (see :mod:`voxengine.redaction`).

::

    VoxError
    ├── ConfigError              bad config, unknown provider, missing key (before any I/O)
    │   └── TextError            text not a str, empty, lone surrogates, or too long
    ├── InvalidState             local misuse: command after close, send before connect
    ├── EventTimeout             no awaited event in time (also a TimeoutError)
    ├── TransportError
    │   ├── ConnectFailed        the connection could not be opened (retryable by default)
    │   │   ├── AuthenticationFailed   the service refused the credentials (never retried)
    │   │   ├── TLSFailed              the TLS handshake failed
    │   │   │   └── CertificateRejected    untrusted / wrong-host / expired certificate
    │   │   ├── ConnectTimeout         no connection or session handshake in time
    │   │   ├── UpgradeRefused(status) the server answered the upgrade with HTTP status
    │   │   │   └── UpgradeRateLimited     HTTP 429; also a RateLimited (retry_after)
    │   │   └── HandshakeClosed(code, reason)  closed before the session was ready
    │   └── ConnectionClosed(code, reason)
    │       ├── ConnectionClosedOK
    │       └── ConnectionClosedError
    ├── ProviderError(code, message)   fatal refusal by the service
    │   ├── RateLimited(retry_after)   (UpgradeRateLimited is one too)
    │   └── SessionExpired
    ├── ProtocolViolation        the remote peer broke the protocol
    └── AudioError               wrong audio type, length or format
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "AuthenticationFailed",
    "CertificateRejected",
    "ConfigError",
    "ConnectFailed",
    "ConnectTimeout",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "EventTimeout",
    "HandshakeClosed",
    "InvalidState",
    "ProtocolViolation",
    "ProviderError",
    "RateLimited",
    "SessionExpired",
    "TLSFailed",
    "TextError",
    "TransportError",
    "UpgradeRateLimited",
    "UpgradeRefused",
    "VoxError",
]


class VoxError(Exception):
    """Base class of every exception voxengine raises on purpose."""


class ConfigError(VoxError, ValueError):
    """A configuration value is invalid or unsupported; raised before any I/O."""


class TextError(ConfigError):
    """Text the application sent cannot be sent: not a ``str``, empty where text is
    required, not valid Unicode (a lone surrogate), or longer than
    :data:`voxengine.commands.MAX_TEXT_CHARS`. Raised before anything is sent."""


class InvalidState(VoxError):
    """The call is not allowed in the current state (e.g. sending before ``connect()``)."""


class EventTimeout(VoxError, TimeoutError):
    """An awaited event did not arrive in time (``except TimeoutError`` still catches it)."""


class TransportError(VoxError):
    """The network connection failed."""


class ConnectFailed(TransportError):
    """The connection could not be opened (DNS, TCP, TLS or WebSocket upgrade)."""


class AuthenticationFailed(ConnectFailed):
    """The service refused the credentials (HTTP 401/403, OpenAI close 3000)."""


class TLSFailed(ConnectFailed):
    """The TLS handshake with the server failed (e.g. no common protocol, reset)."""


class CertificateRejected(TLSFailed):
    """The server's certificate failed verification; retrying cannot help.

    ``reason`` says why in a few words: ``"hostname mismatch"``, ``"untrusted
    certificate"``, ``"expired certificate"``, or OpenSSL's own words otherwise.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        self.reason = reason
        super().__init__(message)


class ConnectTimeout(ConnectFailed):
    """The connection, the WebSocket upgrade or the session handshake took too long."""


class UpgradeRefused(ConnectFailed):
    """The server answered the WebSocket upgrade with HTTP ``status`` instead of 101.

    5xx (and 408) are worth retrying; other 4xx are not (the request itself is wrong).
    401/403 raise :class:`AuthenticationFailed` instead and 429 :class:`UpgradeRateLimited`.
    """

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


class HandshakeClosed(ConnectFailed):
    """The connection closed (or dropped, ``code`` ``None``) before the session was ready.

    Retried like any connect failure; a close that means "bad key" or "bad
    configuration" raises :class:`AuthenticationFailed` / :class:`ProviderError` instead.
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        shown = f" (code={code}, reason={reason!r})" if code is not None or reason else ""
        super().__init__(f"connection closed during the session handshake{shown}")


class ConnectionClosed(TransportError):
    """The connection is closed; ``code`` and ``reason`` come from the close frame.

    ``code`` is ``None`` when the connection dropped without a close frame.
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        self.code = code
        self.reason = reason
        super().__init__(f"connection closed (code={code}, reason={reason!r})")


class ConnectionClosedOK(ConnectionClosed):
    """The connection was closed normally (close code 1000 or 1001 on our request)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection was closed abnormally."""


class ProviderError(VoxError):
    """The service refused the session in a way that cannot be recovered by retrying at once.

    ``code`` is the provider's machine-readable code (e.g. ``"invalid_model"``).
    """

    def __init__(self, code: str | None, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}" if code else message)


class RateLimited(ProviderError):
    """The service reported that a rate limit or quota was exceeded.

    ``retry_after`` is how many seconds the service asked the client to wait before
    trying again (HTTP ``Retry-After``), ``None`` when it did not say.
    """

    def __init__(self, code: str | None, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(code, message)


class UpgradeRateLimited(RateLimited, UpgradeRefused):
    """HTTP 429 on the WebSocket upgrade: both a :class:`RateLimited` (with
    ``retry_after``) and a :class:`ConnectFailed` (retried after ``retry_after``)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.status = 429
        self.retry_after = retry_after
        self.code = "rate_limited"
        self.message = message
        Exception.__init__(self, message)


class SessionExpired(ProviderError):
    """The service ended the session because it reached its maximum duration."""


class ProtocolViolation(VoxError):
    """The remote peer sent something the protocol does not allow (e.g. a non-JSON frame)."""


class AudioError(VoxError, ValueError):
    """Audio has the wrong type, length, sample rate or channel count."""
