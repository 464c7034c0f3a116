"""What every WebSocket backend must do beyond the frame tests of test_websocket.py:
the message size bound, hostile frames and drops, keepalive against a dead peer, a
paused writer against a slow reader, redaction of what the backend logs, and how a
backend is chosen (``ProviderConfig.transport``). Real sockets on 127.0.0.1: raw TCP
peers that complete the upgrade by hand (RFC 6455 §4.2.2) and then misbehave."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from websockets.asyncio.server import ServerConnection, serve

from voxengine import VoiceEngineConfig
from voxengine.errors import ConfigError, ConnectionClosed, ConnectionClosedError
from voxengine.providers.openai import OpenAIConfig, OpenAIProvider
from voxengine.transport import Connector, DirectConnection, PushConnection
from voxengine.transport.backends import connector

from .upgrade import accept_upgrade

KEY = "sk-backend-test-0123456789abcdef"

Peer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def raw_peer(after_upgrade: Peer) -> AsyncIterator[str]:
    """A TCP server that accepts the WebSocket upgrade, then runs ``after_upgrade``."""
    handlers: set[asyncio.Task[object]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await accept_upgrade(reader, writer)
            await after_upgrade(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away (or the test ended): nothing to report
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        try:
            yield f"ws://127.0.0.1:{port}/v1/realtime"
        finally:
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)


def frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = False) -> bytes:
    """One server frame (RFC 6455 §5.2), unmasked unless ``masked`` (a server must not)."""
    head = bytes([(0x80 if fin else 0) | opcode])
    size = len(payload)
    mask_bit = 0x80 if masked else 0
    if size < 126:
        head += bytes([mask_bit | size])
    elif size < 1 << 16:
        head += bytes([mask_bit | 126]) + size.to_bytes(2, "big")
    else:
        head += bytes([mask_bit | 127]) + size.to_bytes(8, "big")
    if masked:
        return head + b"\0\0\0\0" + payload  # a zero mask: the payload reads as is
    return head + payload


async def _closed(conn: PushConnection, timeout: float = 10) -> ConnectionClosed:
    """What ``recv`` raises (the close), waiting at most ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                await conn.recv()
            except ConnectionClosed as exc:
                return exc


async def test_both_backends_open_direct_connections(opener: Connector) -> None:
    async def hello(ws: ServerConnection) -> None:
        await ws.send("hi")
        await ws.wait_closed()

    async with serve(hello, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        conn = await opener(url, {}, timeout=5)
        assert isinstance(conn, DirectConnection)
        assert isinstance(conn, PushConnection)
        assert await conn.recv() == "hi"
        await conn.close()


@pytest.mark.parametrize("fragmented", [False, True])
async def test_a_message_over_the_size_bound_closes_only_that_connection(
    opener: Connector, monkeypatch: pytest.MonkeyPatch, fragmented: bool
) -> None:
    """Beyond the bound (lowered to 1 KiB here) the connection closes with 1009 sent
    (the code the server echoes; ``None`` when the backend fails the connection without
    waiting for the echo, as both do for some of these cases) and the message reaches
    no one."""
    import voxengine.transport.picows as picows_backend
    import voxengine.transport.picows_listener as listener
    import voxengine.transport.websocket as websocket_backend

    monkeypatch.setattr(websocket_backend, "MAX_FRAME_BYTES", 1024)
    monkeypatch.setattr(picows_backend, "MAX_MESSAGE_BYTES", 1024)
    monkeypatch.setattr(listener, "MAX_MESSAGE_BYTES", 1024)

    async def big(ws: ServerConnection) -> None:
        await ws.send("small")
        if fragmented:
            await ws.send(["x" * 600, "y" * 600])  # each fragment fits, the message not
        else:
            await ws.send("z" * 1500)
        await ws.wait_closed()

    async with serve(big, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        conn = await opener(url, {}, timeout=5)
        other = await opener(url, {}, timeout=5)
        frames: list[str | bytes] = []
        assert await conn.recv() == "small"
        assert conn.push_to(frames.append)
        closed = await _closed(conn)
        assert isinstance(closed, ConnectionClosedError)
        assert closed.code in (1009, None)
        assert frames == []
        assert await other.recv() == "small"  # the other connection is untouched
        await other.close()


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("masked frame", frame(0x1, b"hello", masked=True)),
        ("reserved opcode", frame(0x3, b"???")),
        ("stray continuation", frame(0x0, b"tail")),
        ("fragmented ping", frame(0x9, b"p", fin=False)),
        ("text inside a fragmented message", frame(0x1, b"a", fin=False) + frame(0x1, b"b")),
    ],
)
async def test_hostile_frames_close_the_connection_and_deliver_nothing(
    opener: Connector, name: str, wire: bytes
) -> None:
    async def hostile(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(0x1, b"before") + wire + frame(0x1, b"after"))
        await reader.read(1 << 16)  # the client's close frame: then the server closes

    async with raw_peer(hostile) as url:
        conn = await opener(url, {}, timeout=5)
        assert isinstance(conn, PushConnection)
        frames: list[str | bytes] = []
        await asyncio.sleep(0.1)  # "before" (at least) is read before pushing starts
        assert conn.push_to(frames.append)
        received = [await conn.recv()]
        closed = await _closed(conn)
    assert received == ["before"]
    assert frames == []  # "after" is never delivered
    assert isinstance(closed, ConnectionClosedError)


