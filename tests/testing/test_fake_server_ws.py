"""The fake OpenAI Realtime server over real WebSockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from openai import AsyncOpenAI
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxengine.testing.fakes.openai import FakeOpenAIConfig, run_fake_openai_server

GA_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
AUTH = {"Authorization": "Bearer sk-test"}
USER_TEXT = {
    "type": "conversation.item.create",
    "item": {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "ping"}],
    },
}


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(5):
        frame = await ws.recv()
    assert isinstance(frame, str)  # text frames only (§1)
    event: dict[str, Any] = json.loads(frame)
    GA_EVENT.validate_python(event)
    return event


async def events_until(ws: ClientConnection, last: str) -> list[dict[str, Any]]:
    events = [await next_event(ws)]
    while events[-1]["type"] != last:
        events.append(await next_event(ws))
    return events


async def test_connect_receives_session_created() -> None:
    async with run_fake_openai_server() as handle:
        assert handle.url == f"ws://127.0.0.1:{handle.port}/v1"
        async with connect(handle.realtime_url("gpt-realtime"), additional_headers=AUTH) as ws:
            event = await next_event(ws)
            assert event["type"] == "session.created"
            assert event["session"]["model"] == "gpt-realtime"
        assert len(handle.connections) == 1


async def test_a_header_sent_twice_is_accepted_and_the_last_value_counts() -> None:
    """Some clients repeat a header (an SDK's own User-Agent beside the default one)."""
    config = FakeOpenAIConfig(api_keys=frozenset({"sk-good"}))
    headers = [
        ("User-Agent", "first"),
        ("User-Agent", "second"),
        ("Authorization", "Bearer sk-bad"),
        ("Authorization", "Bearer sk-good"),
    ]
    async with (
        run_fake_openai_server(config) as handle,
        # no default User-Agent: websockets' own client cannot add one beside two
        connect(handle.realtime_url(), additional_headers=headers, user_agent_header=None) as ws,
    ):
        event = await next_event(ws)
        assert event["type"] == "session.created"


async def test_bad_key_gets_error_then_close_3000() -> None:
    config = FakeOpenAIConfig(api_keys=frozenset({"sk-good"}))
    async with (
        run_fake_openai_server(config) as handle,
        connect(handle.realtime_url(), additional_headers={"Authorization": "Bearer sk-bad"}) as ws,
    ):
        event = await next_event(ws)
        assert event["error"]["code"] == "invalid_api_key"
        with pytest.raises(ConnectionClosed) as closed:
            await next_event(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 3000
        assert closed.value.rcvd.reason == "invalid_request_error.invalid_api_key"


async def test_text_turn_completes() -> None:
    async with (
        run_fake_openai_server() as handle,
        connect(handle.realtime_url(), additional_headers=AUTH) as ws,
    ):
        await next_event(ws)
        await ws.send(json.dumps(USER_TEXT))
        await ws.send(json.dumps({"type": "response.create", "event_id": "r1"}))
        events = await events_until(ws, "rate_limits.updated")
        transcript = "".join(
            e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"
        )
        assert transcript == "You said: ping"
        assert events[-2]["response"]["status"] == "completed"
        received = handle.connections[0].received
        assert [e["type"] for e in received] == ["conversation.item.create", "response.create"]


async def test_paced_response_can_be_cancelled_mid_stream() -> None:
    config = FakeOpenAIConfig(paced=True)
    async with (
        run_fake_openai_server(config, pace_seconds=0.01) as handle,
        connect(handle.realtime_url(), additional_headers=AUTH) as ws,
    ):
        await next_event(ws)
        await ws.send(json.dumps(USER_TEXT))
        await ws.send(json.dumps({"type": "response.create"}))
        await events_until(ws, "response.output_audio.delta")
        await ws.send(json.dumps({"type": "response.cancel"}))
        events = await events_until(ws, "response.done")
        assert events[-1]["response"]["status_details"]["reason"] == "client_cancelled"


async def test_binary_frame_is_rejected_but_connection_stays_open() -> None:
    async with (
        run_fake_openai_server() as handle,
        connect(handle.realtime_url(), additional_headers=AUTH) as ws,
    ):
        await next_event(ws)
        await ws.send(b"\x00\x01")
        assert (await next_event(ws))["error"]["code"] == "invalid_event"
        await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
        assert (await next_event(ws))["type"] == "input_audio_buffer.cleared"


async def test_openai_sdk_text_turn() -> None:
    async with run_fake_openai_server() as handle:
        client = AsyncOpenAI(api_key="sk-test", websocket_base_url=handle.url)
        async with client.realtime.connect(model="gpt-realtime") as connection:
            await connection.session.update(
                session={"type": "realtime", "output_modalities": ["text"]}
            )
            await connection.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "hello sdk"}],
                }
            )
            await connection.response.create()
            text = ""
            async with asyncio.timeout(5):
                async for event in connection:
                    if event.type == "error":
                        pytest.fail(f"server error: {event.error}")
                    if event.type == "response.output_text.delta":
                        text += event.delta
                    if event.type == "response.done":
                        assert event.response.status == "completed"
                        break
        assert text == "You said: hello sdk"
        session_update = handle.connections[0].received[0]
        assert session_update["type"] == "session.update"
