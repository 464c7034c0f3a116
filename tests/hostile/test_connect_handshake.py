"""Hostile servers during the opening handshake, written from the protocol docs.

The servers here are raw ``websockets`` (or raw TCP) servers that follow
openai-realtime.md §2/§3 and gemini-live.md §2/§9 only as far as needed to
misbehave at one precise point: never answering the HTTP upgrade, dropping the TCP
connection during it, answering garbage, closing 1011 before ``session.created``,
dropping after ``session.created`` (before ``session.updated``), closing with an
auth or configuration meaning. Each test asserts the typed error the user gets
from ``connect()``, whether it was retried (by counting connections), and that
the wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from websockets.asyncio.server import ServerConnection, serve

from voxengine import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectTimeout,
    HandshakeClosed,
    ProviderError,
    ResponseDone,
)
from voxengine.providers.gemini import GeminiConfig, GeminiProvider
from voxengine.providers.openai import OpenAIConfig, OpenAIProvider
from voxengine.providers.realtime import RealtimeProvider
from voxengine.session import is_retryable
from voxengine.testing import FakeOpenAIServer
from voxengine.testing._driver import serve_websocket
from voxengine.transport.backends import TRANSPORTS, connector

from ..conftest import collect_until

KEY = "sk-handshake-test-0123456789"

Handler = Callable[[ServerConnection], Awaitable[None]]


@dataclass
class Counter:
    port: int = 0
    connections: int = 0


@contextlib.asynccontextmanager
async def ws_server(
    handler: Callable[[ServerConnection, int], Awaitable[None]],
) -> AsyncIterator[Counter]:
    """A websockets server calling ``handler(connection, n)`` for the n-th connection (0-based)."""
    counter = Counter()

    async def handle(ws: ServerConnection) -> None:
        number = counter.connections
        counter.connections += 1
        await handler(ws, number)

    async with serve(handle, "127.0.0.1", 0) as server:
        counter.port = server.sockets[0].getsockname()[1]
        yield counter


@contextlib.asynccontextmanager
async def tcp_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[Counter]:
    counter = Counter()
    handlers: set[asyncio.Task[object]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counter.connections += 1
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        except asyncio.CancelledError:
            # Python 3.11's start_server callback calls task.exception() on a cancelled
            # handler and reports the CancelledError as an unhandled error: end normally.
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    counter.port = server.sockets[0].getsockname()[1]
    async with server:
        try:
            yield counter
        finally:
            for task in handlers:  # a handler still waiting on a client: stop it here
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)


def openai(port: int, *, timeout: float = 10.0, transport: str = "websockets") -> RealtimeProvider:
    provider = OpenAIProvider(
        OpenAIConfig(
            api_key=KEY,
            base_url=f"ws://127.0.0.1:{port}/v1",
            connect_timeout=timeout,
            transport=transport,
        )
    )
    provider.retry_backoff = 0.01
    return provider


def gemini(port: int) -> RealtimeProvider:
    provider = GeminiProvider(GeminiConfig(api_key=KEY, base_url=f"ws://127.0.0.1:{port}"))
    provider.retry_backoff = 0.01
    return provider


def session_created() -> str:
    """The first server event of a GA session (openai-realtime.md §3)."""
    return json.dumps(
        {
            "type": "session.created",
            "event_id": "event_1",
            "session": {"type": "realtime", "id": "sess_1", "object": "realtime.session",
                        "model": "gpt-realtime"},
        }
    )  # fmt: skip


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_server_that_never_answers_the_upgrade_is_a_bounded_connect_timeout(
    transport: str,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the upgrade request and never answers

    async with tcp_server(silent) as server:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(ConnectTimeout, match=r"within 0\.3 s") as info:
            await openai(server.port, timeout=0.3, transport=transport).connect(retry_count=1)
        elapsed = loop.time() - start
    assert elapsed >= 0.6  # two attempts, each waited its full timeout
    assert elapsed < 15  # and no longer than the bound (generous for a loaded machine)
    assert server.connections == 2
    assert is_retryable(info.value)
    assert KEY not in str(info.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tcp_dropped_during_the_upgrade_is_connect_failed_and_retried(
    transport: str,
) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the whole request, then hang up

    async with tcp_server(drop) as server:
        with pytest.raises(
            ConnectFailed, match="closed the connection during the WebSocket upgrade"
        ) as info:
            await openai(server.port, transport=transport).connect(retry_count=2)
    assert server.connections == 3
    assert is_retryable(info.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_garbage_answer_to_the_upgrade_is_connect_failed(transport: str) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with tcp_server(garbage) as server:
        with pytest.raises(ConnectFailed, match="invalid HTTP response") as info:
            await openai(server.port, transport=transport).connect(retry_count=0)
    assert type(info.value) is ConnectFailed
    assert server.connections == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_close_1011_before_session_created_is_retried_then_typed(transport: str) -> None:
    async def close_1011(ws: ServerConnection, number: int) -> None:
        await ws.close(1011, "internal error")

    async with ws_server(close_1011) as server:
        with pytest.raises(HandshakeClosed) as info:
            await openai(server.port, transport=transport).connect(retry_count=2)
    assert server.connections == 3  # the retry budget of connect(): 1 + 2
    assert info.value.code == 1011
    assert info.value.reason == "internal error"
    assert isinstance(info.value, ConnectFailed)
    assert is_retryable(info.value)


async def test_close_1011_once_then_a_working_server_connects_and_talks() -> None:
    async def flaky(ws: ServerConnection, number: int) -> None:
        if number == 0:
            await ws.close(1011, "internal error")
            return
        await serve_websocket(ws, FakeOpenAIServer(), pace_seconds=0.0, faults=None)

    async with ws_server(flaky) as server:
        provider = openai(server.port)
        await provider.connect(retry_count=2)
        try:
            await provider.send_text("after a retry")
            events = await collect_until(provider.events(), ResponseDone, timeout=10)
        finally:
            await provider.disconnect()
    assert server.connections == 2
    assert isinstance(events[-1], ResponseDone)


async def test_drop_after_session_created_before_session_updated_is_retried() -> None:
    async def drop_after_created(ws: ServerConnection, number: int) -> None:
        await ws.send(session_created())
        await ws.recv()  # our session.update
        ws.transport.abort()  # no close frame

    async with ws_server(drop_after_created) as server:
        with pytest.raises(HandshakeClosed) as info:
            await openai(server.port).connect(retry_count=1)
    assert server.connections == 2
    assert info.value.code is None
    assert is_retryable(info.value)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_session_handshake_that_never_completes_is_a_connect_timeout(
    transport: str,
) -> None:
    async def never_ready(ws: ServerConnection, number: int) -> None:
        await ws.send(session_created())
        await ws.wait_closed()  # never sends session.updated

    async with ws_server(never_ready) as server:
        with pytest.raises(ConnectTimeout, match="no session handshake"):
            await openai(server.port, timeout=0.3, transport=transport).connect(retry_count=1)
    assert server.connections == 2


async def test_openai_auth_close_during_the_handshake_is_never_retried() -> None:
    async def refuse_key(ws: ServerConnection, number: int) -> None:
        await ws.send(
            json.dumps(
                {
                    "type": "error",
                    "event_id": "event_1",
                    "error": {
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "message": f"Incorrect API key provided: {KEY}.",
                    },
                }
            )
        )
        await ws.close(3000, "invalid_request_error.invalid_api_key")

    async with ws_server(refuse_key) as server:
        with pytest.raises(AuthenticationFailed) as info:
            await openai(server.port).connect(retry_count=3)
    assert server.connections == 1
    assert not is_retryable(info.value)
    assert "Incorrect API key provided: ***" in str(info.value)  # the server quoted it
    assert KEY not in repr(info.value)


async def test_openai_4000_config_close_during_the_handshake_is_never_retried() -> None:
    async def bad_model(ws: ServerConnection, number: int) -> None:
        await ws.close(4000, "invalid_request_error.invalid_model")

    async with ws_server(bad_model) as server:
        with pytest.raises(ProviderError) as info:
            await openai(server.port).connect(retry_count=3)
    assert server.connections == 1
    assert not isinstance(info.value, ConnectFailed)


async def test_gemini_1008_invalid_key_is_authentication_failed_and_not_retried() -> None:
    async def bad_key(ws: ServerConnection, number: int) -> None:
        await ws.recv()  # setup (gemini-live.md §3.1)
        await ws.close(1008, f"API key not valid ({KEY}). Please pass a valid API key.")

    async with ws_server(bad_key) as server:
        with pytest.raises(AuthenticationFailed) as info:
            await gemini(server.port).connect(retry_count=3)
    assert server.connections == 1
    assert KEY not in str(info.value)


async def test_gemini_1011_before_setup_complete_is_retried() -> None:
    async def internal(ws: ServerConnection, number: int) -> None:
        await ws.recv()  # setup
        await ws.close(1011, "Internal error encountered.")

    async with ws_server(internal) as server:
        with pytest.raises(HandshakeClosed) as info:
            await gemini(server.port).connect(retry_count=1)
    assert server.connections == 2
    assert "Internal error" in str(info.value)


async def test_connection_refused_names_the_endpoint() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectFailed, match=rf"connection refused by ws://127\.0\.0\.1:{port}"):
        await openai(port).connect(retry_count=0)


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:99999/v1",  # port out of range
        "http://127.0.0.1:1/v1",  # not a WebSocket scheme
        "ws:///no-host",
        "ws://bad host/v1",
    ],
)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bad_uri_is_connect_failed_not_value_error(url: str, transport: str) -> None:
    with pytest.raises(ConnectFailed) as info:
        await connector(transport)(url, {"Authorization": f"Bearer {KEY}"}, timeout=2)
    assert KEY not in str(info.value)


def test_dns_failure_is_reported_as_such() -> None:
    """DNS is off limits in tests (no network beyond 127.0.0.1): the mapping of the
    resolver's error is checked directly."""
    from voxengine.transport.upgrade import os_failure as _os_failure

    exc = _os_failure(socket.gaierror(-2, "Name or service not known"), "wss://x:443", "x")
    assert type(exc) is ConnectFailed
    assert str(exc) == "DNS lookup failed for 'x' (Name or service not known)"
