"""I/O drivers for :class:`~voxengine.testing.FakeOpenAIServer`.

:func:`serve_fake_connection` pumps one sans-I/O fake over any transport given as
three coroutines (receive, send, close); :func:`run_fake_openai_server` serves
fakes over real WebSockets on loopback with ``websockets.asyncio.server``
(websockets 13-15), one fake per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from voxengine.transport.websocket import redacting_logger

from ._fake_openai import _DEFAULT_CONFIG, FakeOpenAIConfig, FakeOpenAIServer
from ._faults import Fault, FaultInjector

__all__ = ["FakeOpenAIServerHandle", "run_fake_openai_server", "serve_fake_connection"]

_MAX_FRAME_BYTES = 32 * 2**20  # §1: one append may carry 15 MiB of base64


async def serve_fake_connection(
    server: FakeOpenAIServer,
    recv: Callable[[], Awaitable[str | bytes | None]],
    send: Callable[[str], Awaitable[None]],
    close: Callable[[int, str], Awaitable[None]],
    pace_seconds: float,
    *,
    faults: FaultInjector | None = None,
    abort: Callable[[], None] | None = None,
) -> None:
    """Run one connection of ``server`` until either side closes.

    ``server.receive_connect`` must already have been called. ``recv`` returns the
    next frame, or ``None`` once the peer has closed. Queued frames are flushed
    after every input, in order; when the fake asks to close, ``close(code,
    reason)`` is awaited once and the function returns. In paced mode
    (``server.config.paced``), an active response advances one :meth:`step`
    every ``pace_seconds``.

    ``faults`` (see :class:`~voxengine.testing.Fault`) act on the outgoing frames;
    ``abort`` drops the transport without a close frame (needed for ``DROP``).

    Exceptions raised by ``recv``/``send``/``close`` propagate to the caller.
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
            frames: list[str | bytes] = list(server.data_to_send())
            if faults is not None:
                effect = faults.filter(frames)
                frames = effect.frames
                if effect.pause_reading:
                    paused_until = max(paused_until, loop.time() + effect.pause_reading)
                for frame in frames:
                    await send(frame)  # type: ignore[arg-type]
                if effect.abort:
                    finished = True
                    if abort is not None:
                        abort()
                    return True
                if effect.close is not None:
                    finished = True
                    await close(*effect.close)
                    return True
                if faults.stalled:
                    return False
            else:
                for frame in frames:
                    await send(frame)  # type: ignore[arg-type]
            closing = server.close_to_send()
            if closing is not None:
                finished = True
                await close(*closing)
            return finished

    async def pace() -> None:
        while True:
            if not server.response_active:
                wakeup.clear()
                await wakeup.wait()
                continue
            await asyncio.sleep(pace_seconds)
            server.step()
            if await flush():
                return

    if await flush():
        return
    pacer = asyncio.create_task(pace()) if server.config.paced else None
    try:
        while True:
            if pacer is not None and pacer.done():
                pacer.result()  # re-raise a transport error from the pacer
                return
            delay = paused_until - loop.time()
            if delay > 0:  # SLOW_READ: the client's frames wait in the socket buffers
                await asyncio.sleep(delay)
            data = await recv()
            if data is None:
                server.receive_close()
                return
            server.receive_message(data)
            wakeup.set()
            if await flush():
                return
    finally:
        if pacer is not None:
            pacer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await pacer


@dataclass(eq=False)
class FakeOpenAIServerHandle:
    """A running loopback fake OpenAI Realtime server.

    Attributes:
        host: the bound host.
        port: the bound TCP port.
        connections: one :class:`FakeOpenAIServer` per accepted connection, in order.
    """

    host: str
    port: int
    connections: list[FakeOpenAIServer] = field(default_factory=list)
    _server: Server | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Base URL for ``AsyncOpenAI(websocket_base_url=...)``, e.g. ``ws://127.0.0.1:PORT/v1``."""
        return f"ws://{self.host}:{self.port}/v1"

    def realtime_url(self, model: str = "gpt-realtime") -> str:
        """The full GA connect URL for ``model`` (§2.1)."""
        return f"{self.url}/realtime?model={quote(model)}"

    async def close(self) -> None:
        """Stop listening and close every open connection (idempotent)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def _select_subprotocol(
    connection: ServerConnection, subprotocols: Sequence[Subprotocol]
) -> Subprotocol | None:
    # browsers authenticate with subprotocols "realtime" + "openai-insecure-api-key.<KEY>" (§2.1)
    return Subprotocol("realtime") if "realtime" in subprotocols else None


@contextlib.asynccontextmanager
async def run_fake_openai_server(
    config: FakeOpenAIConfig = _DEFAULT_CONFIG,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    pace_seconds: float = 0.0,
    faults: Sequence[Fault] = (),
) -> AsyncIterator[FakeOpenAIServerHandle]:
    """Serve fake OpenAI Realtime connections on ``ws://host:port/v1/realtime``.

    ``port=0`` picks a free port (see ``handle.port``). Every connection gets its
    own :class:`FakeOpenAIServer` built from ``config`` and appended to
    ``handle.connections``. ``faults`` inject network and service failures (see
    :class:`~voxengine.testing.Fault`). The server stops when the context exits.
    """
    handle = FakeOpenAIServerHandle(host=host, port=port)

    async def handler(connection: ServerConnection) -> None:
        fake = FakeOpenAIServer(config)
        injector = FaultInjector(faults, len(handle.connections)) if faults else None
        handle.connections.append(fake)
        request = connection.request
        assert request is not None  # set once the handshake has completed
        fake.receive_connect(request.path, request.headers)

        async def recv() -> str | bytes | None:
            try:
                return await connection.recv()
            except ConnectionClosed:
                return None

        async def close(code: int, reason: str) -> None:
            await connection.close(code, reason)

        try:
            await serve_fake_connection(
                fake,
                recv,
                connection.send,
                close,
                pace_seconds,
                faults=injector,
                abort=connection.transport.abort,
            )
        except ConnectionClosed:
            fake.receive_close()

    server = await serve(
        handler,
        host,
        port,
        select_subprotocol=_select_subprotocol,
        max_size=_MAX_FRAME_BYTES,
        logger=redacting_logger("voxengine.testing.fake_openai"),
    )
    handle._server = server
    handle.port = next(iter(server.sockets)).getsockname()[1]
    try:
        yield handle
    finally:
        await handle.close()
