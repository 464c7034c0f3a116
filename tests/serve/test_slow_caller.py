"""A caller who stops reading cannot grow the server's memory: what waits for it is
capped (``Limits.max_backlog_bytes``), its call ends with ``slow_caller`` (close code
4431), the metrics count it, and another caller's call carries on.

Real sockets on 127.0.0.1: the stalled callers are a WebSocket client that stops
reading, with a small receive buffer so the stall reaches the server at once, and the
fake Twilio after ``stop_reading()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from voxengine import VoiceEngine
from voxengine.serve import CallContext
from voxengine.serve.call import Call
from voxengine.serve.errors import CloseReason
from voxengine.serve.factory import engine_config
from voxengine.serve.output import EVENT_BYTES, CallerOutput
from voxengine.serve.switchboard import Switchboard
from voxengine.testing.fake_twilio import place_call
from voxengine.testing.mock import MockConfig, MockProvider

from .conftest import serve, small_limits
from .telephony.conftest import AUTH_TOKEN, twilio_server

#: 150 s of reply audio, sent as fast as the mock can: megabytes for a stalled caller
HUGE_REPLY = " ".join(["word"] * 150)
BACKLOG = 128 * 1024


def huge_mock(context: CallContext) -> VoiceEngine:
    config = engine_config(context.config)
    mock = MockConfig(session=config.session_config(), replies=(HUGE_REPLY,), seconds_per_word=1.0)
    return VoiceEngine(config, provider=MockProvider(mock))


async def _small_window(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    return sock


async def _closed_while_watching(board: Switchboard, call: Call, timeout: float = 120.0) -> int:
    """Wait until ``call`` closes; returns the largest backlog seen meanwhile."""
    largest = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not call.closed and loop.time() < deadline:
        largest = max(largest, call.output.backlog_bytes)
        await asyncio.sleep(0.01)
    assert call.closed, "the stalled caller's call did not end"
    return largest


def _count(board: Switchboard, metric: str, label: str) -> float:
    text = board.metrics.render().decode()
    for line in text.splitlines():
        if line.startswith(metric) and f'"{label}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.timeout(180)
async def test_a_browser_that_stops_reading_is_closed_with_slow_caller() -> None:
    limits = small_limits(max_backlog_bytes=BACKLOG)
    async with serve(make_engine=huge_mock, limits=limits) as served:
        board = served.board
        host, port = served.running.host, served.running.port
        sock = await _small_window(host, port)
        async with connect(served.ws, sock=sock, max_queue=4) as ws:
            hello = {"type": "hello", "protocol": 1, "token": await served.token()}
            await ws.send(json.dumps(hello))
            assert json.loads(await ws.recv())["type"] == "ready"
            [call] = board.calls.values()
            await ws.send(json.dumps({"type": "text", "text": "tell me everything"}))
            # from here on the client reads nothing
            largest = await _closed_while_watching(board, call)
            assert call.close_reason is CloseReason.SLOW_CALLER
            assert largest <= BACKLOG  # never more than the cap waited for the caller
            assert call.output.overflowed  # it did reach the cap
            assert _count(board, "voxengine_call_errors_total", "slow_caller") == 1.0
            # the client reads again: what was in flight, the bye, then the typed close
            bye: dict[str, object] = {}
            with contextlib.suppress(ConnectionClosed):
                async for frame in ws:
                    if isinstance(frame, str) and json.loads(frame).get("type") == "bye":
                        bye = json.loads(frame)
            assert bye.get("reason") == "slow_caller"
            assert ws.close_code == CloseReason.SLOW_CALLER.code == 4431
        for _ in range(200):
            if not board.calls:
                break
            await asyncio.sleep(0.02)
        assert board.calls == {}
        assert _count(board, "voxengine_calls_ended_total", "slow_caller") == 1.0


@pytest.mark.timeout(180)  # filling the kernel buffers and the cap is slow on a loaded machine
async def test_a_phone_caller_whose_network_stalls_is_closed_and_others_go_on() -> None:
    mock = MockConfig(replies=(HUGE_REPLY,), seconds_per_word=1.0)
    limits = small_limits(max_backlog_bytes=BACKLOG)
    async with (
        twilio_server(mock=mock, limits=limits, send_buffer_bytes=8192) as server,
        place_call(server.url, AUTH_TOKEN, receive_buffer_bytes=4096) as stalled,
        place_call(server.url, AUTH_TOKEN, from_number="+15550111") as bystander,
    ):
        await stalled.send_silence(0.1)
        await bystander.send_silence(0.1)
        calls = list(server.board.calls.values())
        assert len(calls) == 2
        stalled.stop_reading()
        await stalled.send_dtmf("1")  # still talking to the server, only not reading
        # the engines are made as each call's ``start`` arrives, in either order: pick
        # the stalled caller's by its call SID, never by position
        [engine] = [
            e
            for e, context in zip(server.engines, server.contexts, strict=True)
            if context.params["call_sid"] == stalled.call_sid
        ]
        await engine.send_text("tell me everything")
        call = next(c for c in calls if c.engine is engine)
        largest = await _closed_while_watching(server.board, call)
        assert call.close_reason is CloseReason.SLOW_CALLER, call.close_detail
        assert largest <= BACKLOG
        assert _count(server.board, "voxengine_call_errors_total", "slow_caller") == 1.0
        # the other caller's call is untouched
        assert bystander.close_code is None
        other = next(c for c in calls if c is not call)
        assert not other.closed


def test_the_backlog_cap_drops_and_reports_once() -> None:
    from voxengine.audio.format import AudioFormat

    overflows: list[int] = []
    output = CallerOutput(
        AudioFormat(sample_rate=8000),
        max_backlog_bytes=3200,
        on_overflow=lambda: overflows.append(output.backlog_bytes),
    )
    output.write(bytes(1600))
    output.write(bytes(1600))
    assert output.backlog_bytes == 3200
    assert not output.overflowed
    output.write(bytes(2))  # one sample more than the cap allows
    output.send_event({"type": "transcript"})
    assert output.overflowed
    assert overflows == [3200]
    assert output.backlog_bytes == 3200  # nothing more was queued
    output.clear()  # a barge-in drops the audio; the clear itself always goes through
    assert output.backlog_bytes == EVENT_BYTES
    assert [item.kind for item in output.drain_nowait()] == ["clear"]
