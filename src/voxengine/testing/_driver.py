"""The I/O loop shared by every fake server: one sans-I/O peer, one connection.

:func:`serve_fake_peer` feeds received frames to the peer, sends what it queues (in
order, text or binary), paces running responses, applies wire faults
(:class:`~voxengine.testing.Fault`) and closes when the peer asks to. The WebSocket
runners and the mock provider's in-memory connection all use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ._faults import FaultInjector

__all__ = ["FakePeer", "ServerHandle", "run_until_idle", "serve_fake_peer", "serve_websocket"]


class FakePeer(Protocol):
    """What :func:`serve_fake_peer` needs from a sans-I/O fake server."""

    def receive_connect(self, path: str, headers: Mapping[str, str]) -> None: ...

    @property
    def response_active(self) -> bool: ...

    def receive_message(self, data: str | bytes) -> None: ...

    def receive_close(self) -> None: ...

    def data_to_send(self) -> Sequence[str | bytes]: ...

    def close_to_send(self) -> tuple[int, str] | None: ...

    def step(self) -> None: ...


def run_until_idle(peer: FakePeer, max_steps: int) -> None:
    """Step ``peer`` until no response is active or it wants to close (what the driver
    does with ``pace_seconds=0`` while the client sends nothing).

    Raises:
        RuntimeError: still busy after ``max_steps`` steps.
    """
    for _ in range(max_steps):
        if not peer.response_active or peer.close_to_send() is not None:
            return
        peer.step()
    raise RuntimeError(f"still active after {max_steps} steps")


async def serve_fake_peer(
    peer: FakePeer,
    recv: Callable[[], Awaitable[str | bytes | None]],
    send: Callable[[str | bytes], Awaitable[None]],
    close: Callable[[int, str], Awaitable[None]],
    *,
    pace_seconds: float | None = None,
    faults: FaultInjector | None = None,
    abort: Callable[[], None] | None = None,
) -> None:
    """Run one connection of ``peer`` until either side closes.

    The upgrade must already have been given to the peer. ``recv`` returns the next
    frame or ``None`` once the client closed. After every input the queued frames are
    sent in order; when the peer asks to close, ``close(code, reason)`` is awaited once.
    With ``pace_seconds`` set, a running response advances one ``peer.step()`` per
    ``pace_seconds``. ``faults`` act on the outgoing frames; ``abort`` drops the
    transport without a close frame (needed for ``FaultAction.DROP``).

    Exceptions raised by ``recv``/``send``/``close`` propagate.
    """
    lock = asyncio.Lock()  # keeps frames in queue order across the two tasks
    wakeup = asyncio.Event()
    finished = False
    paused_until = 0.0
    loop = asyncio.get_running_loop()

    async def flush() -> bool:
        nonlocal finished, paused_until
        async with lock:
            if finished:
                return True
            frames = list(peer.data_to_send())
            closing = peer.close_to_send()
            if faults is not None:
                effect = faults.filter(frames)
                frames = effect.frames
                paused_until = max(paused_until, loop.time() + effect.pause_reading)
                if effect.abort or effect.close is not None:
                    for frame in frames:
                        await send(frame)
                    finished = True
                    if effect.abort:
                        if abort is not None:
                            abort()
                    else:
                        assert effect.close is not None
                        await close(*effect.close)
                    return True
            for frame in frames:
                await send(frame)
            if faults is not None and faults.stalled:
                return False  # the service hangs: nothing more goes out, not even a close
            if closing is not None:
                finished = True
                await close(*closing)
            return finished

    async def pace(interval: float) -> None:
        # Steps fall on absolute deadlines, so a busy loop does not slow the stream below
        # real time (a late step is followed by the next one at once, not a full interval).
        deadline: float | None = None
        while not finished:
            if not peer.response_active:
                deadline = None
                wakeup.clear()
                await wakeup.wait()
                continue
            now = loop.time()
            deadline = now + interval if deadline is None else max(deadline + interval, now)
            await asyncio.sleep(deadline - now)
            peer.step()
            if await flush():
                return

    if await flush():
        return
    pacer = asyncio.create_task(pace(pace_seconds)) if pace_seconds is not None else None
    try:
        while not finished:
            if pacer is not None and pacer.done():
                pacer.result()  # re-raise a transport error from the pacer
                return
            delay = paused_until - loop.time()
            if delay > 0:  # SLOW_READ: the client's frames wait in the socket buffers
                await asyncio.sleep(delay)
            data = await recv()
            if data is None:
                peer.receive_close()
                return
            peer.receive_message(data)
            wakeup.set()
            await flush()
    finally:
        if pacer is not None:
            pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await pacer


async def serve_websocket(
    connection: ServerConnection,
    peer: FakePeer,
    *,
    pace_seconds: float | None,
    faults: FaultInjector | None,
) -> None:
    """Serve one accepted ``websockets`` server connection with ``peer``: hand it the
    upgrade request, then run :func:`serve_fake_peer` until either side closes."""
    request = connection.request
    assert request is not None  # set once the handshake has completed
    # A header sent twice (e.g. an SDK adding its own User-Agent beside the default)
    # makes ``Headers[name]`` raise; the peer sees the last value, as a plain dict would.
    headers = dict(request.headers.raw_items())
    peer.receive_connect(request.path, headers)

    async def recv() -> str | bytes | None:
        try:
            return await connection.recv()
        except ConnectionClosed:
            return None

    async def close(code: int, reason: str) -> None:
        await connection.close(code, reason)

    try:
        await serve_fake_peer(
            peer,
            recv,
            connection.send,
            close,
            pace_seconds=pace_seconds,
            faults=faults,
            abort=connection.transport.abort,
        )
    except ConnectionClosed:
        peer.receive_close()


@dataclass(eq=False)
class ServerHandle:
    """A fake server listening on loopback: where it is, and how to stop it.

    Attributes:
        host: the bound host.
        port: the bound TCP port (the one picked when ``0`` was asked for).
    """

    host: str
    port: int
    _server: Server | None = field(default=None, repr=False)

    async def listen(
        self, handler: Callable[[ServerConnection], Awaitable[None]], **options: Any
    ) -> None:
        """Serve ``handler`` on ``host:port`` (``options`` go to ``websockets``' ``serve``)."""
        server = await serve(handler, self.host, self.port, **options)
        self._server = server
        self.port = next(iter(server.sockets)).getsockname()[1]

    async def close(self) -> None:
        """Stop listening and close every open connection (idempotent)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
