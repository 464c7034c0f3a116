"""Context injection scheduling: what the model should know, and when to tell it.

Context is information the model sees without it being a user turn (a retrieved
document, the caller's account status, the time). :class:`ContextScheduler` is the
pure bookkeeping: it holds pending and active :class:`ContextEntry` objects, decides
which are due at a given moment of the conversation, orders them by priority and
expires them by TTL. The engine does the I/O (a system message, or the session
instructions) at the moments it reports.

Timing:
  * ``NOW`` — delivered at once.
  * ``NEXT_PAUSE`` — when nobody is talking and no response is running (at once if
    the conversation is idle already).
  * ``NEXT_TURN`` — when the user's next turn begins (speech starts, or a text or
    recorded message is sent), so it precedes the model's next reply.

A TTL counts from injection: an entry not delivered within it is dropped; a
delivered entry is withdrawn (its message deleted, or removed from the instructions)
once it expires.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import final

from voxengine.errors import ConfigError

__all__ = ["ContextEntry", "ContextMethod", "ContextScheduler", "ContextTiming"]


class ContextTiming(enum.Enum):
    """When injected context is delivered."""

    NOW = "now"
    NEXT_PAUSE = "next_pause"
    NEXT_TURN = "next_turn"


class ContextMethod(enum.Enum):
    """How context reaches the model."""

    #: A system message in the conversation (no response is requested).
    SYSTEM_MESSAGE = "system_message"
    #: Appended to the session instructions, ordered by priority.
    INSTRUCTIONS = "instructions"


@dataclass(frozen=True, slots=True, kw_only=True)
class ContextEntry:
    """One piece of injected context; times are seconds on the scheduler's clock."""

    context_id: str
    text: str
    timing: ContextTiming
    method: ContextMethod
    priority: int
    created_at: float
    ttl: float | None = None
    delivered_at: float | None = None

    @property
    def expires_at(self) -> float | None:
        """When the entry stops being valid, or ``None`` if it never does."""
        return None if self.ttl is None else self.created_at + self.ttl

    def expired(self, now: float) -> bool:
        """Whether the TTL has passed at ``now``."""
        expires = self.expires_at
        return expires is not None and now >= expires


def _order(entry: ContextEntry) -> tuple[int, float]:
    return (-entry.priority, entry.created_at)


@final
class ContextScheduler:
    """Pending and delivered context entries. Pure: the caller does the I/O."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        #: The clock the scheduler measures TTLs with (seconds).
        self.clock = clock
        self._ids = itertools.count(1)
        self._pending: list[ContextEntry] = []
        self._active: list[ContextEntry] = []
        #: Entries dropped because their TTL ran out before delivery.
        self.dropped: list[ContextEntry] = []

    def add(
        self,
        text: str,
        *,
        timing: ContextTiming = ContextTiming.NOW,
        method: ContextMethod = ContextMethod.SYSTEM_MESSAGE,
        priority: int = 0,
        ttl: float | None = None,
    ) -> ContextEntry:
        """Queue context; returns the pending entry.

        Raises:
            ConfigError: for empty text or a non-positive TTL.
        """
        if not isinstance(text, str) or not text.strip():
            raise ConfigError("context text must be a non-empty string")
        if ttl is not None and ttl <= 0:
            raise ConfigError("ttl must be positive seconds or None")
        entry = ContextEntry(
            context_id=f"ctx_{next(self._ids)}",
            text=text,
            timing=timing,
            method=method,
            priority=priority,
            created_at=self.clock(),
            ttl=ttl,
        )
        self._pending.append(entry)
        return entry

    def due(self, *timings: ContextTiming) -> list[ContextEntry]:
        """Take the pending entries whose timing is among ``timings``, best first.

        Entries whose TTL already passed are dropped (see :attr:`dropped`), not returned.
        The returned entries count as delivered from now on.
        """
        now = self.clock()
        ready = [e for e in self._pending if e.timing in timings]
        if not ready:
            return []
        self._pending = [e for e in self._pending if e.timing not in timings]
        delivered = []
        for entry in sorted(ready, key=_order):
            if entry.expired(now):
                self.dropped.append(entry)
                continue
            entry = replace(entry, delivered_at=now)
            self._active.append(entry)
            delivered.append(entry)
        return delivered

    def expire(self) -> list[ContextEntry]:
        """Remove and return delivered entries whose TTL has passed; drop stale pending ones."""
        now = self.clock()
        gone = [e for e in self._active if e.expired(now)]
        self._active = [e for e in self._active if not e.expired(now)]
        stale = [e for e in self._pending if e.expired(now)]
        if stale:
            self.dropped.extend(stale)
            self._pending = [e for e in self._pending if not e.expired(now)]
        return gone

    def withdraw(self, context_id: str) -> ContextEntry | None:
        """Remove an entry (pending or delivered) on request; returns it if it was known."""
        for group in (self._pending, self._active):
            for entry in group:
                if entry.context_id == context_id:
                    group.remove(entry)
                    return entry
        return None

    def active(self, method: ContextMethod | None = None) -> list[ContextEntry]:
        """Delivered entries still valid (optionally of one method), best first."""
        entries = [e for e in self._active if method is None or e.method is method]
        return sorted(entries, key=_order)

    @property
    def pending(self) -> list[ContextEntry]:
        """Entries waiting for their moment, best first."""
        return sorted(self._pending, key=_order)

    def next_expiry(self) -> float | None:
        """The earliest TTL deadline among all entries, on the scheduler's clock."""
        deadlines = [
            e.expires_at for e in (*self._pending, *self._active) if e.expires_at is not None
        ]
        return min(deadlines) if deadlines else None

    def instructions(self, base: str) -> str:
        """``base`` followed by the active INSTRUCTIONS-method context, best first."""
        blocks = [e.text for e in self.active(ContextMethod.INSTRUCTIONS)]
        if not blocks:
            return base
        context = "\n".join(f"- {text}" for text in blocks)
        return f"{base}\n\nContext:\n{context}" if base else f"Context:\n{context}"
