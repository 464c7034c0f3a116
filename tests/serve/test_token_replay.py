"""Call tokens are single-use in the whole deployment: two servers (uvicorn on loopback)
share a deployment secret and a real redis-server; a token that opened a call on one is
refused when it is replayed against the other, over the WebSocket hello and over WebRTC
signaling. With Redis down the policy is --state-required's: refuse, or accept with a
warning (single use per worker until Redis answers)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis

from voxengine.serve.client import CallEnded, open_call

from .conftest import Served, serve
from .redis_server import RedisServer, free_port

#: Not a usable SDP: the token is checked before the offer is.
OFFER = {"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}


@contextlib.asynccontextmanager
async def two_workers(state_url: str, **settings: object) -> AsyncIterator[tuple[Served, Served]]:
    async with (
        serve(state_url=state_url, state_ttl=30, **settings) as a,
        serve(state_url=state_url, state_ttl=30, **settings) as b,
    ):
        yield a, b


async def refused(served: Served, token: str) -> CallEnded:
    with pytest.raises(CallEnded) as caught:
        async with open_call(served.ws, token):
            pass
    return caught.value


async def offer(served: Served, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=served.http, timeout=30) as http:
        return await http.post("/rtc/offer", json={**OFFER, "token": token})


async def test_a_token_replayed_against_another_worker_is_refused(
    redis_server: RedisServer,
) -> None:
    async with two_workers(redis_server.url) as (a, b):
        token = await a.token()
        async with open_call(a.ws, token, player="instant") as call:
            assert call.call_id
            replay = await refused(b, token)
            assert (replay.reason, replay.detail) == ("unauthorized", "token already used")
            response = await offer(b, token)
            assert response.status_code == 401
            assert response.json() == {"error": "unauthorized", "detail": "token already used"}
            await call.hang_up()
        assert b.board.calls == {}
        # the spent id lives in Redis no longer than the token could be used
        jti = a.board.tokens.verify(token, consume=False).token_id
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            ttl_ms = await client.pttl(f"voxengine:spent:jti:{jti}")
        finally:
            await client.aclose()
        assert 0 < ttl_ms <= a.board.config.token_ttl * 1000
        # a fresh token still opens a call on the other worker
        async with open_call(b.ws, await b.token(), player="instant") as other:
            assert other.call_id
            await other.hang_up()


async def test_a_token_spent_over_webrtc_signaling_is_refused_elsewhere(
    redis_server: RedisServer,
) -> None:
    async with two_workers(redis_server.url) as (a, b):
        token = await a.token()
        first = await offer(a, token)  # spent, although the (unusable) offer is then refused
        assert first.status_code == 400
        assert first.json()["error"] == "malformed"
        replay = await refused(b, token)
        assert (replay.reason, replay.detail) == ("unauthorized", "token already used")


async def test_redis_down_accepts_with_a_warning_or_refuses_by_configuration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    async with two_workers(down) as (a, b):
        token = await a.token()
        async with open_call(a.ws, token, player="instant") as call:
            assert call.ready["durable"] is False
            # the issuing worker still remembers the token itself
            assert (await refused(a, token)).detail == "token already used"
            # the other one cannot know: accepted, as documented, with a warning
            async with open_call(b.ws, token, player="instant") as replayed:
                assert replayed.call_id != call.call_id
                await replayed.hang_up()
            await call.hang_up()
    assert "call tokens are single-use on this worker only" in caplog.text
    assert token not in caplog.text
    async with two_workers(down, state_required=True) as (a, _):
        refusal = await refused(a, await a.token())
        assert refusal.reason == "state_unavailable"
        response = await offer(a, await a.token())
        assert response.status_code == 503
        assert response.json()["error"] == "state_unavailable"
        assert a.board.calls == {}
