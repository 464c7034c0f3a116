"""The WebSocket transport against real websockets servers on 127.0.0.1, each test on
every backend (``opener``: tests/transport/conftest.py)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Mapping
from http import HTTPStatus
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from voxengine.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ConnectTimeout,
    InvalidState,
    UpgradeRefused,
)
from voxengine.logs import trace_connector
from voxengine.recording import Recorder, load_recording
from voxengine.transport import Connection, Connector, PushConnection
from voxengine.transport.memory import memory_pair
from voxengine.transport.websocket import WebSocketConnection


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


async def test_round_trip_and_close_codes(opener: Connector) -> None:
    async for url in _server(_echo_then_close):
        conn = await opener(url, {"X-Test": "yes"}, timeout=5)
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


async def test_normal_close_is_closed_ok(opener: Connector) -> None:
    async def bye(ws: ServerConnection) -> None:
        await ws.close(1000, "bye")

    async for url in _server(bye):
        conn = await opener(url, {}, timeout=5)
        with pytest.raises(ConnectionClosedOK) as info:
            await conn.recv()
        assert (info.value.code, info.value.reason) == (1000, "bye")


@pytest.mark.parametrize(
    ("status", "exc_type"),
    [
        (HTTPStatus.UNAUTHORIZED, AuthenticationFailed),
        (HTTPStatus.FORBIDDEN, AuthenticationFailed),
        (HTTPStatus.BAD_REQUEST, UpgradeRefused),
        (HTTPStatus.INTERNAL_SERVER_ERROR, UpgradeRefused),
    ],
)
async def test_refused_upgrade_maps_to_typed_errors(
    status: HTTPStatus, exc_type: type, opener: Connector
) -> None:
    async for url in _server(_echo_then_close, process_request=_reject(status)):
        with pytest.raises(exc_type) as info:
            await opener(url, {"Authorization": "Bearer sk-hidden"}, timeout=5)
        assert type(info.value) is exc_type
        assert isinstance(info.value, ConnectFailed)
        assert str(int(status)) in str(info.value)
        assert "sk-hidden" not in str(info.value)


async def test_nothing_listening_is_connect_failed(opener: Connector) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectFailed, match=r"connection refused by ws://127\.0\.0\.1:"):
        await opener(f"ws://127.0.0.1:{port}/", {}, timeout=2)


async def test_silent_server_times_out_as_connect_failed(opener: Connector) -> None:
    release = asyncio.Event()
    finished = asyncio.Event()

    async def accept_and_hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await release.wait()  # never answers the upgrade
        finally:
            writer.close()
            finished.set()

    server = await asyncio.start_server(accept_and_hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        with pytest.raises(ConnectTimeout, match=r"within 0\.2 s"):
            await opener(f"ws://127.0.0.1:{port}/", {}, timeout=0.2)
        # End the handler before the test's loop closes: a handler task cancelled at
        # loop teardown makes asyncio's streams report an error nobody can catch.
        release.set()
        await asyncio.wait_for(finished.wait(), 30)


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


# -- pushed frames -----------------------------------------------------------------------


class _Sink:
    """Collects pushed frames and the task each arrived in (None: the read callback)."""

    def __init__(self) -> None:
        self.frames: list[str | bytes] = []
        self.tasks: set[asyncio.Task[object] | None] = set()
        self.arrived = asyncio.Event()

    def __call__(self, frame: str | bytes) -> None:
        self.frames.append(frame)
        self.tasks.add(asyncio.current_task())
        self.arrived.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self.frames) < count:
                self.arrived.clear()
                await self.arrived.wait()


async def _commanded(ws: ServerConnection) -> None:
    """Sends what each command asks for: 'burst N', 'fragments', 'bad-utf8', 'close'."""
    async for msg in ws:
        assert isinstance(msg, str)
        match msg.split():
            case ["burst", count]:
                for i in range(int(count)):
                    await ws.send(f"f{i}")
            case ["mixed"]:
                await ws.send("text")
                await ws.send(b"\x00\xffbinary")
            case ["fragments"]:
                await ws.send(["frag", "ment", "ed ✓"])
                await ws.send([b"\x01", b"\x02"])
                await ws.send("after")
            case ["bad-utf8"]:
                await ws.send(b"\xff\xfe not utf-8", text=True)
                await ws.send("never delivered")
            case ["close"]:
                await ws.close(4001, "done here")
                return
            case _:
                await ws.send(f"unknown {msg}")


async def test_push_delivers_whole_frames_in_order_from_the_read_callback(
    opener: Connector,
) -> None:
    async for url in _server(_commanded):
        conn = await opener(url, {}, timeout=5)
        sink = _Sink()
        assert conn.push_to(sink) is True
        reader = asyncio.create_task(conn.recv())  # returns nothing; raises at the close
        await conn.send("mixed")
        await conn.send("fragments")
        await conn.send("burst 50")
        await sink.wait_for(2 + 3 + 50)
        assert sink.frames[:5] == ["text", b"\x00\xffbinary", "fragmented ✓", b"\x01\x02", "after"]
        assert sink.frames[5:] == [f"f{i}" for i in range(50)]
        assert sink.tasks == {None}  # no task switch between the socket and the sink
        await conn.send("close")
        with pytest.raises(ConnectionClosedError) as info:
            await reader
        assert (info.value.code, info.value.reason) == (4001, "done here")


async def test_frames_read_before_push_come_from_recv_first_then_the_held_ones(
    opener: Connector,
) -> None:
    async def greet_then_command(ws: ServerConnection) -> None:
        for i in range(3):
            await ws.send(f"early{i}")
        await _commanded(ws)

    async for url in _server(greet_then_command):
        conn = await opener(url, {}, timeout=5)
        await asyncio.sleep(0.2)  # the three early frames are read before push_to
        sink = _Sink()
        assert conn.push_to(sink)
        await conn.send("burst 3")
        await asyncio.sleep(0.2)
        assert sink.frames == []  # held: the early frames have not been taken yet
        assert [await conn.recv() for _ in range(3)] == ["early0", "early1", "early2"]
        reader = asyncio.create_task(conn.recv())
        await sink.wait_for(3)
        assert sink.frames == ["f0", "f1", "f2"]
        await conn.send("burst 2")
        await sink.wait_for(5)
        assert sink.frames[3:] == ["f0", "f1"]
        await conn.send("close")
        with pytest.raises(ConnectionClosedError):
            await reader


async def test_a_message_whose_first_fragment_came_before_push_comes_from_recv(
    opener: Connector,
) -> None:
    """The switch to pushing can fall inside a fragmented message: that message is
    still recv's, and messages pushed after it wait until recv has returned it."""

    async def slow_fragments(ws: ServerConnection) -> None:
        async def fragments() -> AsyncIterator[str]:
            yield "first half, "
            await asyncio.sleep(0.4)  # the client switches to pushing meanwhile
            yield "second half"

        await ws.send(fragments())
        await ws.send("after")
        await ws.wait_closed()

    async for url in _server(slow_fragments):
        conn = await opener(url, {}, timeout=5)
        await asyncio.sleep(0.15)  # the first fragment has been read
        sink = _Sink()
        assert conn.push_to(sink)
        assert await conn.recv() == "first half, second half"
        await asyncio.sleep(0.1)  # "after" has arrived by now ...
        assert sink.frames == []  # ... and is held until recv is called again
        reader = asyncio.create_task(conn.recv())
        await sink.wait_for(1)
        assert sink.frames == ["after"]
        await conn.close()
        with pytest.raises(ConnectionClosedOK):
            await reader


