"""Keepalive pings on a loop timer, against real websockets servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.protocol import State

from voxengine.transport.keepalive import TimerKeepalive

from .upgrade import accept_upgrade


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


async def test_a_paused_writer_waits_for_the_socket_to_drain_then_resumes() -> None:
    # The drain waiters are made on first use: check that writing still blocks and
    # resumes as websockets' own connection does. The peer completes the upgrade by
    # hand, then reads nothing until released (so the socket's buffers fill up).
    release = asyncio.Event()
    finished = asyncio.Event()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_slowly(reader, writer)
        except ConnectionError:
            pass  # the client aborts at the end
        finally:
            writer.close()
            finished.set()

    async def read_slowly(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accept_upgrade(reader, writer)
        await release.wait()
        while await reader.read(1 << 20):
            pass

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ws = await connect(
        f"ws://127.0.0.1:{port}/", create_connection=TimerKeepalive, write_limit=1024
    )
    try:
        chunk = b"x" * 1_000_000
        waiting: asyncio.Task[None] | None = None
        for _ in range(500):  # until the kernel's buffers are full and a send waits
            send = asyncio.create_task(ws.send(chunk))
            done, _ = await asyncio.wait({send}, timeout=0.5)
            if not done:
                waiting = send
                break
        assert waiting is not None, "writing never had to wait"
        assert ws.paused
        assert len(ws.drain_waiters) == 1
        release.set()
        await asyncio.wait_for(waiting, 10)
        assert not ws.drain_waiters
        assert not ws.paused
    finally:
        release.set()
        ws.transport.abort()
        await asyncio.wait_for(finished.wait(), 10)
        server.close()
        await server.wait_closed()
