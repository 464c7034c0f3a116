"""Faults against the OpenAI provider over real sockets: every fault recovers (or ends
cleanly) with the typed events the application should see, loses no user audio or tool
result, leaves no unhandled task exception, and never logs the key."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Iterator
from typing import Any

import pytest
import websockets

from voxengine import (
    AudioDelta,
    AudioDropped,
    Event,
    ProviderErrorEvent,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ResponseStatus,
    SessionClosed,
    StallDetected,
    ToolCall,
    TranscriptDone,
    UnknownEvent,
)
from voxengine.audio.format import PCM16_24K
from voxengine.config import (
    ReconnectPolicy,
    SessionConfig,
    TurnDetection,
    TurnDetectionConfig,
    WatchdogPolicy,
)
from voxengine.errors import ConnectionClosed
from voxengine.providers import OpenAIConfig, OpenAIProvider
from voxengine.testing import (
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    Fault,
    FaultAction,
    run_fake_openai_server,
)
from voxengine.transport.websocket import WebSocketConnection

from .conftest import collect_until

KEY = "sk-reliability-secret-777"
FAST_RECONNECT = ReconnectPolicy(initial_delay=0.05, max_delay=0.2, max_attempts=4)


@pytest.fixture(autouse=True)
def _guard(no_task_errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return no_task_errors


@pytest.fixture(autouse=True)
def key_never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert KEY not in caplog.text


def make(handle: FakeOpenAIServerHandle, **kwargs: Any) -> OpenAIProvider:
    kwargs.setdefault("reconnect", FAST_RECONNECT)
    return OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=handle.url, **kwargs))


async def until(provider: OpenAIProvider, *stops: type[Event], timeout: float = 10) -> list[Event]:
    """Collect events until one of each ``stops`` class (in any order) has arrived."""
    return await collect_until(provider.events(), *stops, timeout=timeout)


def received(handle: FakeOpenAIServerHandle, index: int, kind: str) -> list[dict[str, Any]]:
    return [e for e in handle.connections[index].received if e["type"] == kind]


async def test_drop_mid_response_reconnects_restores_and_answers(
    dropping: FakeOpenAIServerHandle,
) -> None:
    provider = make(dropping)
    await provider.connect()
    try:
        await provider.send_text("Tell me about the tides")
        events = await until(provider, Reconnected, timeout=10)
        after = await until(provider, ResponseDone)
    finally:
        await provider.disconnect()
    reconnecting = [e for e in events if isinstance(e, Reconnecting)]
    assert reconnecting
    assert reconnecting[0].attempt == 1
    reconnected = next(e for e in events if isinstance(e, Reconnected))
    assert reconnected.restored_items >= 1
    # the new connection got the conversation back, then a fresh response request
    restored = received(dropping, 1, "conversation.item.create")
    assert restored[0]["item"]["content"][0]["text"] == "Tell me about the tides"
    assert len(received(dropping, 1, "response.create")) == 1
    done = [e for e in after if isinstance(e, ResponseDone)]
    assert done[-1].status is ResponseStatus.COMPLETED
    transcript = [e for e in after if isinstance(e, TranscriptDone)]
    assert transcript[-1].transcript == "You said: Tell me about the tides"


async def test_audio_and_tool_results_sent_while_reconnecting_are_delivered() -> None:
    def responder(turn: FakeTurn) -> FakeReply:
        if turn.kind == "tool_output":
            return FakeReply(text="noted")
        return FakeReply(tool_calls=(FakeToolCall(name="lookup", arguments='{"q": "x"}'),))

    fault = Fault(action=FaultAction.DROP, after="rate_limits.updated")
    async with run_fake_openai_server(FakeOpenAIConfig(responder=responder), faults=(fault,)) as h:
        provider = make(
            h,
            reconnect=ReconnectPolicy(initial_delay=0.3, max_attempts=3),
            session=SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL)),
        )
        await provider.connect()
        try:
            await provider.send_text("look it up")
            events = await until(provider, ToolCall, Reconnecting)
            call = next(e for e in events if isinstance(e, ToolCall))
            # the connection is gone: this audio and the tool result must not be lost
            chunk = bytes(range(256)) * 15  # 3840 bytes = 80 ms
            for _ in range(10):
                await provider.send_audio(chunk)
            await provider.send_tool_result(call.call_id, '{"answer": 42}')
            events = await until(provider, Reconnected, ResponseDone)
        finally:
            await provider.disconnect()
    reconnected = next(e for e in events if isinstance(e, Reconnected))
    assert reconnected.resent_audio == pytest.approx(PCM16_24K.duration(len(chunk) * 10))
    assert reconnected.resent_commands == 2  # the tool output and its response.create
    second = h.connections[1].received
    kinds = [e["type"] for e in second]
    assert kinds.index("conversation.item.create") < kinds.index("input_audio_buffer.append")
    audio = b"".join(
        base64.b64decode(e["audio"]) for e in received(h, 1, "input_audio_buffer.append")
    )
    assert audio == chunk * 10
    created = [e["item"] for e in received(h, 1, "conversation.item.create")]
    assert [i["type"] for i in created] == ["message", "function_call", "function_call_output"]
    assert created[2]["output"] == '{"answer": 42}'
    assert any(isinstance(e, ResponseDone) and e.status is ResponseStatus.COMPLETED for e in events)


async def test_stall_is_detected_and_recovered_within_the_bound() -> None:
    fault = Fault(action=FaultAction.STALL, after="response.output_audio.delta", nth=2)
    async with run_fake_openai_server(
        FakeOpenAIConfig(paced=True), pace_seconds=0.01, faults=(fault,)
    ) as handle:
        provider = make(handle, watchdog=WatchdogPolicy(response_stall=0.3, check_interval=0.05))
        await provider.connect()
        loop = asyncio.get_running_loop()
        try:
            await provider.send_text("Are you there?")
            start = loop.time()
            events = await until(provider, StallDetected, Reconnected)
            detected = loop.time() - start
            after = await until(provider, ResponseDone)
        finally:
            await provider.disconnect()
    stall = next(e for e in events if isinstance(e, StallDetected))
    assert stall.silent_for >= 0.3
    assert detected < 2.0
    assert [e.status for e in after if isinstance(e, ResponseDone)][-1] is ResponseStatus.COMPLETED


async def test_stall_report_only() -> None:
    fault = Fault(action=FaultAction.STALL, after="response.output_audio.delta")
    async with run_fake_openai_server(
        FakeOpenAIConfig(paced=True), pace_seconds=0.01, faults=(fault,)
    ) as handle:
        provider = make(
            handle,
            watchdog=WatchdogPolicy(response_stall=0.2, check_interval=0.05, reconnect=False),
        )
        await provider.connect()
        try:
            await provider.send_text("hello")
            events = await until(provider, StallDetected)
            await asyncio.sleep(0.3)
            assert provider.is_connected
        finally:
            await provider.disconnect()
    assert len(handle.connections) == 1
    assert not any(isinstance(e, Reconnecting) for e in events)


async def test_malformed_and_unknown_frames_are_reported_and_ignored() -> None:
    faults = (
        Fault(action=FaultAction.MALFORMED, after="response.created"),
        Fault(action=FaultAction.UNKNOWN_EVENT, after="response.output_audio.delta"),
    )
    async with run_fake_openai_server(faults=faults) as handle:
        provider = make(handle)
        await provider.connect()
        try:
            await provider.send_text("hi")
            events = await until(provider, ResponseDone)
        finally:
            await provider.disconnect()
    errors = [e for e in events if isinstance(e, ProviderErrorEvent)]
    assert [e.code for e in errors] == ["malformed_frame"]
    assert [e.name for e in events if isinstance(e, UnknownEvent)] == ["response.future_feature"]
    assert events[-1].status is ResponseStatus.COMPLETED  # type: ignore[attr-defined]
    assert len(handle.connections) == 1


@pytest.mark.parametrize("code", ["rate_limit_exceeded", "server_error", "invalid_request"])
async def test_error_events_are_recoverable(code: str) -> None:
    fault = Fault(action=FaultAction.ERROR, after="response.created", error_code=code)
    async with run_fake_openai_server(faults=(fault,)) as handle:
        provider = make(handle)
        await provider.connect()
        try:
            await provider.send_text("hi")
            events = await until(provider, ResponseDone)
            assert provider.is_connected
        finally:
            await provider.disconnect()
    assert [e.code for e in events if isinstance(e, ProviderErrorEvent)] == [code]


async def test_refused_reconnect_is_not_retried_in_a_storm() -> None:
    faults = (
        Fault(action=FaultAction.DROP, after="rate_limits.updated"),
        Fault(action=FaultAction.REFUSE_AUTH, after="session.created", connection=1),
    )
    async with run_fake_openai_server(faults=faults) as handle:
        provider = make(handle, reconnect=ReconnectPolicy(initial_delay=0.05, max_attempts=5))
        await provider.connect()
        try:
            await provider.send_text("hi")
            events = await until(provider, SessionClosed)
            await asyncio.sleep(0.3)
        finally:
            await provider.disconnect()
    assert len(handle.connections) == 2  # one refused attempt, then it gives up
    assert sum(isinstance(e, Reconnecting) for e in events) == 1
    assert isinstance(events[-1], SessionClosed)


async def test_session_cap_carries_the_conversation_over() -> None:
    fault = Fault(action=FaultAction.SESSION_CAP, after="rate_limits.updated")
    async with run_fake_openai_server(faults=(fault,)) as handle:
        provider = make(handle)
        await provider.connect()
        try:
            await provider.send_text("Remember the number 7")
            await until(provider, Reconnected)
            await provider.send_text("Which number?")
            await until(provider, ResponseDone)
        finally:
            await provider.disconnect()
    restored = [e["item"] for e in received(handle, 1, "conversation.item.create")]
    assert [(i["role"], i["content"][0]["text"]) for i in restored[:2]] == [
        ("user", "Remember the number 7"),
        ("assistant", "You said: Remember the number 7"),
    ]
    assert restored[2]["content"][0]["text"] == "Which number?"


async def test_slow_reading_server_loses_no_audio() -> None:
    fault = Fault(action=FaultAction.SLOW_READ, after="session.updated", seconds=0.5)
    async with run_fake_openai_server(faults=(fault,)) as handle:
        provider = make(
            handle,
            session=SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL)),
        )
        await provider.connect()
        chunk = bytes(PCM16_24K.bytes_for(0.02))
        try:
            for _ in range(100):
                await provider.send_audio(chunk)
            await provider.commit_audio()
            await asyncio.sleep(0.8)
        finally:
            await provider.disconnect()
    audio = b"".join(
        base64.b64decode(e["audio"]) for e in received(handle, 0, "input_audio_buffer.append")
    )
    assert len(audio) == len(chunk) * 100
    assert len(received(handle, 0, "input_audio_buffer.commit")) == 1


async def test_slow_consumer_drops_assistant_audio_oldest_first_and_reports_it() -> None:
    async with run_fake_openai_server(FakeOpenAIConfig(audio_chunk_seconds=0.02)) as handle:
        provider = make(handle, event_queue_size=20)
        await provider.connect()
        try:
            await provider.send_text("one two three four five six seven eight nine ten")
            await asyncio.sleep(0.5)  # the application is busy; events pile up
            events = await until(provider, ResponseDone, AudioDropped)
        finally:
            await provider.disconnect()
    dropped = next(e for e in events if isinstance(e, AudioDropped))
    assert dropped.direction == "output"
    assert dropped.seconds > 0
    # nothing but audio was dropped: the full transcript still arrived
    transcript = next(e for e in events if isinstance(e, TranscriptDone))
    assert transcript.transcript.startswith("You said: one two")
    audio = sum(len(e.audio) for e in events if isinstance(e, AudioDelta))
    # What arrived plus what was reported dropped is all of it (12 words x 0.3 s), but
    # for the chunks dropped *after* the report: the report is made when response.done
    # is read, and each later event pushed into the full queue (the report itself,
    # response.done, the frames after it) may drop one more 20 ms chunk, reported at
    # the next response. How many is a matter of timing, so the check is in chunks:
    # never more than all of it, and short by at most a few chunks.
    chunk = 0.02
    total = 0.3 * 12
    accounted = PCM16_24K.duration(audio) + dropped.seconds
    short_by = round((total - accounted) / chunk, 6)
    assert short_by == int(short_by), "whole chunks only"
    assert 0 <= short_by <= 5, f"{accounted:.2f} s of {total:.2f} s accounted for"


# -- failover ----------------------------------------------------------------------------------


async def test_engine_fails_over_and_replays_the_conversation() -> None:
    from voxengine import ProviderSwitched, VoiceEngine, VoiceEngineConfig
    from voxengine.providers import MockConfig, MockProvider

    faults = (
        Fault(action=FaultAction.DROP, after="rate_limits.updated"),
        Fault(action=FaultAction.REFUSE_AUTH, after="session.created", connection=1),
    )
    fallback = MockProvider(MockConfig(replies=("Backup here.",)))
    async with run_fake_openai_server(faults=faults) as handle:
        engine = VoiceEngine(
            VoiceEngineConfig(api_key=KEY, base_url=handle.url, mode="big"),
            fallbacks=[fallback],
        )
        switched: list[ProviderSwitched] = []
        engine.events.on(ProviderSwitched, switched.append)
        async with engine:
            await engine.send_text("My name is Ada")
            event = await engine.events.wait_for(ProviderSwitched, timeout=10)
            assert engine.provider is fallback
            await engine.send_text("What is my name?")
            done = await engine.events.wait_for(
                ResponseDone, timeout=10, filter=lambda e: e.status is ResponseStatus.COMPLETED
            )
    assert event.previous == "openai"
    assert event.current == "mock"
    assert event.restored_items == 2
    assert done.status is ResponseStatus.COMPLETED
    server = fallback.server
    assert server is not None
    texts = [
        (e["item"]["role"], e["item"]["content"][0]["text"])
        for e in server.received
        if e["type"] == "conversation.item.create"
    ]
    assert texts == [
        ("user", "My name is Ada"),
        ("assistant", "You said: My name is Ada"),
        ("user", "What is my name?"),
    ]
    assert engine.history[-1].text == "Backup here."


async def test_without_fallbacks_the_application_sees_the_close() -> None:
    from voxengine import VoiceEngine, VoiceEngineConfig

    faults = (Fault(action=FaultAction.DROP, after="rate_limits.updated"),)
    async with run_fake_openai_server(faults=faults) as handle:
        engine = VoiceEngine(
            VoiceEngineConfig(api_key=KEY, base_url=handle.url),
            provider=make(handle, reconnect=ReconnectPolicy(enabled=False)),
        )
        async with engine:
            await engine.send_text("hello")
            closed = await engine.events.wait_for(SessionClosed, timeout=10)
    assert closed.code is None  # dropped without a close frame


@contextlib.contextmanager
def drop_during_write(monkeypatch: pytest.MonkeyPatch, nth: int) -> Iterator[None]:
    """The connection drops (TCP abort) as the ``nth`` audio frame is handed to the
    backend, which raises its own close when it tries to write it (the backend's error,
    not voxengine's: the session learns of the drop only from the close callback)."""
    write = WebSocketConnection.write_utf8
    calls = 0

    async def after_the_drop(conn: WebSocketConnection, data: bytes) -> None:
        ws = conn._ws
        ws.transport.abort()
        await asyncio.wait({ws.connection_lost_waiter})
        await write(conn, data)

    def dropping(self: WebSocketConnection, data: bytes) -> Awaitable[None]:
        nonlocal calls
        calls += 1
        if calls == nth:
            return after_the_drop(self, data)
        return write(self, data)

    monkeypatch.setattr(WebSocketConnection, "write_utf8", dropping)
    yield


async def test_audio_whose_write_meets_the_drop_is_resent_after_the_reconnect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chunks = [bytes([n]) * 960 for n in range(5)]
    async with run_fake_openai_server() as handle:
        provider = make(
            handle,
            session=SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL)),
        )
        await provider.connect()
        try:
            with drop_during_write(monkeypatch, nth=4):
                for chunk in chunks:
                    await provider.send_audio(chunk)  # the fourth fails: queued, not raised
            events = await until(provider, Reconnected)
        finally:
            await provider.disconnect()
    reconnected = next(e for e in events if isinstance(e, Reconnected))
    assert reconnected.resent_audio == pytest.approx(PCM16_24K.duration(960 * 5))
    audio = b"".join(
        base64.b64decode(e["audio"]) for e in received(handle, 1, "input_audio_buffer.append")
    )
    assert audio == b"".join(chunks)  # the turn so far, then what failed, in order


async def test_without_reconnects_a_write_that_meets_the_drop_raises_the_typed_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with run_fake_openai_server() as handle:
        provider = make(handle, reconnect=ReconnectPolicy(enabled=False))
        await provider.connect()
        try:
            with drop_during_write(monkeypatch, nth=2):
                await provider.send_audio(bytes(960))
                with pytest.raises(ConnectionClosed) as raised:
                    await provider.send_audio(bytes(960))
        finally:
            await provider.disconnect()
    assert isinstance(raised.value.__cause__, websockets.ConnectionClosed)
    assert raised.value.code is None  # dropped: no close frame
