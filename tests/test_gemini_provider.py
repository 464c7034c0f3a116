"""GeminiProvider against the fake Gemini Live server over real sockets.

Everything the provider sends is validated against ``google-genai``'s typed models
(gemini-live.md §10), as received by the fake.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from google.genai import types
from websockets.asyncio.client import connect

from voxengine.config import Modality, SessionConfig, ToolSpec, TurnDetection, TurnDetectionConfig
from voxengine.errors import AudioError, AuthenticationFailed, ConfigError, ProviderError
from voxengine.events import (
    AudioDelta,
    Event,
    Interrupted,
    ResponseDone,
    ResponseStatus,
    ResumptionUpdate,
    Role,
    SessionReady,
    SpeechStarted,
    TextDelta,
    ToolCall,
    ToolCallCancelled,
    TranscriptDone,
)
from voxengine.providers.base import Capability
from voxengine.providers.gemini import (
    DEFAULT_GEMINI_MODEL,
    GeminiConfig,
    GeminiProvider,
    live_url,
)
from voxengine.testing import (
    FakeReply,
    FakeToolCall,
    FakeTurn,
    default_responder,
    synthesize_speech,
)
from voxengine.testing.fakes.gemini import (
    FakeGeminiConfig,
    FakeGeminiServer,
    FakeGeminiServerHandle,
    run_fake_gemini_server,
)
from voxengine.transport import Connection, Connector
from voxengine.transport.websocket import WebSocketConnection, redacting_logger

from .conftest import collect_until as collect_events

KEY = "AIza-test-secret-key-123"
NO_RECONNECT: dict[str, Any] = {}


def assert_valid_client_messages(server: FakeGeminiServer) -> None:
    """§10: each message the provider sent validates as LiveClientMessage."""
    assert server.received
    for msg in server.received:
        msg = json.loads(json.dumps(msg))
        setup = msg.get("setup")
        if setup is not None and "realtimeInputConfig" in setup:
            types.RealtimeInputConfig.model_validate(setup.pop("realtimeInputConfig"))
        types.LiveClientMessage.model_validate(msg)


def provider_for(handle: FakeGeminiServerHandle, **kwargs: Any) -> GeminiProvider:
    return GeminiProvider(GeminiConfig(api_key=KEY, base_url=handle.url, **kwargs))


async def collect_until(
    provider: GeminiProvider, stop: type[Event], count: int = 1, timeout: float = 10
) -> list[Event]:
    return await collect_events(provider.events(), stop, count=count, timeout=timeout)


def weather_responder(turn: FakeTurn) -> FakeReply:
    if turn.kind == "text" and "weather" in turn.text:
        return FakeReply(
            text="Let me check.",
            tool_calls=(FakeToolCall(name="get_weather", arguments='{"city":"Paris"}'),),
        )
    return default_responder(turn)


WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeGeminiServerHandle]:
    async with run_fake_gemini_server(FakeGeminiConfig(responder=weather_responder)) as handle:
        yield handle


@pytest.fixture
async def paced() -> AsyncIterator[FakeGeminiServerHandle]:
    async with run_fake_gemini_server(
        FakeGeminiConfig(responder=weather_responder, paced=True), pace_seconds=0.02
    ) as handle:
        yield handle


def test_config_defaults_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="GEMINI_API_KEY"):
        GeminiProvider(GeminiConfig())
    monkeypatch.setenv("GOOGLE_API_KEY", "from-google-env")
    provider = GeminiProvider()
    assert provider.model == DEFAULT_GEMINI_MODEL
    assert provider.name == "gemini"
    assert provider.input_format.sample_rate == 16_000
    assert provider.output_format.sample_rate == 24_000
    request = provider.make_protocol().connect_request()
    assert request.url == live_url("wss://generativelanguage.googleapis.com", "v1beta")
    assert request.headers == {"x-goog-api-key": "from-google-env"}
    monkeypatch.setenv("GEMINI_API_KEY", "from-gemini-env")
    assert (
        GeminiProvider().make_protocol().connect_request().headers["x-goog-api-key"]
        == "from-gemini-env"
    )
    with pytest.raises(ConfigError):
        GeminiConfig(api_version="v2")
    with pytest.raises(ConfigError):
        GeminiProvider(GeminiConfig(api_key="k", base_url="ftp://x"))
    with pytest.raises(ConfigError):  # no semantic VAD in Gemini Live: refused before any I/O
        GeminiProvider(
            GeminiConfig(
                api_key="k",
                session=SessionConfig(
                    turn_detection=TurnDetectionConfig(mode=TurnDetection.SEMANTIC_VAD)
                ),
            )
        )
    caps = GeminiProvider.capabilities
    for missing in (
        Capability.INTERRUPTION,
        Capability.TRUNCATION,
        Capability.SESSION_UPDATE,
        Capability.ITEM_DELETION,
        Capability.SEMANTIC_VAD,
    ):
        assert missing not in caps


def test_keys_never_in_repr_or_query_logs(caplog: pytest.LogCaptureFixture) -> None:
    provider = GeminiProvider(
        GeminiConfig(api_key=KEY, key_in="query", resumption_handle="secret-handle")
    )
    request = provider.make_protocol().connect_request()
    assert f"key={KEY}" in request.url
    shown = repr(provider) + repr(provider.config) + repr(request)
    assert KEY not in shown
    assert "secret-handle" not in shown


async def test_text_turn(fake: FakeGeminiServerHandle) -> None:
    provider = provider_for(fake, session=SessionConfig(voice="Kore", instructions="Be brief."))
    await provider.connect()
    try:
        ready = await collect_until(provider, SessionReady)
        assert ready[-1] == SessionReady(session_id="", model=DEFAULT_GEMINI_MODEL)
        await provider.send_text("Hello!")
        events = await collect_until(provider, ResponseDone)
        transcript = [
            e for e in events if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT
        ]
        assert transcript[0].transcript == "You said: Hello!"
        audio = b"".join(e.audio for e in events if isinstance(e, AudioDelta))
        assert len(audio) >= 2 * 24_000 * 0.9  # ~3 words x 0.3 s of 24 kHz PCM16
        done = events[-1]
        assert isinstance(done, ResponseDone)
        assert done.status is ResponseStatus.COMPLETED
        assert done.usage is not None
        assert done.usage.output_audio_tokens > 0
        (server,) = fake.connections
        setup = server.received[0]["setup"]
        assert (
            setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"][
                "voiceName"
            ]
            == "Kore"
        )
        assert server.received[1] == {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "Hello!"}]}],
                "turnComplete": True,
            }
        }
        await provider.send_text("just context", respond=False)
        await provider.add_message("system note")
        await provider.create_response()
        await collect_until(provider, ResponseDone)
        assert [m["clientContent"]["turnComplete"] for m in server.received[2:]] == [
            False,
            False,
            True,
        ]
        assert_valid_client_messages(server)
    finally:
        await provider.disconnect()


async def test_text_modality_over_binary_frames(fake: FakeGeminiServerHandle) -> None:
    provider = provider_for(
        fake, model="gemini-2.0-flash-live-001", session=SessionConfig(modalities=(Modality.TEXT,))
    )
    await provider.connect()
    try:
        await provider.send_text("ping")
        events = await collect_until(provider, ResponseDone)
        assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == "You said: ping"
    finally:
        await provider.disconnect()


async def test_audio_turn_with_server_vad_at_16khz(fake: FakeGeminiServerHandle) -> None:
    provider = provider_for(fake, session=SessionConfig(input_transcription_model="default"))
    await provider.connect()
    try:
        with pytest.raises(AudioError, match="16000 Hz"):
            await provider.send_audio(bytes(960), sample_rate=24_000)
        speech = synthesize_speech("what time is it", sample_rate=16_000)
        silence = bytes(32_000)
        for pcm in (speech, silence):
            for i in range(0, len(pcm), 640):  # 20 ms chunks
                await provider.send_audio(pcm[i : i + 640], sample_rate=16_000)
        events = await collect_until(provider, TranscriptDone, count=2)
        user = [e for e in events if isinstance(e, TranscriptDone) and e.role is Role.USER]
        assert user[0].transcript == "(1.6 s of audio)"
        assert any(isinstance(e, AudioDelta) for e in events)
        (server,) = fake.connections
        assert all(
            m["realtimeInput"]["audio"]["mimeType"] == "audio/pcm;rate=16000"
            for m in server.received[1:]
        )
        assert_valid_client_messages(server)
    finally:
        await provider.disconnect()


async def test_manual_activity_turn(fake: FakeGeminiServerHandle) -> None:
    provider = provider_for(
        fake, session=SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL))
    )
    await provider.connect()
    try:
        speech = synthesize_speech("hello there", sample_rate=16_000)
        for i in range(0, len(speech), 3200):
            await provider.send_audio(speech[i : i + 3200])
        await provider.commit_audio()
        await provider.create_response()  # no-op: activityEnd already asked for the answer
        events = await collect_until(provider, ResponseDone)
        assert "I heard 0.6 seconds of audio." in [
            e.transcript for e in events if isinstance(e, TranscriptDone)
        ]
        (server,) = fake.connections
        kinds = [next(iter(m.get("realtimeInput", {"other": 0}))) for m in server.received[1:]]
        assert kinds[0] == "activityStart"
        assert kinds[-1] == "activityEnd"
        assert set(kinds[1:-1]) == {"audio"}
        assert_valid_client_messages(server)
    finally:
        await provider.disconnect()


async def test_tool_round_trip(fake: FakeGeminiServerHandle) -> None:
    provider = provider_for(fake, session=SessionConfig(tools=(WEATHER,)))
    await provider.connect()
    try:
        await provider.send_text("weather in Paris?")
        events = await collect_until(provider, ResponseDone)
        (call,) = [e for e in events if isinstance(e, ToolCall)]
        assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
        await provider.send_tool_result(call.call_id, json.dumps({"temp_c": 18}))
        events = await collect_until(provider, ResponseDone)
        final = [e.transcript for e in events if isinstance(e, TranscriptDone)]
        assert final == ['The tool returned {"temp_c": 18}.']
        (server,) = fake.connections
        assert server.received[-1] == {
            "toolResponse": {
                "functionResponses": [
                    {"id": call.call_id, "name": "get_weather", "response": {"temp_c": 18}}
                ]
            }
        }
        assert_valid_client_messages(server)
    finally:
        await provider.disconnect()


async def test_barge_in_cancels_the_pending_call(paced: FakeGeminiServerHandle) -> None:
    provider = provider_for(paced, session=SessionConfig(tools=(WEATHER,)))
    await provider.connect()
    try:
        await provider.send_text("weather in Paris?")
        events = await collect_until(provider, ToolCall)
        call = events[-1]
        assert isinstance(call, ToolCall)
        await provider.send_audio(synthesize_speech("never mind", sample_rate=16_000))
        events = await collect_until(provider, ToolCallCancelled)
        assert events[-1] == ToolCallCancelled(call_ids=(call.call_id,))
    finally:
        await provider.disconnect()


async def test_server_interruption_by_speech(paced: FakeGeminiServerHandle) -> None:
    provider = provider_for(paced)
    await provider.connect()
    try:
        await provider.send_text("tell me a very long story about many things")
        await collect_until(provider, AudioDelta, count=3)
        await provider.send_audio(synthesize_speech("stop", sample_rate=16_000))
        events = await collect_until(provider, ResponseDone)
        kinds = [type(e) for e in events]
        assert kinds.index(SpeechStarted) < kinds.index(ResponseDone)
        done = events[-1]
        assert isinstance(done, ResponseDone)
        assert (done.status, done.reason) == (ResponseStatus.CANCELLED, "interrupted")
    finally:
        await provider.disconnect()


async def test_local_interrupt_drops_the_rest_of_the_turn(paced: FakeGeminiServerHandle) -> None:
    provider = provider_for(paced)
    await provider.connect()
    try:
        await provider.send_text("tell me a very long story about many things")
        await collect_until(provider, AudioDelta, count=2)
        interrupted = await provider.interrupt(1.0)
        assert interrupted.played is None  # nothing was truncated on the server
        events = await collect_until(provider, ResponseDone)
        assert isinstance(events[0], AudioDelta | Interrupted)
        assert Interrupted(item_id="gemini-item-1", played=None) in events
        after = events[events.index(Interrupted(item_id="gemini-item-1", played=None)) :]
        assert not any(isinstance(e, AudioDelta) for e in after)
        done = events[-1]
        assert isinstance(done, ResponseDone)
        assert (done.status, done.reason) == (ResponseStatus.CANCELLED, "client_interrupted")
        (server,) = paced.connections
        assert len(server.received) == 2  # setup + the text turn: no cancel on the wire
        with pytest.raises(ConfigError):
            await provider.truncate("gemini-item-1", 1.0)
        with pytest.raises(ConfigError):
            await provider.delete_item("gemini-item-1")
        with pytest.raises(ConfigError):
            await provider.update_session(SessionConfig(voice="Puck"))
        with pytest.raises(ConfigError):
            await provider.clear_audio()
        await provider.cancel_response()  # nothing running: no-op
    finally:
        await provider.disconnect()


async def test_second_connect_resumes_by_handle(fake: FakeGeminiServerHandle) -> None:
    provider = provider_for(fake)
    await provider.connect()
    await provider.send_text("remember 42")
    events = await collect_until(provider, ResumptionUpdate)
    handle = events[-1]
    assert isinstance(handle, ResumptionUpdate)
    assert provider.resumption_handle == handle.handle
    await provider.disconnect()
    await provider.connect()
    try:
        first, second = fake.connections
        assert second.received[0]["setup"]["sessionResumption"] == {"handle": handle.handle}
        assert second.resumed_from == handle.handle
        assert second.history == first.history
    finally:
        await provider.disconnect()


async def test_bad_key_fails_without_retry() -> None:
    async with run_fake_gemini_server(FakeGeminiConfig(api_keys=frozenset({"right"}))) as handle:
        provider = provider_for(handle)
        with pytest.raises(AuthenticationFailed):
            await provider.connect(retry_count=3)
        assert len(handle.connections) == 1


async def test_unknown_model_is_a_provider_error() -> None:
    async with run_fake_gemini_server() as handle:
        provider = provider_for(handle, model="gemini-unknown")
        with pytest.raises(ProviderError) as info:
            await provider.connect(retry_count=2)
        assert info.value.code == "not_found"
        assert len(handle.connections) == 1


def tls_connector(context: ssl.SSLContext) -> Connector:
    """A test connector that trusts the fake's certificate (see the report on transport)."""

    async def open_tls(url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        ws = await connect(
            url,
            additional_headers=dict(headers),
            ssl=context,
            open_timeout=timeout,
            logger=redacting_logger("tests.gemini.tls"),
        )
        return WebSocketConnection(ws)

    return open_tls


async def test_tls_fake_with_the_handle_context(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with run_fake_gemini_server(tls=True) as handle:
        assert handle.ssl_context is not None
        provider = GeminiProvider(
            GeminiConfig(api_key=KEY, base_url=handle.url, key_in="query"),
            connector=tls_connector(handle.ssl_context),
        )
        await provider.connect()
        try:
            await provider.send_text("over TLS")
            events = await collect_until(provider, ResponseDone)
            assert any(isinstance(e, AudioDelta) for e in events)
        finally:
            await provider.disconnect()
        assert KEY not in caplog.text


@pytest.mark.live
async def test_live_gemini_text_turn() -> None:
    if not (os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")):
        pytest.skip("needs GEMINI_API_KEY")
    provider = GeminiProvider(
        GeminiConfig(session=SessionConfig(instructions="Answer in three words."))
    )
    await provider.connect()
    try:
        await provider.send_text("Say hello.")
        events = await collect_until(provider, ResponseDone, timeout=60)
        done = events[-1]
        assert isinstance(done, ResponseDone)
        assert done.status is ResponseStatus.COMPLETED
        assert any(isinstance(e, AudioDelta) for e in events)
    finally:
        await provider.disconnect()
