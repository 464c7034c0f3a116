"""Per-deployment and per-caller limits, checked before and during a call.

:class:`Limits` holds the numbers (frozen, validated at construction);
:class:`CallLimiter` counts active calls per caller and in total; :class:`RateWindow`
bounds the messages a call sends per second. Each refusal is a
:class:`~voxengine.serve.errors.CallRefused` with its own :class:`CloseReason`, so the
client learns which limit it hit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

from voxengine.errors import ConfigError
from voxengine.serve.errors import CallRefused, CloseReason

__all__ = ["CallLimiter", "Limits", "RateWindow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """What one server process allows.

    Attributes:
        max_calls: concurrent calls in this process (then ``busy``).
        max_calls_per_caller: concurrent calls per caller (token subject, else client
            address) (then ``too_many_calls``).
        max_call_seconds: length of one call (then ``time_limit``).
        max_message_bytes: largest message a caller may send (then ``too_big``).
        max_messages_per_second: messages a caller may send per second, averaged over
            one second (then ``rate_limited``); 50 audio frames of 20 ms plus control.
        hello_timeout: seconds a new connection has to say hello (then ``timeout``).
        token_requests_per_minute: tokens one client address may request per minute
            from the page's token endpoint.
        max_backlog_bytes: assistant audio and messages that may wait for one caller
            whose connection does not take them (a caller who stopped reading), then
            ``slow_caller``. 4 MiB is 87 s of 24 kHz audio: far more than a provider
            sends ahead, so only a caller who stopped reading reaches it.
    """

    max_calls: int = 200
    max_calls_per_caller: int = 4
    max_call_seconds: float = 30 * 60.0
    max_message_bytes: int = 64 * 1024
    max_messages_per_second: int = 200
    hello_timeout: float = 10.0
    token_requests_per_minute: int = 30
    max_backlog_bytes: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in (
            "max_backlog_bytes",
            "max_calls",
            "max_calls_per_caller",
            "max_message_bytes",
            "max_messages_per_second",
            "token_requests_per_minute",
        ):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("max_call_seconds", "hello_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be positive seconds, got {value!r}")


@final
class CallLimiter:
    """Counts active calls, in total and per caller; refuses beyond :class:`Limits`."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._per_caller: dict[str, int] = {}
        self._total = 0

    @property
    def active(self) -> int:
        """Calls admitted and not yet released."""
        return self._total

    def acquire(self, caller: str) -> None:
        """Admit one call of ``caller``.

        Raises:
            CallRefused: ``busy`` (process full) or ``too_many_calls`` (this caller).
        """
        if self._total >= self._limits.max_calls:
            raise CallRefused(CloseReason.BUSY, f"{self._total} calls active")
        count = self._per_caller.get(caller, 0)
        if count >= self._limits.max_calls_per_caller:
            raise CallRefused(
                CloseReason.TOO_MANY_CALLS,
                f"{count} calls active, at most {self._limits.max_calls_per_caller}",
            )
        self._per_caller[caller] = count + 1
        self._total += 1

    def release(self, caller: str) -> None:
        """One call of ``caller`` ended (call once per successful :meth:`acquire`)."""
        count = self._per_caller.get(caller, 0)
        if count <= 1:
            self._per_caller.pop(caller, None)
        else:
            self._per_caller[caller] = count - 1
        self._total = max(0, self._total - 1)


@final
class RateWindow:
    """At most ``limit`` events per ``period`` seconds (a token bucket of ``limit``)."""

    def __init__(
        self, limit: int, period: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._size = float(limit)
        self._rate = float(limit) / period
        self._tokens = float(limit)
        self._clock = clock
        self._last = clock()

    def allow(self) -> bool:
        """Count one event; False when the caller is over the rate."""
        now = self._clock()
        self._tokens = min(self._size, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
