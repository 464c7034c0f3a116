"""The voxengine exception hierarchy.

Exceptions are raised for failures of the call the application made; recoverable
provider errors (a rejected ``response.cancel``, a rate-limit notice) arrive as
:class:`voxengine.events.ProviderErrorEvent` instead.

::

    VoxError
    ├── ConfigError              bad config, unknown provider, missing key (before any I/O)
    ├── InvalidState             local misuse: command after close, send before connect
    ├── EventTimeout             no awaited event in time (also a TimeoutError)
    ├── TransportError
    │   ├── ConnectFailed        DNS/TCP/TLS/upgrade refused
    │   │   └── AuthenticationFailed   the service refused the credentials
    │   └── ConnectionClosed(code, reason)
    │       ├── ConnectionClosedOK
    │       └── ConnectionClosedError
    ├── ProviderError(code, message)   fatal refusal by the service
    │   ├── RateLimited
    │   └── SessionExpired
    ├── ProtocolViolation        the remote peer broke the protocol
    └── AudioError               wrong audio type, length or format
"""

from __future__ import annotations

__all__ = [
    "AudioError",
    "AuthenticationFailed",
    "ConfigError",
    "ConnectFailed",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "EventTimeout",
    "InvalidState",
    "ProtocolViolation",
    "ProviderError",
    "RateLimited",
    "SessionExpired",
    "TransportError",
    "VoxError",
]


class VoxError(Exception):
    """Base class of every exception voxengine raises on purpose."""


class ConfigError(VoxError, ValueError):
    """A configuration value is invalid or unsupported; raised before any I/O."""


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
    """The service reported that a rate limit or quota was exceeded."""


class SessionExpired(ProviderError):
    """The service ended the session because it reached its maximum duration."""


class ProtocolViolation(VoxError):
    """The remote peer sent something the protocol does not allow (e.g. a non-JSON frame)."""


class AudioError(VoxError, ValueError):
    """Audio has the wrong type, length, sample rate or channel count."""
