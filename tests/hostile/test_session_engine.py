"""Hostile servers against :class:`VoiceEngine`: tool calls across a drop, bounded
shutdown while a tool or a handler hangs, concurrent connects, nothing left behind."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from voxengine import (
    ConfigError,
    InvalidState,
    Reconnected,
    ResponseDone,
    ShutdownCancelled,
    VoiceEngine,
    VoiceEngineConfig,
    tool,
)
from voxengine.config import ReconnectPolicy, WatchdogPolicy
from voxengine.engine import DISCONNECT_TIMEOUT

from ._peer import HostileServer, Peer, open_sockets, voxengine_tasks

KEY = "sk-hostile-engine-456"
LONG = 60.0


def engine(server: HostileServer, **kwargs: Any) -> VoiceEngine:
    kwargs.setdefault("reconnect", ReconnectPolicy(initial_delay=0.02, max_delay=0.2))
    return VoiceEngine(
        VoiceEngineConfig(
            provider="openai",
            api_key=KEY,
            base_url=server.url,
            vad_enabled=False,
            output_modality="text",
            **kwargs,
        )
    )


async def test_tool_output_sent_during_the_drop_is_delivered_after_the_reconnect() -> None:
    tool_finished = asyncio.Event()

    async def get_weather(city: str) -> str:
        """Weather."""
        await asyncio.sleep(0)
        tool_finished.set()
        return f"sunny in {city}"

    async def script(peer: Peer) -> None:
        if peer.index == 1:
            await tool_finished.wait()  # the output is produced while we are away
        await peer.handshake()
        if peer.index > 0:
            await peer.serve()
        await peer.recv_type("response.create")
        await peer.function_call("call_W1", "get_weather", '{"city": "Paris"}')
        peer.drop()  # mid tool call: the output has nowhere to go

    async with HostileServer(script) as server:
        e = engine(server, tools=(tool(get_weather, timeout=None),))
        async with e:
            reconnected = asyncio.ensure_future(e.events.wait_for(Reconnected, timeout=LONG))
            await e.create_response()
            await reconnected
            # the follow-up to the tool output, answered on the new connection
            await e.events.wait_for(
                ResponseDone, timeout=LONG, filter=lambda d: d.response_id.startswith("resp_1")
            )
    final = server.peers[-1]
    assert final.tool_outputs() == ["call_W1"]  # delivered, exactly once
    outputs = [m for m in final.received if m.get("item", {}).get("type") == "function_call_output"]
    assert [m["item"]["output"] for m in outputs] == ["sunny in Paris"]


async def test_disconnect_is_bounded_while_a_tool_hangs() -> None:
    started = asyncio.Event()

    async def forever() -> str:
        """Never returns."""
        started.set()
        await asyncio.Event().wait()
        return "unreachable"

    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.recv_type("response.create")
        await peer.function_call("call_H1", "forever")
        await peer.serve()

    async with HostileServer(script) as server:
        sockets = open_sockets()
        e = engine(server, tools=(tool(forever, timeout=None),))
        await e.connect()
        await e.create_response()
        await asyncio.wait_for(started.wait(), LONG)
        began = time.monotonic()
        await e.disconnect()
        took = time.monotonic() - began
        await asyncio.wait_for(server.peers[0].closed.wait(), LONG)
        assert voxengine_tasks() == []
        assert open_sockets() == sockets
    assert took < DISCONNECT_TIMEOUT
    reports = [ev for ev in e.events.history if isinstance(ev, ShutdownCancelled)]
    assert [r.tool_calls for r in reports] == [("call_H1",)]


async def test_disconnect_is_bounded_while_an_async_handler_hangs() -> None:
    started = asyncio.Event()

    async def stuck(event: ResponseDone) -> None:
        started.set()
        await asyncio.Event().wait()

    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.serve()

    async with HostileServer(script) as server:
        sockets = open_sockets()
        e = engine(server)
        e.events.on(ResponseDone, stuck)
        await e.connect()
        await e.send_text("hi")
        await asyncio.wait_for(started.wait(), LONG)
        began = time.monotonic()
        await e.disconnect()
        took = time.monotonic() - began
        await asyncio.wait_for(server.peers[0].closed.wait(), LONG)
        assert voxengine_tasks() == []
        assert open_sockets() == sockets
    assert took < DISCONNECT_TIMEOUT
    reports = [ev for ev in e.events.history if isinstance(ev, ShutdownCancelled)]
    assert [r.handlers for r in reports] == [("response.done",)]


async def test_disconnect_is_bounded_while_reconnecting_to_a_silent_server() -> None:
    """The reconnect lands on a server that accepts TCP and never says a word."""

    async def script(peer: Peer) -> None:
        if peer.index > 0:
            await peer.ws.wait_closed()  # no session.created, ever
            return
        await peer.handshake()
        peer.drop()

    async with HostileServer(script) as server:
        sockets = open_sockets()
        e = engine(server)
        await e.connect()
        await server.wait_connections(2)
        began = time.monotonic()
        await e.disconnect()
        took = time.monotonic() - began
        for peer in server.peers:
            await asyncio.wait_for(peer.closed.wait(), LONG)
        assert voxengine_tasks() == []
        assert open_sockets() == sockets
    assert took < DISCONNECT_TIMEOUT


async def test_concurrent_connects_open_one_session() -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.serve()

    async with HostileServer(script) as server:
        sockets = open_sockets()
        e = engine(server)
        results = await asyncio.gather(
            e.connect(), e.connect(), e.connect(), return_exceptions=True
        )
        assert results.count(None) == 1
        assert all(isinstance(r, InvalidState) for r in results if r is not None)
        assert len(server.peers) == 1
        await e.send_text("still works")
        await e.events.wait_for(ResponseDone, timeout=LONG)
        await e.disconnect()
        await asyncio.wait_for(server.peers[0].closed.wait(), LONG)
        assert voxengine_tasks() == []
        assert open_sockets() == sockets


@pytest.mark.parametrize("calls", [2, 3])
async def test_concurrent_provider_connects_open_one_session(calls: int) -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        await peer.serve()

    async with HostileServer(script) as server:
        e = engine(server)
        p = e.provider
        results = await asyncio.gather(*(p.connect() for _ in range(calls)), return_exceptions=True)
        assert results.count(None) == 1
        assert len(server.peers) == 1
        await p.disconnect()
        await asyncio.wait_for(server.peers[0].closed.wait(), LONG)
        assert voxengine_tasks() == []


def test_reliability_policies_are_set_on_the_engine_config() -> None:
    reconnect = ReconnectPolicy(max_attempts=2, healthy_after=3.0)
    watchdog = WatchdogPolicy(response_stall=4.0)
    e = VoiceEngine(
        VoiceEngineConfig(provider="openai", api_key=KEY, reconnect=reconnect, watchdog=watchdog)
    )
    assert e.provider.config.reconnect is reconnect
    assert e.provider.config.watchdog is watchdog
    with pytest.raises(ConfigError, match="healthy_after"):
        ReconnectPolicy(healthy_after=0)
    with pytest.raises(ConfigError, match="ReconnectPolicy"):
        VoiceEngineConfig(provider="openai", api_key=KEY, reconnect=3)  # type: ignore[arg-type]