async def test_a_hostile_peer_that_keeps_the_socket_open_is_dropped(opener: Connector) -> None:
    """After a protocol error the connection is closing: a server that then neither
    answers nor closes the TCP connection cannot keep the connection (or its session)
    hanging. ``picows`` aborts the socket itself; ``websockets`` sets a close deadline
    it enforces only inside ``close()``, so the backend aborts the socket at it."""

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(0x1, b"before") + frame(0x3, b"???"))
        await asyncio.Event().wait()  # reads nothing, closes nothing

    async with raw_peer(silent) as url:
        conn = await opener(url, {}, timeout=5)
        assert await conn.recv() == "before"
        closed = await _closed(conn, timeout=10)
    assert isinstance(closed, ConnectionClosedError)


async def test_a_peer_that_sends_close_but_keeps_the_socket_open_is_dropped(
    opener: Connector,
) -> None:
    async def half(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(0x1, b"before") + frame(0x8, b"\x03\xe8bye"))  # close 1000
        await asyncio.Event().wait()  # reads the client's close, never closes TCP

    async with raw_peer(half) as url:
        conn = await opener(url, {}, timeout=5)
        assert await conn.recv() == "before"
        closed = await _closed(conn, timeout=10)
    assert closed.code == 1000


async def test_a_drop_mid_stream_is_a_close_without_code(opener: Connector) -> None:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(frame(0x1, b"one") + frame(0x1, b"two"))
        await writer.drain()
        writer.transport.abort()

    async with raw_peer(drop) as url:
        conn = await opener(url, {}, timeout=5)
        assert await conn.recv() == "one"
        assert await conn.recv() == "two"
        closed = await _closed(conn)
        assert (type(closed), closed.code) == (ConnectionClosedError, None)
        with pytest.raises(ConnectionClosedError):
            await conn.send("after the drop")


