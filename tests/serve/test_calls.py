"""Calls over a real socket: uvicorn on 127.0.0.1 serving the app with the mock
provider, the Python client (on the ``websockets`` library) as the browser."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from voxengine import VoiceEngine
from voxengine.events import AudioDelta
from voxengine.serve import CallContext, default_session_factory
from voxengine.serve.client import open_call
from voxengine.testing import synthesize_speech

from .conftest import Served, serve


async def test_a_typed_question_is_answered_with_audio_and_transcripts(served: Served) -> None:
    async with open_call(served.ws, await served.token()) as call:
        assert call.ready["protocol"] == 1
        assert call.ready["output_sample_rate"] == 24000
        assert call.resume_token  # the call can be resumed on another worker (issue 18)
        await call.send_text("hello there")
        done = await call.wait_for("response", lambda m: m["state"] == "done", timeout=20)
        assert done["status"] == "completed"
        finals = [m for m in call.messages if m["type"] == "transcript" and m["final"]]
        assert any(m["role"] == "assistant" and m["text"] for m in finals)
        assert len(call.audio) > 0
        assert len(call.audio) % 2 == 0
        latency = await call.wait_for("latency")
        assert 0 <= latency["first_audio"] < 20
        await call.hang_up()
        assert call.close_code == 1000
        assert call.bye == {"type": "bye", "reason": "normal", "detail": "hang-up"}
    assert served.board.calls == {}


async def test_spoken_question_streamed_in_real_time_gets_a_spoken_reply() -> None:
    """Speech-like audio at 16 kHz: the fake's server VAD ends the turn, the reply
    arrives resampled from the provider's 24 kHz to the 48 kHz the page asked for."""
    provider_audio: list[bytes] = []

    def make_engine(context: CallContext) -> VoiceEngine:
        engine = default_session_factory(context)
        engine.events.on(AudioDelta, lambda event: provider_audio.append(event.audio))
        return engine

    question = synthesize_speech("what time is it", sample_rate=16000)
    async with serve(make_engine=make_engine) as served:
        token = await served.token()
        async with open_call(
            served.ws, token, input_sample_rate=16000, output_sample_rate=48000
        ) as call:
            await call.stream_pcm(question + bytes(32000))  # + 1 s of silence ends the turn
            await call.wait_for("speech", lambda m: m["state"] == "started", timeout=20)
            await call.wait_for("speech", lambda m: m["state"] == "stopped", timeout=20)
            await call.wait_for("response", lambda m: m["state"] == "done", timeout=20)
            await call.hang_up()
        assert served.engines[0].provider.name == "mock"
    provider_seconds = sum(len(a) for a in provider_audio) / 2 / 24000
    assert provider_seconds > 0.5
    assert len(call.audio) / 2 / 48000 == pytest.approx(provider_seconds, abs=0.02)


async def test_two_callers_have_their_own_sessions(served: Served) -> None:
    async with (
        open_call(served.ws, await served.token()) as one,
        open_call(served.ws, await served.token()) as two,
    ):
        assert one.call_id != two.call_id
        await one.send_text("first caller")
        await two.send_text("second caller")
        for call in (one, two):
            await call.wait_for("response", lambda m: m["state"] == "done", timeout=20)
        assert len(served.engines) == 2
        assert served.engines[0] is not served.engines[1]
        assert len(served.board.calls) == 2


async def test_factory_gets_the_call_context_with_metadata() -> None:
    async with serve(instructions="Be brief.") as served:
        token = await served.token(secret="test-deployment-secret-0123456789", subject="user-42")
        async with open_call(served.ws, token, metadata={"plan": "gold"}) as call:
            context = served.contexts[0]
            assert context.call_id == call.call_id
            assert context.endpoint == "browser"
            assert context.caller == "user-42"
            assert dict(context.params) == {"plan": "gold"}
            assert served.engines[0].config.instructions == "Be brief."


async def test_health_readiness_and_metrics(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.http) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"ready": True, "calls": 0}
        async with open_call(served.ws, await served.token()) as call:
            await call.send_text("hi")
            await call.wait_for("response", lambda m: m["state"] == "done", timeout=20)
            assert (await http.get("/readyz")).json()["calls"] == 1
            metrics = (await http.get("/metrics")).text
            assert 'voxengine_calls_total{endpoint="browser"} 1.0' in metrics
            assert "voxengine_calls_active 1.0" in metrics
            assert "voxengine_time_to_first_audio_seconds_count 1.0" in metrics
            await call.hang_up()
        metrics = (await http.get("/metrics")).text
        assert "voxengine_calls_active 0.0" in metrics
        assert 'voxengine_calls_ended_total{reason="normal"} 1.0' in metrics


async def test_the_page_and_its_scripts_are_served(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.http) as http:
        page = await http.get("/")
        assert page.status_code == 200
        assert "<html" in page.text.lower()
        for script in ("app.js", "transport-ws.js", "audio-worklet.js"):
            response = await http.get(f"/static/{script}")
            assert response.status_code == 200, script
            assert "javascript" in response.headers["content-type"]


async def test_per_call_json_logs_carry_the_call_id_and_no_secret(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    import json

    caplog.set_level("INFO", logger="voxengine.serve.calls")
    token = await served.token()
    async with open_call(served.ws, token) as call:
        await call.send_text("hello")
        await call.wait_for("response", lambda m: m["state"] == "done", timeout=20)
        await call.hang_up()
    await asyncio.sleep(0)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name.endswith(".calls")]
    events = [r["event"] for r in records]
    assert events[0] == "call.started"
    assert "call.first_audio" in events
    assert events[-1] == "call.ended"
    assert {r["call_id"] for r in records} == {call.call_id}
    assert token not in caplog.text
    assert "test-deployment-secret" not in caplog.text
