"""An in-process connection pair: two ends that pass frames through asyncio queues.

Used to run a sans-I/O fake peer (the mock provider) without sockets, with optional
one-way ``latency`` to inject delay. Frames keep their order.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import ClassVar, final

from voxengine.errors import (
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
)

__all__ = ["MemoryConnection", "memory_pair"]


@dataclass(frozen=True, slots=True)
class _Close:
    code: int | None
    reason: str


@final
class MemoryConnection:
    """One end of an in-memory connection (see :func:`memory_pair`)."""

    def __init__(self, latency: float = 0.0) -> None:
        if latency < 0:
            raise InvalidState("latency must be non-negative")
        self._latency = latency
        self._inbox: asyncio.Queue[tuple[float, str | bytes | _Close]] = asyncio.Queue()
        self._peer: MemoryConnection | None = None
        self._closed: _Close | None = None

    def _deliver(self, item: str | bytes | _Close) -> None:
        due = asyncio.get_running_loop().time() + self._latency
        self._inbox.put_nowait((due, item))

    def _closed_error(self) -> ConnectionClosedOK | ConnectionClosedError:
        close = self._closed or _Close(None, "")
        cls = ConnectionClosedOK if close.code in (1000, 1001) else ConnectionClosedError
        return cls(close.code, close.reason)

    async def send(self, data: str | bytes) -> None:
        """Deliver a frame to the peer."""
        if self._closed is not None or self._peer is None:
            raise self._closed_error()
        self._peer._deliver(data)

    async def send_utf8(self, data: bytes) -> None:
        """Deliver a text frame given as its UTF-8 encoding (the peer gets ``str``)."""
        await self.send(data.decode())

    #: :meth:`write_utf8` raises voxengine's own errors (as ``DirectConnection``'s).
    write_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def write_utf8(self, data: bytes) -> Awaitable[None] | None:
        """:meth:`send_utf8`'s coroutine (see ``DirectConnection.write_utf8``)."""
        return self.send_utf8(data)

    def write_failure(self, exc: Exception) -> ConnectionClosed:
        """Never needed (:attr:`write_errors` is empty); as ``DirectConnection``'s."""
        return ConnectionClosedError(None, str(exc))

    async def recv(self) -> str | bytes:
        """Next frame from the peer; raises ConnectionClosed after a close."""
        if self._closed is not None and self._inbox.empty():
            raise self._closed_error()
        due, item = await self._inbox.get()
        delay = due - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)
        if isinstance(item, _Close):
            self._closed = item
            raise self._closed_error()
        return item

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close both ends; the peer's ``recv`` raises after draining earlier frames."""
        if self._closed is not None:
            return
        self._closed = _Close(code, reason)
        if self._peer is not None:
            self._peer._deliver(_Close(code, reason))
        self._inbox.put_nowait((0.0, _Close(code, reason)))

    def abort(self) -> None:
        """Drop the connection without a close frame (both ends see code ``None``)."""
        if self._closed is not None:
            return
        self._closed = _Close(None, "")
        if self._peer is not None:
            self._peer._deliver(_Close(None, ""))
        self._inbox.put_nowait((0.0, _Close(None, "")))


def memory_pair(latency: float = 0.0) -> tuple[MemoryConnection, MemoryConnection]:
    """Two connected ends; frames sent on one arrive on the other after ``latency`` s."""
    a, b = MemoryConnection(latency), MemoryConnection(latency)
    a._peer, b._peer = b, a
    return a, b
