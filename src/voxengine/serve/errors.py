"""Why a call ends or is refused: :class:`CloseReason` and the serving errors.

Every way a call can end has one :class:`CloseReason`: a WebSocket close code, a
stable name the client can switch on, and a human sentence. Endpoints that are not
WebSockets (a Twilio stream, a WebRTC peer) report the same name in their own way.

Error tree (under :class:`voxengine.errors.VoxError`)::

    ServeError
    └── CallRefused(reason)        # the call cannot start or must end now
        └── TokenRefused(reason)   # missing, malformed, forged, expired or out-of-scope token

A :class:`CallRefused` never carries a secret: token text, deployment secret and API
keys stay out of its message (see :mod:`voxengine.redaction`).
"""

from __future__ import annotations

import enum

from voxengine.errors import VoxError

__all__ = ["CallRefused", "CloseReason", "ServeError", "TokenRefused"]


class CloseReason(enum.Enum):
    """How a call ended: ``(WebSocket close code, description)``; ``name.lower()`` is the
    wire name (``"unauthorized"``, ``"too_big"``, ...)."""

    NORMAL = (1000, "call ended")
    GOING_AWAY = (1001, "server shutting down")
    MALFORMED = (1007, "malformed message")
    TOO_BIG = (1009, "message too big")
    INTERNAL = (1011, "internal error")
    BUSY = (1013, "server at capacity; try again later")
    PROTOCOL = (4400, "unexpected message")
    UNAUTHORIZED = (4401, "missing, malformed, forged or expired token")
    FORBIDDEN = (4403, "token not valid for this call")
    TIMEOUT = (4408, "no hello in time")
    TOO_MANY_CALLS = (4409, "too many concurrent calls for this caller")
    BAD_AUDIO = (4415, "unsupported audio format")
    RATE_LIMITED = (4429, "too many messages")
    TIME_LIMIT = (4430, "call time limit reached")
    SLOW_CALLER = (4431, "the caller is not reading: too much audio waiting for it")
    PROVIDER_FAILED = (4502, "the voice provider failed")
    STATE_UNAVAILABLE = (4503, "the call state store is unavailable")

    @property
    def code(self) -> int:
        """The WebSocket close code."""
        return self.value[0]

    @property
    def description(self) -> str:
        """One sentence for people."""
        return self.value[1]

    @property
    def wire_name(self) -> str:
        """The stable name clients switch on, e.g. ``"too_big"``."""
        return self.name.lower()


class ServeError(VoxError):
    """Base class of the serving errors."""


class CallRefused(ServeError):
    """A call cannot start, or must end now, for ``reason``.

    Args:
        reason: the close reason the endpoint reports.
        detail: what exactly was wrong (never a secret).
    """

    def __init__(self, reason: CloseReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason.wire_name}: {detail or reason.description}")


class TokenRefused(CallRefused):
    """The call's token is missing, malformed, forged, expired, used, or out of scope."""

    def __init__(self, detail: str, reason: CloseReason = CloseReason.UNAUTHORIZED) -> None:
        super().__init__(reason, detail)
