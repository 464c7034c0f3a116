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
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette

from voxengine.serve.switchboard import Switchboard

__all__ = ["RunningServer", "VoxServer", "run", "serving", "uvicorn_config"]


class VoxServer(uvicorn.Server):
    """A :class:`uvicorn.Server` that drains the voice app's calls before closing sockets."""

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


async def run(app: Starlette, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, draining calls first."""
    await VoxServer(uvicorn_config(app, host, port, **options)).serve()


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
    task = asyncio.create_task(server.serve(), name="voxengine-serve")
    while not server.started:
        if task.done():
            task.result()  # the startup error (port taken...)
            raise OSError("the server stopped during startup")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()
    try:
        yield RunningServer(server, host, int(bound[1]))
    finally:
        server.should_exit = True
        await task
