"""Calls over WebRTC end to end: the served app on uvicorn, aiortc's client as the browser.

The client fetches a token, POSTs its SDP offer to ``/rtc/offer``, streams a spoken WAV
as its microphone over real UDP on 127.0.0.1 and receives the reply audio on its
receiving track and the transcripts on the data channel. The provider is the mock
(the fake OpenAI Realtime server in memory): its energy VAD ends the turn and its
transcription and reply are deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.browser.conftest import serving
from tests.serve.browser.rtc_client import RTCCaller, settle
from tests.serve.browser.rtc_client import webrtc_task as _webrtc_task
from voxengine import VoiceEngine, VoiceEngineConfig
from voxengine.errors import ConfigError
from voxengine.serve import CallContext, Limits, ServeConfig, build_app
from voxengine.serve.browser.rtc_endpoint import OFFER_PATH, webrtc_routes
from voxengine.serve.browser.webrtc import RTCSettings
from voxengine.serve.client import fetch_token
from voxengine.testing.mock import MockConfig, MockProvider

LONG_REPLY = "Once upon a time there was a quiet harbour town by the sea " * 3


def mock_factory(*replies: str) -> Callable[[CallContext], VoiceEngine]:
    def factory(context: CallContext) -> VoiceEngine:
        config = VoiceEngineConfig(provider="mock", input_transcription_model="whisper-1")
        mock = MockConfig(replies=replies, session=config.session_config())
        return VoiceEngine(config, provider=MockProvider(mock))

    return factory


def app_for(factory: Callable[[CallContext], VoiceEngine], **settings: Any) -> Any:
    return build_app(
        ServeConfig(provider="mock", page=False),
        factory,
        routes=webrtc_routes(RTCSettings(**settings)),
    )


async def call(base: str, caller: RTCCaller, **extra: Any) -> httpx.Response:
    token = await fetch_token(base)
    body = {**(await caller.offer()), "token": token, **extra}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        return await http.post(OFFER_PATH, json=body)


def _rtc_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the server's peers (``rtc-*``) and of aiortc/aioice still running."""
    return [t for t in asyncio.all_tasks() if _webrtc_task(t)]


async def test_spoken_question_is_answered_over_webrtc(
    spoken_wav: Callable[..., Awaitable[Path]],
) -> None:
    app = app_for(mock_factory("The capital of France is Paris, a city on the Seine."))
    board = app.state.switchboard
    caller = RTCCaller(await spoken_wav("what is the capital of France"))
    async with serving(app) as base:
        response = await call(base, caller)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["type"] == "answer"
        assert "a=candidate:" in answer["sdp"]  # non-trickle: candidates in the answer
        await caller.accept(answer["sdp"])
        try:
            await caller.wait_connected()
            ready = await caller.wait_message(lambda m: m["type"] == "ready")
            assert ready["call_id"] == answer["call_id"]
            user = await caller.wait_message(
                lambda m: m["type"] == "transcript" and m["role"] == "user" and m["final"]
            )
            assert "s of audio" in user["text"]  # the mock's transcription of our speech
            said = await caller.wait_message(
                lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"]
            )
            assert said["text"] == "The capital of France is Paris, a city on the Seine."
            latency = await caller.wait_message(lambda m: m["type"] == "latency")
            assert 0 < latency["first_audio"] < 10
            await asyncio.wait_for(caller.voiced.wait(), 20)  # the reply is heard
            await settle(lambda: caller.voiced_seconds > 0.5, timeout=20)
            assert len(board.calls) == 1
        finally:
            await caller.close()  # hang up: the server ends the call and its peer
        await settle(lambda: not board.calls, timeout=20)
        assert _rtc_tasks() == []
    assert b'voxengine_calls_total{endpoint="webrtc"} 1.0' in board.metrics.render()


async def test_barge_in_truncates_at_the_played_position(
    spoken_wav: Callable[..., Awaitable[Path]],
) -> None:
    app = app_for(mock_factory(LONG_REPLY), jitter_allowance=0.06)
    mic = await spoken_wav("tell me a story", "stop please stop", gap=4.0)
    caller = RTCCaller(mic)
    async with serving(app) as base:
        response = await call(base, caller)
        await caller.accept(response.json()["sdp"])
        try:
            await caller.wait_connected()
            await asyncio.wait_for(caller.voiced.wait(), 30)  # the story is playing
            interrupted = await caller.wait_message(lambda m: m["type"] == "interrupted", 30)
            heard_for = asyncio.get_running_loop().time() - (caller.first_voiced_at or 0)
            clear = await caller.wait_message(lambda m: m["type"] == "clear")
            assert clear["epoch"] >= 1
            played = interrupted["played"]
            # truncated at what had been played: well short of the whole reply, and
            # no later than the reply had been audible at the client
            assert 0.3 < played < heard_for + 0.1
            assert played < len(LONG_REPLY.split()) * 0.25 - 2
            # the reply audio stops: little arrives after the clear
            voiced = caller.voiced_seconds
            await asyncio.sleep(1.0)
            assert caller.voiced_seconds - voiced < 0.4
        finally:
            await caller.close()


