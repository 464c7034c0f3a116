"""Limits and hostile clients: each ends only the offending call, with its own close
reason, while another caller's call carries on."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxengine.serve.client import CallClient, CallEnded, open_call

from .conftest import SECRET, Served, serve, small_limits


async def _answered(call: CallClient) -> None:
    start = len(call.messages)
    await call.send_text("are you still there")
    await call.wait_for("response", lambda m: m["state"] == "done", timeout=20, start=start)


async def _hello(ws: ClientConnection, token: str, **fields: object) -> dict[str, object]:
    hello = {"type": "hello", "protocol": 1, "token": token, **fields}
    await ws.send(json.dumps(hello))
    message = json.loads(await ws.recv())
    assert isinstance(message, dict)
    return message


async def _bye(ws: ClientConnection) -> tuple[dict[str, object], int | None]:
    """The ``bye`` the server sends before closing, and the close code."""
    bye: dict[str, object] = {}
    with contextlib.suppress(ConnectionClosed):
        async for frame in ws:
            if isinstance(frame, str) and json.loads(frame).get("type") == "bye":
                bye = json.loads(frame)
    return bye, ws.close_code


Attack = Callable[[ClientConnection], Awaitable[None]]


async def _send_text(ws: ClientConnection, text: str) -> None:
    await ws.send(text)


HOSTILE: dict[str, tuple[Attack, str | None, int]] = {
    "malformed JSON": (lambda ws: ws.send("{not json"), "malformed", 1007),
    "JSON that is not an object": (lambda ws: ws.send("[1, 2]"), "malformed", 1007),
    "odd-length audio": (lambda ws: ws.send(b"\x01\x02\x03"), "bad_audio", 4415),
    "a WAV file's bytes as audio": (
        lambda ws: ws.send(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(640)),
        "bad_audio",
        4415,
    ),
    "unknown message type": (lambda ws: ws.send('{"type": "rm -rf"}'), "protocol", 4400),
    "oversized frame": (lambda ws: ws.send(bytes(66_000)), "too_big", 1009),
    # far over the limit, uvicorn's own frame limit closes it (no bye), same code
    "huge frame": (lambda ws: ws.send(bytes(1_000_000)), None, 1009),
    "played with a bad epoch": (
        lambda ws: ws.send('{"type": "played", "epoch": "x", "seconds": 1}'),
        "malformed",
        1007,
    ),
    "empty text": (lambda ws: ws.send('{"type": "text", "text": ""}'), "malformed", 1007),
}


@pytest.mark.parametrize("attack", sorted(HOSTILE))
async def test_hostile_message_closes_only_its_own_call(served: Served, attack: str) -> None:
    send, reason, code = HOSTILE[attack]
    async with open_call(served.ws, await served.token()) as bystander:
        async with connect(served.ws) as ws:
            ready = await _hello(ws, await served.token())
            assert ready["type"] == "ready"
            await send(ws)
            bye, close_code = await _bye(ws)
        assert (bye.get("reason"), close_code) == (reason, code)
        await _answered(bystander)  # the other call is untouched
        assert len(served.board.calls) == 1
    async with open_call(served.ws, await served.token()) as after:  # and new calls work
        await _answered(after)


@pytest.mark.parametrize(
    ("hello", "reason", "code"),
    [
        ({"input_sample_rate": 12345}, "bad_audio", 4415),
        ({"output_sample_rate": "24000"}, "bad_audio", 4415),
        ({"protocol": 2}, "protocol", 4400),
        ({"metadata": [1]}, "malformed", 1007),
    ],
)
async def test_bad_hello_is_refused(
    served: Served, hello: dict[str, object], reason: str, code: int
) -> None:
    async with connect(served.ws) as ws:
        refusal = await _hello(ws, await served.token(), **hello)
        assert refusal["type"] == "bye"
        assert refusal["reason"] == reason
        await _bye(ws)
        assert ws.close_code == code
    assert served.board.calls == {}


async def test_audio_before_hello_and_no_hello_in_time() -> None:
    async with serve(limits=small_limits(hello_timeout=0.5)) as served:
        async with connect(served.ws) as ws:
            await ws.send(bytes(640))
            assert await _bye(ws) == (
                {"type": "bye", "reason": "protocol", "detail": "audio before hello"},
                4400,
            )
        async with connect(served.ws) as ws:
            bye, code = await _bye(ws)  # says nothing
            assert (bye["reason"], code) == ("timeout", 4408)


async def test_concurrent_calls_per_caller_are_limited() -> None:
    async with serve(limits=small_limits(max_calls_per_caller=1)) as served:
        token = await served.token(secret=SECRET, subject="carol")
        async with open_call(served.ws, token) as first:
            second = await served.token(secret=SECRET, subject="carol")
            with pytest.raises(CallEnded) as refused:
                async with open_call(served.ws, second):
                    pass
            assert (refused.value.reason, refused.value.code) == ("too_many_calls", 4409)
            other = await served.token(secret=SECRET, subject="dave")
            async with open_call(served.ws, other) as dave:  # another caller may call
                await _answered(dave)
            await _answered(first)
        async with open_call(served.ws, await served.token(secret=SECRET, subject="carol")):
            pass  # the slot was released


async def test_process_capacity_is_limited() -> None:
    async with (
        serve(limits=small_limits(max_calls=1)) as served,
        open_call(served.ws, await served.token()),
    ):
        with pytest.raises(CallEnded) as refused:
            async with open_call(served.ws, await served.token()):
                pass
        assert (refused.value.reason, refused.value.code) == ("busy", 1013)


async def test_call_length_is_limited() -> None:
    async with (
        serve(limits=small_limits(max_call_seconds=0.5)) as served,
        open_call(served.ws, await served.token()) as call,
    ):
        assert await call.wait_closed(timeout=20) == 4430
        assert call.bye is not None
        assert call.bye["reason"] == "time_limit"


async def test_message_flood_is_limited() -> None:
    async with (
        serve(limits=small_limits(max_messages_per_second=20)) as served,
        open_call(served.ws, await served.token(), player="none") as call,
    ):
        for _ in range(200):
            try:
                await call.send_audio(bytes(64))
            except Exception:
                break
        assert await call.wait_closed(timeout=20) == 4429
        assert call.bye is not None
        assert call.bye["reason"] == "rate_limited"


async def test_a_caller_that_vanishes_frees_its_call(served: Served) -> None:
    ws = await connect(served.ws)
    await _hello(ws, await served.token())
    assert len(served.board.calls) == 1
    ws.transport.abort()  # no close handshake
    for _ in range(200):
        if not served.board.calls:
            break
        await asyncio.sleep(0.05)
    assert served.board.calls == {}
    assert served.board.limiter.active == 0
