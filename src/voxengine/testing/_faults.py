"""Failures the fake servers can be told to produce.

Two mechanisms:

* :class:`FakeServerError`, raised by a responder, fails one response the way the
  real service does (an ``error`` event and a failed ``response.done``).
* :class:`Fault` entries given to a fake server runner act on the wire, between the
  sans-I/O fake and the socket: drop the connection mid-response, stall, send
  malformed JSON or unknown events, inject error events, close at a session cap, or
  stop reading from the client for a while. :class:`FaultInjector` is the pure
  logic; the runner carries out the :class:`FaultEffect` it returns.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, final

__all__ = ["Fault", "FaultAction", "FaultEffect", "FaultInjector", "FakeServerError"]


class FakeServerError(Exception):
    """Raised by a fake responder to make the fake server fail the response.

    The server reports it the way the real service does: an ``error`` event with
    ``code`` and ``message`` (type ``server_error``) and a ``response.done`` with
    status ``failed``.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class FaultAction(enum.Enum):
    """What a :class:`Fault` does when it triggers."""

    #: Abort the TCP connection without a close frame (a dropped network).
    DROP = "drop"
    #: Send nothing more on this connection (the service hangs); reading continues.
    STALL = "stall"
    #: Send a frame that is not JSON.
    MALFORMED = "malformed"
    #: Send a well-formed event of a type no client knows.
    UNKNOWN_EVENT = "unknown_event"
    #: Send a recoverable error event with ``Fault.error_code``.
    ERROR = "error"
    #: End the session as its duration cap does (OpenAI: session_expired + close 1001).
    SESSION_CAP = "session_cap"
    #: Stop reading the client's frames for ``Fault.seconds`` (a slow server).
    SLOW_READ = "slow_read"
    #: Refuse the credentials as the real service does (use with ``after="session.created"``
    #: on a later connection to refuse a reconnect).
    REFUSE_AUTH = "refuse_auth"


_ERROR_TYPES = {
    "rate_limit_exceeded": "rate_limit_error",
    "server_error": "server_error",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """One fault: ``action`` fires when the ``nth`` outgoing frame matching ``after``
    (a substring of the frame's event name) is about to be sent on connection number
    ``connection`` (0 = the first connection to the server; later connections, e.g.
    reconnects, are unaffected unless listed). ``after=None`` fires on the first frame
    after the session is set up.
    """

    action: FaultAction
    after: str | None = None
    nth: int = 1
    connection: int = 0
    error_code: str = "server_error"
    seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.nth < 1:
            raise ValueError("nth counts from 1")
        if self.seconds < 0:
            raise ValueError("seconds must be >= 0")


@dataclass(slots=True)
class FaultEffect:
    """What the runner must do with one batch of outgoing frames."""

    frames: list[str | bytes] = field(default_factory=list)
    abort: bool = False
    stall: bool = False
    close: tuple[int, str] | None = None
    pause_reading: float = 0.0


def _event_name(frame: str | bytes, wire: Literal["openai", "gemini"]) -> str:
    try:
        message = json.loads(frame)
    except ValueError:
        return ""
    if not isinstance(message, dict):
        return ""
    if wire == "openai":
        name = message.get("type")
        return name if isinstance(name, str) else ""
    return ",".join(sorted(message))  # Gemini: the top-level keys name the message


@final
class FaultInjector:
    """Applies the faults of one connection to its outgoing frames. Pure logic.

    Args:
        faults: every fault of the server; only those for ``connection`` apply.
        connection: this connection's number (0 = first).
        wire: which message shapes to produce and match.
    """

    def __init__(
        self,
        faults: Sequence[Fault],
        connection: int,
        wire: Literal["openai", "gemini"] = "openai",
    ) -> None:
        self._pending = [f for f in faults if f.connection == connection]
        self._counts: dict[int, int] = {}
        self._wire = wire
        self._setup_seen = False
        self.stalled = False
        self.fired: list[Fault] = []

    def filter(self, frames: Sequence[str | bytes]) -> FaultEffect:
        """Pass ``frames`` through the faults; returns what to send and what to do."""
        effect = FaultEffect()
        if self.stalled:
            return FaultEffect(stall=True)
        for frame in frames:
            name = _event_name(frame, self._wire)
            fault = self._match(name)
            if fault is None:
                effect.frames.append(frame)
                if name in ("session.created", "session.updated", "setupComplete"):
                    self._setup_seen = True
                continue
            self.fired.append(fault)
            if self._apply(fault, frame, effect):
                return effect
        return effect

    def _match(self, name: str) -> Fault | None:
        for index, fault in enumerate(self._pending):
            if fault.after is None:
                if not self._setup_seen:
                    continue
                hit = True
            else:
                hit = fault.after in name
                if hit:
                    self._counts[index] = self._counts.get(index, 0) + 1
                    hit = self._counts[index] >= fault.nth
            if hit:
                del self._pending[index]
                self._counts = {}
                return fault
        return None

    def _apply(self, fault: Fault, frame: str | bytes, effect: FaultEffect) -> bool:
        """Apply ``fault`` at ``frame``; True when nothing more may be sent."""
        match fault.action:
            case FaultAction.DROP:
                effect.abort = True
                return True
            case FaultAction.STALL:
                self.stalled = True
                effect.stall = True
                return True
            case FaultAction.MALFORMED:
                effect.frames.append('{"type": "response.output_audio.delta", "delta": ')
                effect.frames.append(frame)
            case FaultAction.UNKNOWN_EVENT:
                effect.frames.append(self._unknown())
                effect.frames.append(frame)
            case FaultAction.ERROR:
                effect.frames.append(self._error(fault.error_code))
                effect.frames.append(frame)
            case FaultAction.SESSION_CAP:
                effect.frames.append(self._session_cap())
                effect.close = (1001, "Your session hit the maximum duration of 60 minutes.")
                return True
            case FaultAction.REFUSE_AUTH:
                if self._wire == "openai":  # openai-realtime.md §2.1
                    effect.frames.append(self._error("invalid_api_key"))
                    effect.close = (3000, "invalid_request_error.invalid_api_key")
                else:  # gemini-live.md: a bad key closes 1007 with the reason
                    effect.close = (1007, "API key not valid. Please pass a valid API key.")
                return True
            case FaultAction.SLOW_READ:
                effect.pause_reading = max(effect.pause_reading, fault.seconds)
                effect.frames.append(frame)
        return False

    def _unknown(self) -> str:
        if self._wire == "openai":
            return json.dumps({"type": "response.future_feature", "event_id": "event_fx", "x": 1})
        return json.dumps({"futureFeature": {"x": 1}})

    def _error(self, code: str) -> str:
        if self._wire == "openai":
            return json.dumps(
                {
                    "type": "error",
                    "event_id": "event_fault",
                    "error": {
                        "type": _ERROR_TYPES.get(code, "invalid_request_error"),
                        "code": code,
                        "message": f"Injected fault: {code}.",
                        "param": None,
                        "event_id": None,
                    },
                }
            )
        return json.dumps({"error": {"code": code, "message": f"Injected fault: {code}."}})

    def _session_cap(self) -> str:
        if self._wire == "openai":
            return self._error("session_expired")
        return json.dumps({"goAway": {"timeLeft": "0s"}})
