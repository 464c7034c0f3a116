"""The call state store: the :class:`StateStore` protocol and the in-memory default.

A store keeps one :class:`~voxengine.serve.state.record.CallRecord` per call, with an
expiry that the live call keeps pushing back, and a *generation* per call that fences
out a worker which lost its caller: :meth:`StateStore.claim` moves the generation on
(a resume), and a later :meth:`StateStore.save` from an older generation is refused
(``False``), so the worker that carried the call before knows it was taken over.

A store also remembers *spent* single-use keys (:meth:`StateStore.spend`): the ids of
call tokens that opened a call, so that a token opens one call in the whole deployment,
not one per worker.

:class:`MemoryStore` keeps records in this process (one worker; tests);
:class:`~voxengine.serve.state.redis_store.RedisStore` shares them between workers.
:func:`open_store` picks one from a URL. Every failure of the backing service is a
:class:`StateUnavailable`; nothing else is raised for I/O.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Protocol, final, runtime_checkable

from voxengine.errors import ConfigError, TransportError
from voxengine.serve.state.record import CallRecord, decode_record, encode_record

__all__ = ["MemoryStore", "StateStore", "StateUnavailable", "open_store"]

logger = logging.getLogger("voxengine.serve.state")


class StateUnavailable(TransportError):
    """The state store cannot be reached or did not answer in time."""


@runtime_checkable
class StateStore(Protocol):
    """Where call records live. ``shared``: other processes see them (Redis)."""

    @property
    def shared(self) -> bool:
        """Whether a record saved here can be resumed by another process."""
        ...

    async def save(self, record: CallRecord, ttl: float) -> bool:
        """Write ``record``, expiring ``ttl`` seconds from now; ``False`` (nothing
        written) when a newer generation of the call exists (it was resumed elsewhere).

        Raises:
            StateUnavailable: the store failed.
        """
        ...

    async def load(self, call_id: str) -> CallRecord | None:
        """The record of ``call_id``, ``None`` if unknown or expired.

        Raises:
            StateUnavailable: the store failed. ProtocolViolation: a corrupt record.
        """
        ...

    async def claim(self, call_id: str, generation: int, ttl: float) -> CallRecord | None:
        """Take the call over: if its generation is ``generation``, move it to
        ``generation + 1`` and return the record (atomically); else ``None``.

        Raises:
            StateUnavailable: the store failed. ProtocolViolation: a corrupt record.
        """
        ...

    async def touch(self, call_id: str, ttl: float) -> None:
        """Push the expiry of ``call_id`` to ``ttl`` seconds from now.

        Raises:
            StateUnavailable: the store failed.
        """
        ...

    async def delete(self, call_id: str) -> None:
        """Forget ``call_id`` (the call ended on purpose).

        Raises:
            StateUnavailable: the store failed.
        """
        ...

    async def spend(self, key: str, ttl: float) -> bool:
        """Mark the single-use ``key`` spent for ``ttl`` seconds (atomically): ``True``
        the first time, ``False`` when it was already spent and has not expired.

        Raises:
            StateUnavailable: the store failed (nothing is known about ``key`` then).
        """
        ...

    async def ping(self) -> None:
        """Check the store answers.

        Raises:
            StateUnavailable: it does not.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; idempotent."""
        ...


@final
class MemoryStore:
    """A :class:`StateStore` in this process's memory (not shared)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: dict[str, tuple[bytes, int, float]] = {}  # raw, generation, expiry
        self._spent: dict[str, float] = {}  # key -> expiry

    @property
    def shared(self) -> bool:
        """Always False: only this process sees the records."""
        return False

    def __len__(self) -> int:
        self._expire()
        return len(self._records)

    def _expire(self) -> None:
        now = self._clock()
        for call_id in [k for k, (_, _, exp) in self._records.items() if exp <= now]:
            del self._records[call_id]

    async def save(self, record: CallRecord, ttl: float) -> bool:
        """See :meth:`StateStore.save`."""
        self._expire()
        current = self._records.get(record.call_id)
        if current is not None and current[1] > record.generation:
            return False
        self._records[record.call_id] = (
            encode_record(record),
            record.generation,
            self._clock() + ttl,
        )
        return True

    async def load(self, call_id: str) -> CallRecord | None:
        """See :meth:`StateStore.load`."""
        self._expire()
        current = self._records.get(call_id)
        return decode_record(current[0]) if current is not None else None

    async def claim(self, call_id: str, generation: int, ttl: float) -> CallRecord | None:
        """See :meth:`StateStore.claim`."""
        self._expire()
        current = self._records.get(call_id)
        if current is None or current[1] != generation:
            return None
        self._records[call_id] = (current[0], generation + 1, self._clock() + ttl)
        return decode_record(current[0])

    async def touch(self, call_id: str, ttl: float) -> None:
        """See :meth:`StateStore.touch`."""
        self._expire()
        current = self._records.get(call_id)
        if current is not None:
            self._records[call_id] = (current[0], current[1], self._clock() + ttl)

    async def delete(self, call_id: str) -> None:
        """See :meth:`StateStore.delete`."""
        self._records.pop(call_id, None)

    async def spend(self, key: str, ttl: float) -> bool:
        """See :meth:`StateStore.spend`."""
        now = self._clock()
        if len(self._spent) > 1024:  # forget the expired ones now and then
            self._spent = {k: exp for k, exp in self._spent.items() if exp > now}
        expiry = self._spent.get(key)
        if expiry is not None and expiry > now:
            return False
        self._spent[key] = now + ttl
        return True

    async def ping(self) -> None:
        """Always answers."""

    async def aclose(self) -> None:
        """Nothing to release."""


def open_store(url: str | None = None, *, timeout: float = 0.5) -> StateStore:
    """The store for ``url``: ``None``, ``""`` or ``memory://`` for :class:`MemoryStore`;
    ``redis://`` / ``rediss://`` / ``unix://`` for a
    :class:`~voxengine.serve.state.redis_store.RedisStore` (each Redis call bounded by
    ``timeout`` seconds). Opens no connection yet.

    Raises:
        ConfigError: an unknown scheme, or redis-py missing (the ``serve`` extra).
    """
    if not url or url == "memory://":
        return MemoryStore()
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"unknown state store {scheme!r}: use memory:// or redis://")
    try:
        from voxengine.serve.state.redis_store import RedisStore
    except ImportError as exc:  # pragma: no cover - the serve extra installs redis
        raise ConfigError(
            "the Redis state store needs redis-py: pip install 'voxengine[serve]'"
        ) from exc
    return RedisStore.from_url(url, timeout=timeout)