async def test_invalid_utf8_text_frame_fails_the_connection_with_1007(opener: Connector) -> None:
    async for url in _server(_commanded):
        conn = await opener(url, {}, timeout=5)
        sink = _Sink()
        conn.push_to(sink)
        await conn.send("bad-utf8")
        with pytest.raises(ConnectionClosedError) as info:
            await conn.recv()
        assert info.value.code == 1007
        assert sink.frames == []


async def test_a_failing_sink_closes_the_connection_with_1011(
    caplog: pytest.LogCaptureFixture,
    opener: Connector,
) -> None:
    def broken(frame: str | bytes) -> None:
        raise RuntimeError("consumer bug")

    async for url in _server(_commanded):
        conn = await opener(url, {}, timeout=5)
        conn.push_to(broken)
        await conn.send("burst 2")
        with pytest.raises(ConnectionClosedError) as info:
            await conn.recv()
        assert info.value.code == 1011
        assert "frame sink failed" in caplog.text


async def test_push_to_refuses_twice_and_declines_foreign_sockets(opener: Connector) -> None:
    async for url in _server(_commanded):
        conn = await opener(url, {}, timeout=5)
        assert conn.push_to(_Sink())
        with pytest.raises(InvalidState):
            conn.push_to(_Sink())
        await conn.close()
        async with connect(url) as ws:  # opened without open_websocket: cannot push
            foreign = WebSocketConnection(ws)
            assert foreign.push_to(_Sink()) is False
            await foreign.send("burst 1")
            assert await foreign.recv() == "f0"


