"""The WebSocket transport against real websockets servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from http import HTTPStatus

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from voxengine.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
)
from voxengine.transport.memory import memory_pair
from voxengine.transport.websocket import open_websocket


async def _echo_then_close(ws: ServerConnection) -> None:
    assert ws.request is not None
    await ws.send("hello " + (ws.request.headers.get("X-Test") or ""))
    async for msg in ws:
        if msg == "close-4000":
            await ws.close(4000, "invalid_request_error.invalid_model")
            return
        await ws.send(msg)


def _reject(status: HTTPStatus):  # type: ignore[no-untyped-def]
    def process_request(conn: ServerConnection, request: Request) -> Response:
        return conn.respond(status, "refused\n")

    return process_request


async def _server(handler, **kwargs) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    async with serve(handler, "127.0.0.1", 0, **kwargs) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/realtime"


async def test_round_trip_and_close_codes() -> None:
    async for url in _server(_echo_then_close):
        conn = await open_websocket(url, {"X-Test": "yes"}, timeout=5)
        assert await conn.recv() == "hello yes"
        await conn.send("ping")
        assert await conn.recv() == "ping"
        await conn.send(b"\x00\x01")
        assert await conn.recv() == b"\x00\x01"
        await conn.send("close-4000")
        with pytest.raises(ConnectionClosedError) as info:
            await conn.recv()
        assert info.value.code == 4000
        assert info.value.reason == "invalid_request_error.invalid_model"
        with pytest.raises(ConnectionClosedError):
            await conn.send("late")


async def test_normal_close_is_closed_ok() -> None:
    async def bye(ws: ServerConnection) -> None:
        await ws.close(1000, "bye")

    async for url in _server(bye):
        conn = await open_websocket(url, {}, timeout=5)
        with pytest.raises(ConnectionClosedOK) as info:
            await conn.recv()
        assert (info.value.code, info.value.reason) == (1000, "bye")


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (HTTPStatus.UNAUTHORIZED, AuthenticationFailed),
        (HTTPStatus.FORBIDDEN, AuthenticationFailed),
        (HTTPStatus.BAD_REQUEST, ConnectFailed),
        (HTTPStatus.INTERNAL_SERVER_ERROR, ConnectFailed),
    ],
)
async def test_refused_upgrade_maps_to_typed_errors(status: HTTPStatus, exc_type: type) -> None:
    async for url in _server(_echo_then_close, process_request=_reject(status)):
        with pytest.raises(exc_type) as info:
            await open_websocket(url, {"Authorization": "Bearer sk-hidden"}, timeout=5)
        assert type(info.value) is exc_type
        assert str(int(status)) in str(info.value)
        assert "sk-hidden" not in str(info.value)


async def test_nothing_listening_is_connect_failed() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectFailed):
        await open_websocket(f"ws://127.0.0.1:{port}/", {}, timeout=2)


async def test_silent_server_times_out_as_connect_failed() -> None:
    async def accept_and_hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server = await asyncio.start_server(accept_and_hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(ConnectFailed, match="Timeout"):
            await open_websocket(f"ws://127.0.0.1:{port}/", {}, timeout=0.2)


async def test_memory_pair_order_latency_and_close() -> None:
    a, b = memory_pair(latency=0.05)
    start = time.perf_counter()
    for i in range(5):
        await a.send(f"m{i}")
    assert [await b.recv() for _ in range(5)] == [f"m{i}" for i in range(5)]
    assert time.perf_counter() - start >= 0.045
    await b.send(b"bin")
    assert await a.recv() == b"bin"
    await a.close(4000, "x")
    with pytest.raises(ConnectionClosedError) as info:
        await b.recv()
    assert (info.value.code, info.value.reason) == (4000, "x")
    with pytest.raises(ConnectionClosedError):
        await a.send("after close")
    with pytest.raises(InvalidState):
        memory_pair(latency=-1)
