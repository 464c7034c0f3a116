"""Keepalive pings on a loop timer: :class:`TimerKeepalive`.

``websockets`` keeps a connection alive with a task per connection that sleeps
``ping_interval`` seconds, sends a ping and waits up to ``ping_timeout`` for the pong
(the connection fails with 1011 "keepalive ping timeout" when it does not come). That
task, its coroutine and its sleep stay in memory for the whole life of every
connection. :class:`TimerKeepalive` does the same with a loop timer between pings and a
short task only while a ping waits for its pong, so an idle connection holds one timer
handle (memory per idle session). Timing, the failure and its log line are
``websockets``' own. (It also makes the connection's drain-waiters deque on first use.)
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.client import ClientProtocol
from websockets.frames import CloseCode
from websockets.protocol import State

__all__ = ["TimerKeepalive"]


class TimerKeepalive(ClientConnection):
    """A ``ClientConnection`` whose keepalive is a timer, not a task (see the module)."""

    __slots__ = ("_drain_waiters", "_ping_timer")

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        self._drain_waiters: collections.deque[asyncio.Future[None]] | None = None
        super().__init__(protocol, **kwargs)
        self._ping_timer: asyncio.TimerHandle | None = None

    # ``websockets`` gives every connection an empty deque of writers waiting for the
    # socket to drain (760 bytes), used only while writing is paused: made on first use.
    @property
    def drain_waiters(self) -> collections.deque[asyncio.Future[None]]:
        waiters = self._drain_waiters
        if waiters is None:
            waiters = self._drain_waiters = collections.deque()
        return waiters

    @drain_waiters.setter
    def drain_waiters(self, waiters: collections.deque[asyncio.Future[None]]) -> None:
        self._drain_waiters = waiters or None  # the empty one from __init__: not kept

    def start_keepalive(self) -> None:
        """Ping every ``ping_interval`` seconds (``websockets`` calls this once open)."""
        if self.ping_interval is not None:
            self._schedule_ping(self.ping_interval)

    def _schedule_ping(self, delay: float) -> None:
        self._ping_timer = self.loop.call_later(max(0.0, delay), self._ping_due)

    def _ping_due(self) -> None:
        self._ping_timer = None
        if self.protocol.state is State.OPEN:
            # ``keepalive_task``: what ``connection_lost`` cancels, as for websockets' own
            self.keepalive_task = self.loop.create_task(self._ping_once())

    async def _ping_once(self) -> None:
        """One ping and its pong; then the timer for the next one."""
        latency = 0.0
        try:
            pong_waiter = await self.ping()
            if self.ping_timeout is not None:
                try:
                    async with asyncio.timeout(self.ping_timeout):
                        latency = await pong_waiter
                except TimeoutError:
                    async with self.send_context():
                        self.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
                    return  # connection_lost follows (and cancels this task)
        except Exception:
            self.logger.error("keepalive ping failed", exc_info=True)
            return
        finally:
            if self.keepalive_task is asyncio.current_task():
                self.keepalive_task = None
        if self.protocol.state is State.OPEN and self.ping_interval is not None:
            # a pong that took longer than the interval is answered by a ping at once
            self._schedule_ping(self.ping_interval - latency)

    def connection_lost(self, exc: Exception | None) -> None:
        timer, self._ping_timer = self._ping_timer, None
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)
