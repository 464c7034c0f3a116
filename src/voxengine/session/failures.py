"""Which failures end a session, and how they are reported.

:func:`is_retryable` decides whether a failed connect may be tried again,
:func:`is_retryable_close` whether a session that ended with a failure may be
reconnected; :func:`handshake_failure` types a session that never became ready and
:func:`scrub` keeps a connection's secrets out of what it raises.
"""

from __future__ import annotations

from voxengine.errors import (
    AuthenticationFailed,
    CertificateRejected,
    ConfigError,
    ConnectFailed,
    ConnectionClosed,
    HandshakeClosed,
    ProviderError,
    RateLimited,
    SessionExpired,
    TransportError,
    UpgradeRefused,
    VoxError,
)
from voxengine.redaction import redact

__all__ = ["handshake_failure", "is_retryable", "is_retryable_close", "scrub"]


def scrub(exc: VoxError, secrets: set[str]) -> None:
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


def handshake_failure(exc: VoxError | None) -> VoxError:
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


def is_retryable_close(failure: VoxError) -> bool:
    """Whether a session that ended with ``failure`` may be reconnected.

    Lost connections, stalls and the session duration cap: yes. Refused credentials,
    refused configuration and quota or rate limits: no — retrying would only repeat
    the refusal (and hammer the service).
    """
    if isinstance(failure, SessionExpired):
        return True
    if isinstance(failure, AuthenticationFailed | ProviderError):
        return False
    return isinstance(failure, ConnectionClosed | TransportError)
