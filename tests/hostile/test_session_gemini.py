"""Hostile Gemini Live servers (raw ``websockets``, from gemini-live.md §4, §9, §12)
against :class:`GeminiProvider`: bounded reconnects and typed fatal closes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import ServerConnection

from voxengine import ProviderError, Reconnecting, SessionClosed, SessionReady
from voxengine.config import ReconnectPolicy
from voxengine.providers import GeminiConfig, GeminiProvider

from ._peer import HostileServer, Peer

KEY = "AIza-hostile-secret-789"
FAST = ReconnectPolicy(initial_delay=0.02, max_delay=0.2, max_attempts=3)
LONG = 60.0


def provider(server: HostileServer, **kwargs: Any) -> GeminiProvider:
    kwargs.setdefault("reconnect", FAST)
    return GeminiProvider(
        GeminiConfig(
            api_key=KEY,
            base_url=f"ws://127.0.0.1:{server.port}",
            session_resumption=False,
            **kwargs,
        )
    )


async def setup(ws: ServerConnection) -> dict[str, Any]:
    """§12.1: wait for the client's setup, answer setupComplete."""
    message: dict[str, Any] = json.loads(await ws.recv())
    assert "setup" in message
    await ws.send(json.dumps({"setupComplete": {}}))
    return message


async def test_drop_after_setup_complete_every_time_is_bounded() -> None:
    async def accept_then_drop(peer: Peer) -> None:
        await setup(peer.ws)
        peer.drop()

    async with HostileServer(accept_then_drop) as server:
        p = provider(server)
        await p.connect()
        events = await asyncio.wait_for(_all(p), LONG)
        await p.disconnect()
    assert len(server.peers) == FAST.max_attempts + 1
    assert sum(isinstance(e, Reconnecting) for e in events) == FAST.max_attempts
    closed = events[-1]
    assert isinstance(closed, SessionClosed)
    assert "gave up reconnecting" in closed.reason


async def test_policy_close_mid_session_ends_typed_and_allows_a_new_connect() -> None:
    async def refuse_later(peer: Peer) -> None:
        await setup(peer.ws)
        if peer.index > 0:
            await peer.ws.wait_closed()
            return
        await peer.ws.recv()  # the user's turn
        await peer.ws.close(1008, "Requested entity was not found.")

    async with HostileServer(refuse_later) as server:
        p = provider(server)
        await p.connect()
        await p.send_text("hello")
        events = await asyncio.wait_for(_all(p), LONG)
        closed = events[-1]
        assert isinstance(closed, SessionClosed)
        assert closed.code == 1008
        assert isinstance(closed.error, ProviderError)
        assert not any(isinstance(e, Reconnecting) for e in events)
        assert len(server.peers) == 1
        assert not p.is_connected
        await p.connect()  # nothing half-open blocks it
        stream = p.events()
        assert isinstance(await asyncio.wait_for(anext(stream), LONG), SessionReady)
        await p.disconnect()


async def _all(p: GeminiProvider) -> list[Any]:
    return [event async for event in p.events()]
