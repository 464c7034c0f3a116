"""Running the app on uvicorn with a graceful drain: :func:`run`, :class:`VoxServer`.

uvicorn closes open WebSockets as soon as it starts shutting down, before the ASGI
lifespan's shutdown runs; calls would be cut without a word. :class:`VoxServer`
drains first (readiness turns 503, new calls are refused, calls in progress get
``drain_timeout`` seconds to end, the rest are closed with ``going_away``), then lets
uvicorn finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette

from voxengine.serve.switchboard import Switchboard

__all__ = ["RunningServer", "VoxServer", "run", "serving", "uvicorn_config"]


class VoxServer(uvicorn.Server):
    """A :class:`uvicorn.Server` that drains the voice app's calls before closing sockets."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._listening: asyncio.Future[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's startup, then wake :meth:`start`'s waiter."""
        await super().startup(sockets)
        if self._listening is not None and not self._listening.done():
            self._listening.set_result(None)

    async def start(self) -> tuple[asyncio.Task[None], int]:
        """Start serving in a task; returns it and the bound port once listening.

        Raises:
            OSError (or what uvicorn raised): the server stopped during startup.
        """
        self._listening = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self.serve(), name="voxengine-serve")
        await asyncio.wait({task, self._listening}, return_when=asyncio.FIRST_COMPLETED)
        if not self.started:
            if task.done():
                task.result()  # the startup error
            task.cancel()
            raise OSError("the server stopped during startup")
        return task, int(self.servers[0].sockets[0].getsockname()[1])

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Drain calls, then uvicorn's own shutdown."""
        app = self.config.loaded_app if self.config.loaded else None
        board = _switchboard(self.config.app)
        if board is None and app is not None:
            board = _switchboard(app)
        if board is not None:
            await board.drain()
        await super().shutdown(sockets)


def _switchboard(app: Any) -> Switchboard | None:
    state = getattr(app, "state", None)
    board = getattr(state, "switchboard", None)
    return board if isinstance(board, Switchboard) else None


def uvicorn_config(app: Starlette, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn settings for ``app``: the WebSocket message size limit follows the app's
    ``max_message_bytes``; uvicorn's access log is off (per-call JSON logs replace it)."""
    board = _switchboard(app)
    size = board.config.limits.max_message_bytes if board else 64 * 1024
    options.setdefault("access_log", False)
    options.setdefault("log_config", None)
    options.setdefault("ws_max_size", size + 1024)
    options.setdefault("lifespan", "on")
    return uvicorn.Config(app, host=host, port=port, **options)


async def run(
    app: Starlette,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    announce: Callable[[str], object] | None = None,
    **options: Any,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, draining calls first.

    ``announce`` is called once with ``http://host:port`` when the server listens
    (the real port when ``port`` is 0).
    """
    server = VoxServer(uvicorn_config(app, host, port, **options))
    if announce is None:
        await server.serve()
        return
    task, bound = await server.start()
    announce(f"http://{host}:{bound}")
    await task


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A server started by :func:`serving`: where it listens, and the server itself."""

    server: VoxServer
    host: str
    port: int

    @property
    def http_url(self) -> str:
        """``http://host:port``."""
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The browser endpoint, ``ws://host:port/ws``."""
        return f"ws://{self.host}:{self.port}/ws"


@contextlib.asynccontextmanager
async def serving(
    app: Starlette, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[RunningServer]:
    """Serve ``app`` on this event loop (``port=0``: a free port) for the block's
    duration; on exit the server shuts down as on SIGTERM (drain first).

    For tests, benchmarks and embedding. Raises :class:`OSError` when the port is taken.
    """
    server = VoxServer(uvicorn_config(app, host, port, **options))
    task, bound = await server.start()
    try:
        yield RunningServer(server, host, bound)
    finally:
        server.should_exit = True
        await task
