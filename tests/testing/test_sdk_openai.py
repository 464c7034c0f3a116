"""The fake OpenAI Realtime server driven by the official ``openai`` SDK, not by voxengine.

``AsyncOpenAI(base_url=..., api_key=...).realtime.connect(model=...)`` talks to the
fake over ws://127.0.0.1. Every frame the fake sends is validated against the SDK's
typed ``RealtimeServerEvent`` union (strict pydantic validation, not the SDK's lenient
``construct``), so an event type or field shape the SDK does not know fails the test.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from voxengine.testing import (
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    default_responder,
    run_fake_openai_server,
    synthesize_speech,
)

SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
TIMEOUT = 20.0

#: events exchanged per scenario (printed with ``-s``; the figures of the report)
STATS: dict[str, tuple[int, int]] = {}


def weather_responder(turn: FakeTurn) -> FakeReply:
    if turn.kind == "text" and "weather" in turn.text:
        return FakeReply(
            tool_calls=(FakeToolCall(name="get_weather", arguments='{"city":"Paris"}'),)
        )
    if turn.kind == "text" and "story" in turn.text:
        return FakeReply(text=" ".join(["once upon a time"] * 20))
    return default_responder(turn)


class Client:
    """One SDK connection; every received frame is strictly validated and counted."""

    def __init__(self, conn: AsyncRealtimeConnection) -> None:
        self.conn = conn
        self.seen: list[Any] = []

    async def recv(self) -> Any:
        import asyncio

        raw = await asyncio.wait_for(self.conn.recv_bytes(), TIMEOUT)
        event = SERVER_EVENT.validate_json(raw)  # raises on an unknown type or bad field
        assert event.type == json.loads(raw)["type"]
        self.seen.append(event)
        return event

    async def until(self, *kinds: str) -> list[Any]:
        """Receive until every type in ``kinds`` has been seen (in any order)."""
        got: list[Any] = []
        missing = set(kinds)
        while missing:
            event = await self.recv()
            got.append(event)
            missing.discard(event.type)
        return got


def validate_everything_sent(handle: FakeOpenAIServerHandle) -> None:
    """Also the frames the test did not read (e.g. a last ``rate_limits.updated``)."""
    for fake in handle.connections:
        for frame in fake.sent:
            SERVER_EVENT.validate_json(frame)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServerHandle]:
    config = FakeOpenAIConfig(responder=weather_responder, record_sent=True)
    async with run_fake_openai_server(config) as handle:
        yield handle
    validate_everything_sent(handle)


@pytest.fixture
async def slow_server() -> AsyncIterator[FakeOpenAIServerHandle]:
    """Streams one step per 20 ms, so that a response is live long enough to cancel."""
    config = FakeOpenAIConfig(responder=weather_responder, record_sent=True)
    async with run_fake_openai_server(config, pace_seconds=0.02) as handle:
        yield handle
    validate_everything_sent(handle)


def sdk(handle: FakeOpenAIServerHandle) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=f"http://{handle.host}:{handle.port}/v1", api_key="sk-test")


async def session(handle: FakeOpenAIServerHandle, name: str) -> AsyncIterator[Client]:
    async with sdk(handle).realtime.connect(model="gpt-realtime") as conn:
        client = Client(conn)
        assert (await client.recv()).type == "session.created"
        yield client
    received = sum(len(fake.received) for fake in handle.connections)
    sent = sum(len(fake.sent) for fake in handle.connections)
    STATS[name] = (received, sent)
    print(f"\nopenai-sdk {name}: client->server {received}, server->client {sent}")


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


async def test_text_turn(server: FakeOpenAIServerHandle) -> None:
    async for c in session(server, "text turn"):
        await c.conn.session.update(session={"type": "realtime", "output_modalities": ["text"]})
        await c.until("session.updated")
        await c.conn.conversation.item.create(item=user_text("Hello SDK"))  # type: ignore[arg-type]
        await c.conn.response.create()
        events = await c.until("response.done")
        kinds = [e.type for e in events]
        assert kinds[-1] == "response.done"
        assert kinds.index("response.created") < kinds.index("response.output_text.delta")
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == "You said: Hello SDK"
        assert events[-1].response.status == "completed"
        assert (await c.recv()).type == "rate_limits.updated"


async def test_audio_turn_with_server_vad_and_async_transcription(
    server: FakeOpenAIServerHandle,
) -> None:
    async for c in session(server, "audio turn, server VAD"):
        await c.conn.session.update(
            session={
                "type": "realtime",
                "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
            }
        )
        await c.until("session.updated")
        pcm = synthesize_speech("what time is it", sample_rate=24_000) + bytes(24_000 * 2)
        for start in range(0, len(pcm), 4800):  # 100 ms chunks
            chunk = base64.b64encode(pcm[start : start + 4800]).decode()
            await c.conn.input_audio_buffer.append(audio=chunk)
        events = await c.until(
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.input_audio_transcription.completed",
            "response.done",
        )
        kinds = [e.type for e in events]
        assert kinds.index("input_audio_buffer.committed") < kinds.index("response.created")
        done = next(e for e in events if e.type == "response.done")
        assert done.response.status == "completed"
        audio = b"".join(
            base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"
        )
        assert len(audio) > 24_000  # "I heard 1.6 seconds of audio." is 6 words of 0.3 s
        (transcript,) = [
            e for e in events if e.type == "conversation.item.input_audio_transcription.completed"
        ]
        assert transcript.transcript.endswith("s of audio)")


async def test_function_call_round_trip(server: FakeOpenAIServerHandle) -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    async for c in session(server, "function call round trip"):
        await c.conn.session.update(
            session={"type": "realtime", "output_modalities": ["text"], "tools": [tool]}  # type: ignore[list-item]
        )
        await c.until("session.updated")
        await c.conn.conversation.item.create(item=user_text("weather in Paris?"))  # type: ignore[arg-type]
        await c.conn.response.create()
        events = await c.until("response.done")
        (call,) = [e for e in events if e.type == "response.function_call_arguments.done"]
        assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
        assert events[-1].response.output[0].type == "function_call"
        await c.conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call.call_id, "output": '"sunny"'}
        )
        await c.conn.response.create()
        events = await c.until("response.done")
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == 'The tool returned "sunny".'


async def test_cancel_mid_response_and_one_active_response(
    slow_server: FakeOpenAIServerHandle,
) -> None:
    async for c in session(slow_server, "cancel mid-response"):
        await c.conn.response.cancel(event_id="c0")
        (error,) = await c.until("error")
        assert (error.error.code, error.error.event_id) == ("response_cancel_not_active", "c0")
        await c.conn.conversation.item.create(item=user_text("tell me a story"))  # type: ignore[arg-type]
        await c.conn.response.create()
        await c.until("response.output_audio.delta")  # the response is live
        await c.conn.response.create(event_id="second")
        events = await c.until("error")
        refused = events[-1].error
        assert refused.code == "conversation_already_has_active_response"
        assert refused.event_id == "second"
        await c.conn.response.cancel()
        events = await c.until("response.done")
        done = events[-1].response
        assert done.status == "cancelled"
        assert done.status_details.reason == "client_cancelled"
        assert done.output[0].status == "incomplete"
        assert not any(e.type == "error" for e in events)


async def test_truncate_delete_and_retrieve(server: FakeOpenAIServerHandle) -> None:
    async for c in session(server, "truncate and delete"):
        await c.conn.conversation.item.create(item=user_text("Hello"))  # type: ignore[arg-type]
        added = (await c.until("conversation.item.added"))[-1]
        await c.conn.response.create()
        events = await c.until("response.done")
        assistant = events[-1].response.output[0]
        await c.conn.conversation.item.truncate(
            item_id=assistant.id, content_index=0, audio_end_ms=300
        )
        truncated = (await c.until("conversation.item.truncated"))[-1]
        assert (truncated.item_id, truncated.audio_end_ms) == (assistant.id, 300)
        await c.conn.conversation.item.retrieve(item_id=assistant.id)
        retrieved = (await c.until("conversation.item.retrieved"))[-1]
        assert retrieved.item.content[0].transcript == "You"
        await c.conn.conversation.item.truncate(
            item_id=assistant.id, content_index=0, audio_end_ms=99_999
        )
        error = (await c.until("error"))[-1].error
        assert error.param == "audio_end_ms"
        await c.conn.conversation.item.delete(item_id=added.item.id)
        deleted = (await c.until("conversation.item.deleted"))[-1]
        assert deleted.item_id == added.item.id
        await c.conn.conversation.item.delete(item_id=added.item.id, event_id="again")
        error = (await c.until("error"))[-1].error
        assert (error.code, error.event_id) == ("invalid_value", "again")


@pytest.mark.parametrize(
    ("event", "code", "param"),
    [
        ({"type": "no.such.event"}, "invalid_value", "type"),
        (
            {"type": "response.create", "response": {"output_modalities": ["smell"]}},
            "invalid_value",
            None,
        ),
        ({"type": "input_audio_buffer.append", "audio": "@@@"}, "invalid_value", "audio"),
        ({"type": "input_audio_buffer.commit"}, "input_audio_buffer_commit_empty", None),
        (
            {
                "type": "conversation.item.truncate",
                "item_id": "nope",
                "content_index": 0,
                "audio_end_ms": 1,
            },
            "invalid_value",
            "item_id",
        ),
    ],
)
async def test_invalid_events_get_the_real_errors_and_keep_the_session(
    server: FakeOpenAIServerHandle, event: dict[str, Any], code: str, param: str | None
) -> None:
    async for c in session(server, f"invalid {event['type']}"):
        await c.conn.send({**event, "event_id": "bad1"})  # type: ignore[arg-type]
        error = (await c.until("error"))[-1].error
        assert error.code == code
        assert error.event_id == "bad1"
        if param is not None:
            assert error.param == param
        await c.conn.conversation.item.create(item=user_text("still there?"))  # type: ignore[arg-type]
        await c.until("conversation.item.done")
