"""Resuming a WebRTC call on another worker: two servers (uvicorn on loopback) share a
real redis-server; aiortc's own peer connection is the browser. A call starts over
WebRTC on one server and says a first turn; its line drops; a new offer carrying the
call's ``resume_token`` (instead of a call token) goes to the other server, which
continues the call: same call id, ``ready`` with the next token, ``resumed`` with the
restored transcript and what was lost, and the assistant remembers. A resume token is
good once, and a forged one costs no peer connection."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.serve.browser.rtc_client import RTCCaller, settle
from tests.serve.redis_server import RedisServer
from tests.serve.test_resume_calls import done, workers
from tests.session.test_resume import texts_of
from voxengine.serve.browser.rtc_endpoint import OFFER_PATH
from voxengine.serve.state import StateStore
from voxengine.testing import FakeOpenAIServerHandle

pytestmark = pytest.mark.timeout(120)


async def offer(base: str, caller: RTCCaller, **fields: Any) -> httpx.Response:
    body = {**(await caller.offer()), **fields}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        return await http.post(OFFER_PATH, json=body)


async def connected(caller: RTCCaller, response: httpx.Response) -> dict[str, Any]:
    """Apply the answer; the ``ready`` message once the data channel is up."""
    assert response.status_code == 200, response.text
    await caller.accept(response.json()["sdp"])
    await caller.wait_connected()
    return await caller.wait_message(lambda m: m["type"] == "ready")


def say(caller: RTCCaller, text: str) -> None:
    caller.channel.send(json.dumps({"type": "text", "text": text}))


async def history(store: StateStore, call_id: str) -> list[str]:
    record = await store.load(call_id)
    return [e.text for e in record.snapshot.history if e.text] if record is not None else []


async def test_a_webrtc_call_resumes_on_another_worker_with_its_history(
    fake: FakeOpenAIServerHandle, redis_server: RedisServer
) -> None:
    async with workers(fake, redis_server.url) as (a, b):
        first = RTCCaller(None)
        try:
            response = await offer(a.http, first, token=await a.token())
            ready = await connected(first, response)
            assert ready["durable"] is True
            token = ready["resume_token"]
            assert token
            assert response.json()["resume_token"]  # the answer carries one too
            call_id = ready["call_id"]
            say(first, "My name is Ada")
            await first.wait_message(lambda m: m["type"] == "response" and done(m))
            store = a.board.continuity.store
            async with asyncio.timeout(10):  # the keeper writes right after the reply ends
                while len(await history(store, call_id)) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            await first.close()  # the line drops: no "bye", so the call can resume
        await settle(lambda: not a.board.calls, timeout=20)

        second = RTCCaller(None)
        try:
            response = await offer(b.http, second, resume_token=token)
            again = await connected(second, response)
            assert response.json()["call_id"] == call_id  # the same call, on the other worker
            assert again["call_id"] == call_id
            assert again["resume_token"] not in (None, token)
            resumed = await second.wait_message(lambda m: m["type"] == "resumed")
            assert resumed["restored_items"] == 2
            assert resumed["lost"] == {"user_turn": False, "assistant_reply": False}
            assert [m["text"] for m in resumed["transcript"]] == [
                "My name is Ada",
                "Nice to meet you.",
            ]
            (call,) = b.board.calls.values()
            assert call.context.endpoint == "webrtc"
            say(second, "What is my name?")
            said = await second.wait_message(
                lambda m: (
                    m["type"] == "transcript"
                    and m["role"] == "assistant"
                    and m["final"]
                    and m["text"] != "Nice to meet you."
                )
            )
            assert said["text"] == "Your name is Ada."
            created = [
                texts_of(e["item"])
                for e in fake.connections[-1].received
                if e["type"] == "conversation.item.create"
            ]
            assert ["My name is Ada"] in created  # the provider saw the earlier turn again

            # the token resumed once; a replay is refused, over either worker
            third = RTCCaller(None)
            try:
                replay = await offer(a.http, third, resume_token=token)
            finally:
                await third.close()
            assert replay.status_code == 401
            assert replay.json()["error"] == "unauthorized"
            second.channel.send(json.dumps({"type": "bye"}))  # a hang-up ends it for good
            await settle(lambda: not b.board.calls, timeout=20)
        finally:
            await second.close()
        assert await store.load(call_id) is None


async def test_a_forged_resume_token_is_refused_before_any_peer_exists(
    fake: FakeOpenAIServerHandle, redis_server: RedisServer
) -> None:
    async with workers(fake, redis_server.url) as (a, _):
        caller = RTCCaller(None)
        try:
            for forged in ("garbage", "a.b", 42):
                response = await offer(a.http, caller, resume_token=forged)
                assert response.status_code == 401
                assert response.json()["error"] == "unauthorized"
        finally:
            await caller.close()
        assert a.board.calls == {}
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("rtc-")]
