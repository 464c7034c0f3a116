"""I/O drivers for :class:`~voxengine.testing.FakeOpenAIServer`.

:func:`serve_fake_connection` pumps one sans-I/O fake over any transport given as
three coroutines (receive, send, close); :func:`run_fake_openai_server` serves
fakes over real WebSockets on loopback with ``websockets.asyncio.server``
(websockets 13-15), one fake per connection.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import quote

from websockets.asyncio.server import ServerConnection
from websockets.typing import Subprotocol

from voxengine.testing._driver import ServerHandle, serve_fake_peer, serve_websocket
from voxengine.testing._faults import Fault, FaultInjector
from voxengine.transport.websocket import redacting_logger

from .config import _DEFAULT_CONFIG, FakeOpenAIConfig
from .server import FakeOpenAIServer

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
    """Run one connection of the fake OpenAI ``server`` until either side closes.

    ``server.receive_connect`` must already have been called. In paced mode
    (``server.config.paced``) an active response advances one step every
    ``pace_seconds``. See :func:`~voxengine.testing.serve_fake_peer` for the rest.
    """

    async def send_text(frame: str | bytes) -> None:
        await send(frame if isinstance(frame, str) else frame.decode("utf-8"))

    await serve_fake_peer(
        server,
        recv,
        send_text,
        close,
        pace_seconds=pace_seconds if server.config.paced else None,
        faults=faults,
        abort=abort,
    )


@dataclass(eq=False)
class FakeOpenAIServerHandle(ServerHandle):
    """A running loopback fake OpenAI Realtime server.

    Attributes:
        host: the bound host.
        port: the bound TCP port.
        connections: one :class:`FakeOpenAIServer` per accepted connection, in order.
    """

    connections: list[FakeOpenAIServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Base URL for ``AsyncOpenAI(websocket_base_url=...)``, e.g. ``ws://127.0.0.1:PORT/v1``."""
        return f"ws://{self.host}:{self.port}/v1"

    def realtime_url(self, model: str = "gpt-realtime") -> str:
        """The full GA connect URL for ``model`` (§2.1)."""
        return f"{self.url}/realtime?model={quote(model)}"


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
        fake = FakeOpenAIServer(config, connection=len(handle.connections))
        injector = FaultInjector(faults, len(handle.connections)) if faults else None
        handle.connections.append(fake)
        pace = pace_seconds if config.paced else None
        await serve_websocket(connection, fake, pace_seconds=pace, faults=injector)

    await handle.listen(
        handler,
        select_subprotocol=_select_subprotocol,
        max_size=_MAX_FRAME_BYTES,
        logger=redacting_logger("voxengine.testing.fake_openai"),
    )
    try:
        yield handle
    finally:
        await handle.close()