async def test_recording_and_tracing_wrappers_keep_pushing_and_see_every_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, opener: Connector
) -> None:
    """Recorder.wrap and trace_connector pass push_to through, frame by frame."""
    caplog.set_level(logging.DEBUG, logger="tests.wire")
    recorder = Recorder(tmp_path / "rec.jsonl")
    connector = trace_connector(recorder.wrap(opener), logging.getLogger("tests.wire"))
    async for url in _server(_commanded):
        conn = await connector(url, {}, timeout=5)
        assert isinstance(conn, PushConnection)
        sink = _Sink()
        assert conn.push_to(sink)
        reader = asyncio.create_task(conn.recv())
        await conn.send("burst 3")
        await sink.wait_for(3)
        assert sink.frames == ["f0", "f1", "f2"]
        assert sink.tasks == {None}
        await conn.send("close")
        with pytest.raises(ConnectionClosedError):
            await reader
    recorder.close()
    recorded = load_recording(tmp_path / "rec.jsonl")
    assert [f.data for f in recorded.frames("recv")] == ["f0", "f1", "f2"]
    assert [f.data for f in recorded.frames("send")] == ["burst 3", "close"]
    traced = [r.getMessage() for r in caplog.records if r.name == "tests.wire"]
    assert [m for m in traced if m.startswith("<")] == ["< f0", "< f1", "< f2"]


async def test_wrappers_over_a_pull_only_connection_decline_to_push() -> None:
    a, _b = memory_pair()

    async def pull_only(url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        return a

    conn = await trace_connector(pull_only)("mem://", {}, timeout=1)
    assert isinstance(conn, PushConnection)  # the wrapper has push_to ...
    assert conn.push_to(_Sink()) is False  # ... but the inner connection cannot push


async def test_a_text_tap_sees_whole_text_frames_first_and_passes_on_what_it_declines(
    opener: Connector,
) -> None:
    """``tap_text``: the tap gets each whole text frame's raw bytes before decoding;
    True takes the frame from the sink, False lets it go on; binary and fragmented
    messages never reach the tap; invalid UTF-8 the tap declines still fails (1007)."""
    tapped: list[bytes] = []

    def tap(data: bytes | bytearray | memoryview) -> bool:
        tapped.append(bytes(data))
        return bytes(data) in (b"f1", b"f3")  # takes these two, declines the rest

    async for url in _server(_commanded):
        conn = await opener(url, {}, timeout=5)
        sink = _Sink()

        assert conn.push_to(sink)
        assert conn.tap_text(tap) is True
        reader = asyncio.create_task(conn.recv())
        await conn.send("burst 5")
        await conn.send("mixed")
        await conn.send("fragments")
        await sink.wait_for(3 + 2 + 3)
        assert sink.frames == [
            "f0", "f2", "f4",  # the tap took f1 and f3
            "text", b"\x00\xffbinary", "fragmented ✓", b"\x01\x02", "after",
        ]  # fmt: skip
        # the tap saw only whole text frames, undecoded
        assert tapped == [b"f0", b"f1", b"f2", b"f3", b"f4", b"text", b"after"]
        assert conn.tap_text(None)
        await conn.send("burst 1")
        await sink.wait_for(9)
        assert len(tapped) == 7  # no tap any more
        assert conn.tap_text(lambda data: False)
        await conn.send("bad-utf8")
        with pytest.raises(ConnectionClosedError) as info:
            await reader
        assert info.value.code == 1007


async def test_a_failing_text_tap_closes_the_connection_with_1011(
    caplog: pytest.LogCaptureFixture,
    opener: Connector,
) -> None:
    def broken(data: bytes | bytearray | memoryview) -> bool:
        raise RuntimeError("tap bug")

    async for url in _server(_commanded):
        conn = await opener(url, {}, timeout=5)
        sink = _Sink()
        conn.push_to(sink)
        conn.tap_text(broken)
        await conn.send("burst 2")
        with pytest.raises(ConnectionClosedError) as info:
            await conn.recv()
        assert info.value.code == 1011
        assert "text tap failed" in caplog.text
        assert sink.frames == []
