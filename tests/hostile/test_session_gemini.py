"""Hostile Gemini Live servers (raw ``websockets``, from gemini-live.md §4, §9, §12)
against :class:`GeminiProvider`: bounded reconnects and typed fatal closes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import ServerConnection

from voxengine import (
    ProviderError,
    Reconnected,
    Reconnecting,
    SessionClosed,
    SessionReady,
    ToolCall,
    UndeliveredInput,
)
from voxengine.config import ReconnectPolicy
from voxengine.providers import GeminiConfig, GeminiProvider

from ._peer import HostileServer, Peer

KEY = "AIza-hostile-secret-789"
FAST = ReconnectPolicy(initial_delay=0.02, max_delay=0.2, max_attempts=3)
LONG = 60.0


def provider(server: HostileServer, **kwargs: Any) -> GeminiProvider:
    kwargs.setdefault("reconnect", FAST)
    kwargs.setdefault("session_resumption", False)
    return GeminiProvider(
        GeminiConfig(api_key=KEY, base_url=f"ws://127.0.0.1:{server.port}", **kwargs)
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


async def test_tool_output_sent_during_the_drop_reaches_the_resumed_session() -> None:
    """§6/§7: the call was issued on the first connection; its output, sent while the
    client reconnects, goes out once on the resumed one."""
    output_sent = asyncio.Event()
    answered = asyncio.Event()

    async def script(peer: Peer) -> None:
        if peer.index == 0:
            await setup(peer.ws)
            update = {"newHandle": "handle-1", "resumable": True}
            await peer.ws.send(json.dumps({"sessionResumptionUpdate": update}))
            call = {"id": "fc1", "name": "get_weather", "args": {"city": "Paris"}}
            await peer.ws.send(json.dumps({"toolCall": {"functionCalls": [call]}}))
            await asyncio.sleep(0)
            peer.drop()
            return
        await output_sent.wait()
        message = await setup(peer.ws)
        peer.received.append(message)
        while True:
            message = json.loads(await peer.ws.recv())
            peer.received.append(message)
            if "toolResponse" in message:
                answered.set()

    async with HostileServer(script) as server:
        p = provider(server, session_resumption=True)
        await p.connect()
        stream = p.events()
        await events_until_type(stream, ToolCall)
        await events_until_type(stream, Reconnecting)
        await p.send_tool_result("fc1", '{"temp_c": 18}')  # queued: we are reconnecting
        output_sent.set()
        events = await events_until_type(stream, Reconnected)
        await server.wait_connections(2)
        resumed = server.peers[1]
        assert resumed.received[0]["setup"]["sessionResumption"] == {"handle": "handle-1"}

        await asyncio.wait_for(answered.wait(), LONG)  # the queued output follows the setup
        await p.disconnect()
    assert not any(isinstance(e, UndeliveredInput) for e in events)
    [response] = [m for m in resumed.received if "toolResponse" in m]
    [function_response] = response["toolResponse"]["functionResponses"]
    assert function_response["id"] == "fc1"
    assert function_response["name"] == "get_weather"


async def events_until_type(stream: Any, stop: type[Any]) -> list[Any]:
    seen: list[Any] = []

    async def run() -> None:
        async for event in stream:
            seen.append(event)
            if isinstance(event, stop):
                return

    await asyncio.wait_for(run(), LONG)
    return seen