async def test_picows_keepalive_pings_are_answered_and_a_dead_peer_is_closed() -> None:
    """Pings every 0.05 s: an answering server keeps the connection; one that stops
    reading is dropped after the ping timeout (and the close timeout). (The
    ``websockets`` backend's keepalive: tests/transport/test_keepalive.py.)"""
    from voxengine.transport.picows import open_picows as open_with

    keepalive = {"ping_interval": 0.05, "ping_timeout": 1.0}

    async def idle(ws: ServerConnection) -> None:
        await ws.wait_closed()

    async with serve(idle, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        conn = await open_with(url, {}, timeout=5, **keepalive)
        reader = asyncio.create_task(conn.recv())
        await asyncio.sleep(1.5)  # thirty pings, each answered in time
        assert not reader.done()
        await conn.close()
        with pytest.raises(ConnectionClosed):
            await reader

    sent: list[bytes] = []
    release = asyncio.Event()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.transport.pause_reading()  # pings are never read, never answered
        await release.wait()
        writer.transport.resume_reading()
        sent.append(await reader.read(1 << 16))

    async with raw_peer(deaf) as url:
        conn = await open_with(url, {}, timeout=5, **keepalive)
        loop = asyncio.get_running_loop()
        start = loop.time()
        closed = await _closed(conn, timeout=15)
        elapsed = loop.time() - start
        release.set()
    assert isinstance(closed, ConnectionClosedError)
    assert closed.code is None  # the peer never answered the close either
    assert 1.0 <= elapsed < 10  # the ping timeout, then at most the close timeout


async def test_a_slow_reader_pauses_send_until_the_socket_drains(opener: Connector) -> None:
    """A server that reads nothing: ``send`` starts waiting once the kernel's buffers and
    the write limit are full, and finishes when the server reads again."""
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        while await reader.read(1 << 20):
            pass

    async with raw_peer(slow) as url:
        conn = await opener(url, {}, timeout=5)
        chunk = b"x" * 1_000_000
        waiting: asyncio.Task[None] | None = None
        for _ in range(500):  # until a send has to wait
            send = asyncio.create_task(conn.send(chunk))
            done, _ = await asyncio.wait({send}, timeout=0.5)
            if not done:
                waiting = send
                break
            send.result()
        assert waiting is not None, "sending never had to wait"
        release.set()
        await asyncio.wait_for(waiting, 30)
        # the bound: what waits in user space is the write limit plus one frame
        transport = _underlying(conn)
        if transport is not None:
            assert transport.get_write_buffer_size() <= 2**15 + len(chunk) + 16
        await asyncio.wait_for(conn.close(), 10)


def _underlying(conn: object) -> asyncio.WriteTransport | None:
    handler = getattr(conn, "_handler", None)
    if handler is None or handler.transport is None:
        return None
    transport: asyncio.WriteTransport = handler.transport.underlying_transport
    return transport


async def test_the_backend_log_never_shows_the_key(
    opener: Connector, caplog: pytest.LogCaptureFixture
) -> None:
    """Every level, the lowest included (``picows`` logs the upgrade request there)."""
    caplog.set_level(1)

    async def hello(ws: ServerConnection) -> None:
        await ws.send("hi")
        await ws.wait_closed()

    async with serve(hello, "127.0.0.1", 0, logger=logging.getLogger("tests.server")) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        conn = await opener(url, {"Authorization": f"Bearer {KEY}"}, timeout=5)
        assert await conn.recv() == "hi"
        await conn.close()
    client = [r for r in caplog.records if not r.name.startswith("tests.server")]
    assert any("Authorization" in r.getMessage() for r in client)  # the request was logged
    for record in client:
        assert KEY not in record.getMessage(), record.name
        assert KEY[:12] not in record.getMessage(), record.name


# -- choosing the backend ------------------------------------------------------------------


def test_the_transport_name_is_checked_before_any_io() -> None:
    assert OpenAIConfig(api_key=KEY).transport == "websockets"
    with pytest.raises(ConfigError, match="transport must be one of 'websockets', 'picows'"):
        OpenAIConfig(api_key=KEY, transport="aiohttp")
    with pytest.raises(ConfigError, match="transport must be one of"):
        VoiceEngineConfig(api_key=KEY, transport="nope")
    engine_config = VoiceEngineConfig(api_key=KEY, transport="picows")
    assert engine_config.provider_settings()["transport"] == "picows"
    assert engine_config.provider_settings(primary=False)["transport"] == "picows"
    provider = OpenAIProvider(OpenAIConfig(api_key=KEY, transport="picows"))
    from voxengine.transport.picows import open_picows

    assert provider.connector() is open_picows
    with pytest.raises(ConfigError):
        connector("tcp")


def _run(code: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    result: dict[str, object] = json.loads(out.stdout.splitlines()[-1])
    return result


def test_picows_is_imported_only_when_a_connection_is_opened_with_it() -> None:
    result = _run(
        "import json, sys\n"
        "import voxengine\n"
        "from voxengine.providers.openai import OpenAIConfig, OpenAIProvider\n"
        "OpenAIProvider(OpenAIConfig(api_key='sk-x', transport='picows')).connector()\n"
        "print(json.dumps({'picows': 'picows' in sys.modules}))"
    )
    assert result == {"picows": False}


def test_picows_missing_is_a_config_error_saying_how_to_install_it() -> None:
    result = _run(
        "import json, sys\n"
        "sys.modules['picows'] = None  # as if it were not installed\n"
        "from voxengine.errors import ConfigError\n"
        "from voxengine.providers.openai import OpenAIConfig\n"
        "from voxengine.transport.picows import require_picows\n"
        "messages = []\n"
        "for attempt in (lambda: OpenAIConfig(api_key='sk-x', transport='picows'),"
        " require_picows):\n"
        "    try:\n"
        "        attempt()\n"
        "    except ConfigError as exc:\n"
        "        messages.append(str(exc))\n"
        "print(json.dumps({'messages': messages}))"
    )
    messages = result["messages"]
    assert isinstance(messages, list)
    assert len(messages) == 2
    for message in messages:
        assert "pip install 'voxengine[picows]'" in message


@contextlib.asynccontextmanager
async def connect_proxy() -> AsyncIterator[tuple[str, list[bytes]]]:
    """An HTTP CONNECT proxy (RFC 9110 §9.3.6) on 127.0.0.1 that records each request
    line and pipes the bytes both ways."""
    requests: list[bytes] = []
    tasks: set[asyncio.Task[object]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1 << 16):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0]
            requests.append(line)
            host, port = line.split()[1].decode().rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        try:
            yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", requests
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_proxy_the_environment_names_is_used(
    opener: Connector, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("websockets.uri", reason="needs websockets' get_proxy (15+)")
    from websockets import uri

    if not hasattr(uri, "get_proxy"):
        pytest.skip("websockets before 15 reads no proxy from the environment")

    async def hello(ws: ServerConnection) -> None:
        await ws.send("through the proxy")
        await ws.wait_closed()

    async with serve(hello, "127.0.0.1", 0) as server, connect_proxy() as (proxy, requests):
        port = server.sockets[0].getsockname()[1]
        for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("http_proxy", proxy)
        conn = await opener(f"ws://127.0.0.1:{port}/", {}, timeout=5)
        assert await conn.recv() == "through the proxy"
        await conn.close()
    assert requests == [f"CONNECT 127.0.0.1:{port} HTTP/1.1".encode()]


async def _written(conn: DirectConnection, data: bytes) -> ConnectionClosed | None:
    """``conn.write_utf8(data)`` as its one caller uses it: awaited at once if it returns
    an awaitable, the backend's own close translated; the close it raised, if any."""
    try:
        pending = conn.write_utf8(data)
        if pending is not None:
            await pending
    except ConnectionClosed as exc:
        return exc
    except conn.write_errors as exc:
        failure = conn.write_failure(exc)
        assert isinstance(failure, ConnectionClosed)
        return failure
    return None


async def test_write_utf8_sends_text_frames_in_order_with_send(opener: Connector) -> None:
    got: list[str | bytes] = []

    async def record(ws: ServerConnection) -> None:
        async for message in ws:
            got.append(message)
            if message == "end":
                await ws.send("done")

    async with serve(record, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        conn = await opener(url, {}, timeout=5)
        assert isinstance(conn, DirectConnection)
        for index in range(50):
            assert await _written(conn, f'{{"n":{index},"é":1}}'.encode()) is None
            if index % 10 == 0:
                await conn.send(b"binary")
        await conn.send("end")
        assert await conn.recv() == "done"
        await conn.close()
    texts = [m for m in got if isinstance(m, str)]
    assert texts == [f'{{"n":{i},"é":1}}' for i in range(50)] + ["end"]  # text, in order
    assert got.count(b"binary") == 5
    assert got.index(b"binary") == 1  # after the first write, in the order sent


async def test_write_utf8_after_the_close_fails_as_send_utf8_does(opener: Connector) -> None:
    """Whatever the backend raises for a closed connection reaches the caller as the
    voxengine close :meth:`send_utf8` raises, with the peer's code and reason."""

    async def close_at_once(ws: ServerConnection) -> None:
        await ws.close(4000, "going away now")

    async with serve(close_at_once, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        conn = await opener(url, {}, timeout=5)
        assert isinstance(conn, DirectConnection)
        await _closed(conn)
        failure = await _written(conn, b'{"late":true}')
        assert failure is not None
        with pytest.raises(ConnectionClosed) as expected:
            await conn.send_utf8(b'{"late":true}')
    assert (type(failure), failure.code, failure.reason) == (
        type(expected.value),
        expected.value.code,
        expected.value.reason,
    )
    assert (failure.code, failure.reason) == (4000, "going away now")


async def test_write_utf8_waits_for_a_slow_reader_then_delivers(opener: Connector) -> None:
    """Past the write limit the awaitable ``write_utf8`` returns waits for the socket to
    drain (picows: its only coroutine), and nothing written is lost."""
    release = asyncio.Event()
    sizes: list[int] = []

    async def slow(ws: ServerConnection) -> None:
        await release.wait()
        async for message in ws:
            sizes.append(len(message))
            if len(sizes) == count:
                await ws.send("all here")

    chunk = b'"' + b"x" * 1_000_000 + b'"'
    count = 0
    async with serve(slow, "127.0.0.1", 0, max_size=None) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        conn = await opener(url, {}, timeout=5)
        assert isinstance(conn, DirectConnection)
        waiting: asyncio.Task[ConnectionClosed | None] | None = None
        for _ in range(500):  # until a write has to wait
            count += 1
            write = asyncio.create_task(_written(conn, chunk))
            done, _ = await asyncio.wait({write}, timeout=0.5)
            if not done:
                waiting = write
                break
            assert write.result() is None
        assert waiting is not None, "writing never had to wait"
        release.set()
        assert await asyncio.wait_for(waiting, 30) is None
        assert await asyncio.wait_for(conn.recv(), 30) == "all here"
        await asyncio.wait_for(conn.close(), 10)
    assert sizes == [len(chunk)] * count
