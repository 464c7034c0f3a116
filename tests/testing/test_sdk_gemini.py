"""The fake Gemini Live server driven by the official ``google-genai`` SDK.

``client.aio.live.connect`` talks to the fake on 127.0.0.1 (``http_options``
``base_url``; the SDK always upgrades to ``wss://`` when given an API key, so the fake
serves TLS with a certificate made for the run). The SDK drops fields it does not know when it converts a message, so
every frame the fake sent is also validated strictly, as raw JSON, against
``types.LiveServerMessage`` (extra fields forbidden).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google import genai
from google.genai import types

from voxengine.testing import (
    FakeGeminiConfig,
    FakeGeminiServerHandle,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    default_responder,
    run_fake_gemini_server,
    synthesize_speech,
)

MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
TIMEOUT = 20.0
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"city": types.Schema(type=types.Type.STRING)}
    ),
)


def responder(turn: FakeTurn) -> FakeReply:
    if turn.kind == "text" and "weather" in turn.text:
        return FakeReply(
            tool_calls=(FakeToolCall(name="get_weather", arguments='{"city":"Paris"}'),)
        )
    if turn.kind == "text" and turn.text == "what did I say first?":
        first = next(c for c in turn.history if c["role"] == "user")
        return FakeReply(text=f"You first said {first['parts'][0]['text']}")
    return default_responder(turn)


@pytest.fixture
async def server() -> AsyncIterator[FakeGeminiServerHandle]:
    config = FakeGeminiConfig(responder=responder, record_sent=True)
    async with run_fake_gemini_server(config, tls=True) as handle:
        yield handle
    frames = [frame for fake in handle.connections for frame in fake.sent]
    for frame in frames:  # strict: an unknown field or type fails here
        types.LiveServerMessage.model_validate_json(frame)
    received = sum(len(fake.received) for fake in handle.connections)
    print(f"\ngoogle-genai: client->server {received}, server->client {len(frames)}")


def client_for(handle: FakeGeminiServerHandle) -> genai.Client:
    return genai.Client(
        api_key="sdk-key",
        http_options=types.HttpOptions(
            base_url=f"https://{handle.host}:{handle.port}",
            api_version="v1beta",
            async_client_args={"ssl": handle.ssl_context},
        ),
    )


def audio_config(**extra: Any) -> types.LiveConnectConfig:
    return types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        output_audio_transcription=types.AudioTranscriptionConfig(),
        **extra,
    )


async def one_turn(session: Any) -> list[types.LiveServerMessage]:
    """Messages up to the turn's end (``turnComplete``) or a tool call."""
    messages: list[types.LiveServerMessage] = []

    async def collect() -> None:
        async for message in session.receive():
            messages.append(message)
            content = message.server_content
            if message.tool_call is not None or (content is not None and content.turn_complete):
                return

    await asyncio.wait_for(collect(), TIMEOUT)
    return messages


def said(messages: list[types.LiveServerMessage]) -> str:
    return "".join(
        m.server_content.output_transcription.text or ""
        for m in messages
        if m.server_content is not None and m.server_content.output_transcription is not None
    )


@pytest.mark.parametrize("rate", [16_000, 24_000])
async def test_realtime_audio_with_server_vad_and_transcriptions(
    server: FakeGeminiServerHandle, rate: int
) -> None:
    """The SDK sends URL-safe base64; other rates are resampled like the service does."""
    config = audio_config(input_audio_transcription=types.AudioTranscriptionConfig())
    async with client_for(server).aio.live.connect(model=MODEL, config=config) as session:
        pcm = synthesize_speech("what time is it", sample_rate=rate) + bytes(rate * 2)
        step = rate // 10 * 2
        for start in range(0, len(pcm), step):
            blob = types.Blob(data=pcm[start : start + step], mime_type=f"audio/pcm;rate={rate}")
            await session.send_realtime_input(audio=blob)
        messages = await one_turn(session)
    heard = [
        m.server_content.input_transcription.text
        for m in messages
        if m.server_content is not None and m.server_content.input_transcription is not None
    ]
    assert heard == ["(1.6 s of audio)"]
    assert said(messages) == "I heard 1.6 seconds of audio."
    audio = b"".join(m.data or b"" for m in messages)
    assert len(audio) > 24_000 * 2  # 6 words of 0.3 s at 24 kHz
    assert messages[-1].usage_metadata is not None
    (fake,) = server.connections
    assert fake.close_to_send() is None
    sent = [
        (m.get("realtimeInput") or m.get("realtime_input") or {}).get("audio", {}).get("data", "")
        for m in fake.received[1:]
    ]
    assert any(set(data) & set("-_") for data in sent)  # the URL-safe alphabet was exercised


async def test_realtime_text(server: FakeGeminiServerHandle) -> None:
    async with client_for(server).aio.live.connect(model=MODEL, config=audio_config()) as session:
        await session.send_realtime_input(text="Hello SDK")
        messages = await one_turn(session)
    assert said(messages) == "You said: Hello SDK"


async def test_tool_call_and_send_tool_response(server: FakeGeminiServerHandle) -> None:
    config = audio_config(tools=[types.Tool(function_declarations=[WEATHER])])
    async with client_for(server).aio.live.connect(model=MODEL, config=config) as session:
        await session.send_realtime_input(text="weather in Paris?")
        messages = await one_turn(session)
        assert messages[-1].tool_call is not None
        (call,) = messages[-1].tool_call.function_calls or []
        assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
        await session.send_tool_response(
            function_responses=[
                types.FunctionResponse(id=call.id, name=call.name, response={"result": "sunny"})
            ]
        )
        messages = await one_turn(session)
    assert said(messages) == 'The tool returned {"result": "sunny"}.'


async def test_session_resumption_on_a_new_connection(server: FakeGeminiServerHandle) -> None:
    client = client_for(server)
    config = audio_config(session_resumption=types.SessionResumptionConfig())
    async with client.aio.live.connect(model=MODEL, config=config) as session:
        await session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text="remember apples")]),
            turn_complete=True,
        )
        await one_turn(session)
        update = await asyncio.wait_for(session._receive(), TIMEOUT)
    assert update.session_resumption_update is not None
    assert update.session_resumption_update.resumable
    handle = update.session_resumption_update.new_handle
    assert handle
    resumed = audio_config(session_resumption=types.SessionResumptionConfig(handle=handle))
    async with client.aio.live.connect(model=MODEL, config=resumed) as session:
        await session.send_realtime_input(text="what did I say first?")
        messages = await one_turn(session)
    assert said(messages) == "You first said remember apples"
    first, second = server.connections
    assert second.resumed_from == handle
    user_turns = [c["parts"][0]["text"] for c in second.history if c["role"] == "user"]
    assert user_turns == ["remember apples", "what did I say first?"]
    assert first.resumed_from is None