@pytest.mark.parametrize(
    ("mutate", "status", "error"),
    [
        (lambda body: {**body, "token": "v1.forged.token"}, 401, "unauthorized"),
        (lambda body: {k: v for k, v in body.items() if k != "token"}, 401, "unauthorized"),
        (lambda body: {**body, "sdp": "v=0\r\nm=audio 9 RTP/AVP 0\r\nnonsense"}, 400, "malformed"),
        (lambda body: {**body, "sdp": body["sdp"] + "a=x\r\n" * 20_000}, 413, "too_big"),
        (lambda body: {**body, "type": "answer"}, 400, "malformed"),
        (lambda body: {**body, "metadata": [1]}, 400, "malformed"),
    ],
)
async def test_bad_signaling_is_refused_and_leaves_nothing(
    mutate: Callable[[dict[str, Any]], dict[str, Any]], status: int, error: str
) -> None:
    app = app_for(mock_factory("hi"))
    caller = RTCCaller(None)
    async with serving(app) as base:
        body = mutate({**(await caller.offer()), "token": await fetch_token(base)})
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            response = await http.post(OFFER_PATH, json=body)
            assert response.status_code == status, response.text
            assert response.json()["error"] == error
            not_json = await http.post(OFFER_PATH, content=b"{nope")
            assert not_json.status_code == 400
        await settle(lambda: not app.state.switchboard.calls)
        await caller.close()
        assert _rtc_tasks() == []


async def test_hostile_data_channel_message_ends_that_call_only() -> None:
    app = app_for(mock_factory("hi"))
    board = app.state.switchboard
    bad, good = RTCCaller(None), RTCCaller(None)
    async with serving(app) as base:
        for caller in (bad, good):
            response = await call(base, caller)
            await caller.accept(response.json()["sdp"])
            await caller.wait_connected()
            await caller.wait_message(lambda m: m["type"] == "ready")
        assert len(board.calls) == 2
        bad.channel.send('{"type": "launch_missiles"}')  # unknown type: protocol
        bye = await bad.wait_message(lambda m: m["type"] == "bye")
        assert bye["reason"] == "protocol"
        await settle(lambda: len(board.calls) == 1)
        good.channel.send('{"type": "ping", "id": 7}')
        pong = await good.wait_message(lambda m: m["type"] == "pong")
        assert pong["id"] == 7
        good.channel.send('{"type": "text", "text": "hello"}')
        said = await good.wait_message(
            lambda m: m["type"] == "transcript" and m["role"] == "assistant" and m["final"]
        )
        assert said["text"] == "hi"
        await bad.close()
        await good.close()
        await settle(lambda: not board.calls, timeout=20)
    assert _rtc_tasks() == []


async def test_drain_closes_webrtc_calls() -> None:
    app = app_for(mock_factory("hi"))
    board = app.state.switchboard
    caller = RTCCaller(None)
    async with serving(app) as base:
        response = await call(base, caller)
        await caller.accept(response.json()["sdp"])
        await caller.wait_connected()
        await caller.wait_message(lambda m: m["type"] == "ready")
        closed = await board.drain(timeout=0)
        assert closed == 1
        bye = await caller.wait_message(lambda m: m["type"] == "bye")
        assert bye["reason"] == "going_away"
        await settle(lambda: caller.pc.connectionState in ("closed", "failed"), timeout=20)
    await caller.close()
    assert _rtc_tasks() == []


async def test_refused_calls_close_their_peer() -> None:
    def broken(context: CallContext) -> VoiceEngine:
        raise ConfigError("no such provider")

    caller = RTCCaller(None)
    async with serving(app_for(broken)) as base:
        response = await call(base, caller)
        assert response.status_code == 502
        assert response.json()["error"] == "provider_failed"
    await caller.close()
    assert _rtc_tasks() == []

    app = build_app(
        ServeConfig(provider="mock", page=False, limits=Limits(max_calls=1)),
        mock_factory("hi"),
    )
    first, second = RTCCaller(None), RTCCaller(None)
    async with serving(app) as base:
        ok = await call(base, first)
        assert ok.status_code == 200
        await first.accept(ok.json()["sdp"])
        await first.wait_connected()
        busy = await call(base, second)
        assert busy.status_code == 503
        assert busy.json()["error"] == "busy"
        assert len(app.state.switchboard.calls) == 1
        await first.close()
        await second.close()
        await settle(lambda: not app.state.switchboard.calls, timeout=20)
    assert _rtc_tasks() == []


async def test_a_caller_that_never_connects_ends_its_call() -> None:
    app = app_for(mock_factory("hi"), connect_timeout=0.5)
    board = app.state.switchboard
    caller = RTCCaller(None)
    async with serving(app) as base:
        response = await call(base, caller)  # the answer is never applied
        assert response.status_code == 200
        assert len(board.calls) == 1
        await settle(lambda: not board.calls, timeout=20)
        assert b'voxengine_calls_ended_total{reason="timeout"} 1.0' in board.metrics.render()
    await caller.close()
    assert _rtc_tasks() == []
