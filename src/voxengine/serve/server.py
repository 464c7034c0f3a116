"""Running the app on uvicorn with a graceful drain: :func:`run`, :class:`VoxServer`.

uvicorn closes open WebSockets as soon as it starts shutting down, before the ASGI
lifespan's shutdown runs; calls would be cut without a word. :class:`VoxServer`
drains first (readiness turns 503, new calls are refused, calls in progress get
``drain_timeout`` seconds to end, the rest are closed with ``going_away``), then lets
uvicorn finish.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette

from voxengine.serve.switchboard import Switchboard

__all__ = ["VoxServer", "run", "uvicorn_config"]


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
