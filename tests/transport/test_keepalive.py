"""Keepalive pings on a loop timer, against real websockets servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.protocol import State

from voxengine.transport.keepalive import TimerKeepalive


@contextlib.asynccontextmanager
async def _server(handler) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/"


async def _until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def test_pings_are_answered_and_the_idle_connection_keeps_no_task() -> None:
    async def idle(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with _server(idle) as url:
        ws = await connect(url, create_connection=TimerKeepalive, ping_interval=0.05)
        assert isinstance(ws, TimerKeepalive)
        try:
            await _until(lambda: ws.latency > 0)  # a pong came back: pings go out
            first = ws.latency
            await _until(lambda: ws.latency != first)  # and again, on the timer
            assert ws.protocol.state is State.OPEN
            # Between pings nothing but the timer waits: no task of this connection.
            await _until(lambda: ws.keepalive_task is None)
            assert not [t for t in asyncio.all_tasks() if "_ping_once" in repr(t.get_coro())]
        finally:
            await ws.close()
        assert ws.keepalive_task is None


async def test_an_unanswered_ping_fails_the_connection_with_1011() -> None:
    done = asyncio.Event()

    async def deaf(ws: ServerConnection) -> None:
        ws.transport.pause_reading()  # the ping is never read, so never answered
        await done.wait()
        ws.transport.resume_reading()

    async with _server(deaf) as url:
        try:
            ws = await connect(
                url,
                create_connection=TimerKeepalive,
                ping_interval=0.05,
                ping_timeout=0.2,
                close_timeout=0.5,  # the deaf peer never completes the closing handshake
            )
            await asyncio.wait_for(ws.wait_closed(), 10)
            assert ws.protocol.close_sent is not None
            assert ws.protocol.close_sent.code == 1011
            assert ws.protocol.close_sent.reason == "keepalive ping timeout"
        finally:
            done.set()


async def test_without_ping_interval_no_ping_is_sent() -> None:
    async def idle(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with _server(idle) as url:
        ws = await connect(url, create_connection=TimerKeepalive, ping_interval=None)
        try:
            await asyncio.sleep(0.2)
            assert ws.latency == 0  # no pong: no ping
            assert ws.keepalive_task is None
        finally:
            await ws.close()
