"""Graceful shutdown: readiness turns 503, new calls are refused, calls in progress are
told and given ``drain_timeout`` to end, then closed with ``going_away``."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from voxengine.serve.client import CallEnded, open_call

from .conftest import serve


async def test_shutdown_drains_then_closes_calls_with_going_away() -> None:
    async with (
        serve(drain_timeout=1.5) as served,
        open_call(served.ws, await served.token()) as call,
    ):
        await call.send_text("hello")
        await call.wait_for("response", lambda m: m["state"] == "done", timeout=20)
        token = await served.token()
        served.running.server.should_exit = True  # as SIGTERM does
        notice = await call.wait_for("going_away", timeout=20)
        assert notice["seconds"] == 1.5
        async with httpx.AsyncClient(base_url=served.http) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"ready": False, "calls": 1}
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.post("/token")).status_code == 503
        with pytest.raises(CallEnded) as refused:
            async with open_call(served.ws, token):
                pass
        assert (refused.value.reason, refused.value.code) == ("going_away", 1001)
        # the call in progress still works during the drain
        start = len(call.messages)
        await call.send_text("still there?")
        await call.wait_for("response", lambda m: m["state"] == "done", start=start)
        assert await call.wait_closed(timeout=20) == 1001
        assert call.bye == {"type": "bye", "reason": "going_away", "detail": ""}
    assert served.board.calls == {}


async def test_drain_ends_early_when_calls_hang_up() -> None:
    async with serve(drain_timeout=30.0) as served:
        async with open_call(served.ws, await served.token()) as call:
            started = time.monotonic()
            served.running.server.should_exit = True
            await call.wait_for("going_away", timeout=20)
            await call.hang_up()
            assert call.bye is not None
            assert call.bye["reason"] == "normal"
        await asyncio.wait_for(served.board.wait_idle(), 20)
    assert time.monotonic() - started < 20  # not the 30 s drain timeout
