"""OpenAIProvider and AzureOpenAIProvider against the fake server over real sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from voxengine.config import ReconnectPolicy, SessionConfig, TurnDetection, TurnDetectionConfig
from voxengine.errors import (
    AudioError,
    AuthenticationFailed,
    ConfigError,
    ConnectFailed,
    InvalidState,
    ProviderError,
    SessionExpired,
)
from voxengine.events import (
    AudioDelta,
    Event,
    InputCommitted,
    ItemTruncated,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStatus,
    Role,
    SessionClosed,
    SessionReady,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    TranscriptDone,
)
from voxengine.providers import (
    AzureOpenAIConfig,
    AzureOpenAIProvider,
    OpenAIConfig,
    OpenAIProvider,
)
from voxengine.testing import (
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    run_fake_openai_server,
    synthesize_speech,
)

from .conftest import assert_valid_client_events
from .conftest import collect_until as collect_events

KEY = "sk-test-secret-key-123"


def provider_for(handle: FakeOpenAIServerHandle, **kwargs: Any) -> OpenAIProvider:
    return OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=handle.url, **kwargs))


async def collect_until(
    provider: OpenAIProvider, stop: type[Event], count: int = 1, timeout: float = 10
) -> list[Event]:
    return await collect_events(provider.events(), stop, count=count, timeout=timeout)


@pytest.fixture
async def connected(fake_openai: FakeOpenAIServerHandle) -> AsyncIterator[OpenAIProvider]:
    provider = provider_for(fake_openai, session=SessionConfig(voice="marin", instructions="Hi"))
    await provider.connect()
    yield provider
    await provider.disconnect()


async def test_connect_configures_the_session(
    connected: OpenAIProvider, fake_openai: FakeOpenAIServerHandle
) -> None:
    assert connected.is_connected
    first = await collect_until(connected, SessionReady)
    assert isinstance(first[0], SessionReady)
    assert first[0].model == "gpt-realtime"
    (server,) = fake_openai.connections
    update = server.received[0]
    assert update["type"] == "session.update"
    assert update["session"]["audio"]["output"]["voice"] == "marin"
    assert server.session["instructions"] == "Hi"


async def test_text_turn_gives_text_audio_and_usage(
    connected: OpenAIProvider, fake_openai: FakeOpenAIServerHandle
) -> None:
    await connected.send_text("Hello!")
    events = await collect_until(connected, ResponseDone)
    transcript = [e for e in events if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT]
    assert transcript[0].transcript == "You said: Hello!"
    audio = b"".join(e.audio for e in events if isinstance(e, AudioDelta))
    assert len(audio) > 24_000  # at least half a second of 24 kHz PCM16
    assert len(audio) % 2 == 0
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.status is ResponseStatus.COMPLETED
    assert done.usage is not None
    assert done.usage.output_audio_tokens > 0
    assert_valid_client_events(fake_openai.connections[0].received)


async def test_audio_turn_with_server_vad(
    connected: OpenAIProvider, fake_openai: FakeOpenAIServerHandle
) -> None:
    speech = synthesize_speech("what time is it")
    silence = bytes(48_000)  # 1 s
    chunk = 960  # 20 ms
    for audio in (speech, silence):
        for i in range(0, len(audio), chunk):
            await connected.send_audio(audio[i : i + chunk], sample_rate=24_000)
    events = await collect_until(connected, ResponseDone)
    kinds = [type(e) for e in events]
    assert kinds.index(SpeechStarted) < kinds.index(SpeechStopped) < kinds.index(InputCommitted)
    assert any(isinstance(e, AudioDelta) for e in events)
    appended = [
        e for e in fake_openai.connections[0].received if e["type"] == "input_audio_buffer.append"
    ]
    assert len(appended) == (len(speech) + len(silence)) // chunk


async def test_manual_turn_commit_and_respond(fake_openai: FakeOpenAIServerHandle) -> None:
    provider = provider_for(
        fake_openai,
        session=SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL)),
    )
    await provider.connect()
    try:
        await provider.send_audio(synthesize_speech("hello there"))
        await provider.commit_audio()
        await provider.create_response()
        events = await collect_until(provider, ResponseDone)
        assert not any(isinstance(e, SpeechStarted) for e in events)
        assert any(isinstance(e, InputCommitted) for e in events)
        assert isinstance(events[-1], ResponseDone)
    finally:
        await provider.disconnect()


async def test_function_call_round_trip() -> None:
    def responder(turn: FakeTurn) -> FakeReply:
        if turn.kind == "tool_output":
            return FakeReply(text=f"It is {json.loads(turn.text)['temp_c']} degrees.")
        return FakeReply(
            tool_calls=(FakeToolCall(name="get_weather", arguments='{"city":"Paris"}'),)
        )

    async with run_fake_openai_server(FakeOpenAIConfig(responder=responder)) as handle:
        provider = provider_for(handle)
        await provider.connect()
        try:
            await provider.send_text("Weather in Paris?")
            events = await collect_until(provider, ResponseDone)
            (call,) = [e for e in events if isinstance(e, ToolCall)]
            assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
            await provider.send_tool_result(call.call_id, '{"temp_c": 18}')
            events = await collect_until(provider, ResponseDone)
            texts = [e.transcript for e in events if isinstance(e, TranscriptDone)]
            assert texts == ["It is 18 degrees."]
            outputs = [
                e["item"]
                for e in handle.connections[0].received
                if e["type"] == "conversation.item.create"
                and e["item"]["type"] == "function_call_output"
            ]
            assert outputs == [
                {
                    "type": "function_call_output",
                    "call_id": call.call_id,
                    "output": '{"temp_c": 18}',
                }
            ]
        finally:
            await provider.disconnect()


async def test_interrupt_cancels_and_truncates_at_played_position(
    paced_openai: FakeOpenAIServerHandle,
) -> None:
    provider = provider_for(paced_openai)
    await provider.connect()
    try:
        await provider.send_text("Tell me a long story about the sea and the sky")
        events = await collect_until(provider, AudioDelta, count=2)
        item_id = next(e.item_id for e in events if isinstance(e, AudioDelta))
        interrupted = await provider.interrupt(played=0.15)
        assert interrupted.item_id == item_id
        assert interrupted.played == pytest.approx(0.15)
        events = await collect_until(provider, ItemTruncated)
        done = [e for e in events if isinstance(e, ResponseDone)]
        assert done[0].status is ResponseStatus.CANCELLED
        assert done[0].reason == "client_cancelled"
        truncate = [
            e
            for e in paced_openai.connections[0].received
            if e["type"] == "conversation.item.truncate"
        ]
        assert truncate[0]["item_id"] == item_id
        assert truncate[0]["audio_end_ms"] == 150
    finally:
        await provider.disconnect()


async def test_interrupt_clamps_to_audio_received(paced_openai: FakeOpenAIServerHandle) -> None:
    provider = provider_for(paced_openai)
    await provider.connect()
    try:
        await provider.send_text("One two three four five six seven")
        await collect_until(provider, AudioDelta, count=1)
        interrupted = await provider.interrupt(played=60.0)
        assert interrupted.played is not None
        assert 0 < interrupted.played < 60.0
        events = await collect_until(provider, ItemTruncated)
        assert next(e for e in events if isinstance(e, ItemTruncated)).audio_end == pytest.approx(
            interrupted.played, abs=0.001
        )
    finally:
        await provider.disconnect()


async def test_update_session_mid_session(
    connected: OpenAIProvider, fake_openai: FakeOpenAIServerHandle
) -> None:
    await collect_until(connected, SessionReady)
    await connected.update_session(SessionConfig(instructions="Speak like a pirate."))
    await collect_until(connected, SessionUpdated)
    assert fake_openai.connections[0].session["instructions"] == "Speak like a pirate."


async def test_recoverable_error_is_an_event(connected: OpenAIProvider) -> None:
    await collect_until(connected, SessionReady)
    await connected.commit_audio()  # nothing buffered: input_audio_buffer_commit_empty
    events = await collect_until(connected, ProviderErrorEvent)
    assert events[-1].code == "input_audio_buffer_commit_empty"  # type: ignore[attr-defined]
    assert connected.is_connected


# -- failures ------------------------------------------------------------------------


async def test_bad_key_is_authentication_failed_without_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with run_fake_openai_server(FakeOpenAIConfig(api_keys=frozenset({"sk-good"}))) as handle:
        provider = provider_for(handle)
        with pytest.raises(AuthenticationFailed):
            await provider.connect(retry_count=3)
        assert len(handle.connections) == 1  # never retried
    assert KEY not in caplog.text
    assert KEY not in repr(provider)
    assert KEY not in repr(provider.config)


async def test_unknown_model_is_provider_error(fake_openai: FakeOpenAIServerHandle) -> None:
    provider = provider_for(fake_openai, model="gpt-nonexistent")
    with pytest.raises(ProviderError) as info:
        await provider.connect()
    assert info.value.code == "invalid_model"
    assert len(fake_openai.connections) == 1


async def test_connect_failure_retries_with_backoff() -> None:
    attempts = 0

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        provider = OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=f"ws://127.0.0.1:{port}/v1"))
        provider.retry_backoff = 0.01
        with pytest.raises(ConnectFailed):
            await provider.connect(retry_count=2)
    assert attempts == 3


async def test_nothing_listening(unused_tcp_port: int) -> None:
    provider = OpenAIProvider(
        OpenAIConfig(api_key=KEY, base_url=f"ws://127.0.0.1:{unused_tcp_port}/v1")
    )
    with pytest.raises(ConnectFailed):
        await provider.connect(retry_count=0)


@pytest.fixture
def unused_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_bad_input_is_rejected_before_any_io(
    connected: OpenAIProvider, fake_openai: FakeOpenAIServerHandle
) -> None:
    await collect_until(connected, SessionReady)
    before = len(fake_openai.connections[0].received)
    with pytest.raises(AudioError, match="got str"):
        await connected.send_audio("not audio")  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="whole number"):
        await connected.send_audio(b"\x00\x01\x02")
    with pytest.raises(AudioError, match="24000 Hz"):
        await connected.send_audio(b"\x00\x00", sample_rate=16_000)
    with pytest.raises(ConfigError):
        await connected.send_text("")
    await asyncio.sleep(0.05)
    assert len(fake_openai.connections[0].received) == before


async def test_send_before_connect_and_after_disconnect(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    provider = provider_for(fake_openai)
    with pytest.raises(InvalidState, match="connect"):
        await provider.send_text("hi")
    await provider.connect()
    await provider.disconnect()
    with pytest.raises(InvalidState):
        await provider.send_text("hi")


def test_missing_key_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIProvider(OpenAIConfig())
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIProvider(OpenAIConfig(api_key=KEY, base_url="ftp://example.com"))


async def test_server_close_ends_the_stream_without_reconnect(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    provider = provider_for(fake_openai, reconnect=ReconnectPolicy(enabled=False))
    await provider.connect()
    await collect_until(provider, SessionReady)
    fake_openai.connections[0].expire_session()
    await provider.send_text("trigger a flush")
    events = await collect_until(provider, SessionClosed)
    assert events[-1].code == 1001  # type: ignore[attr-defined]
    assert not provider.is_connected
    assert isinstance(provider.session.failure(), SessionExpired)
    with pytest.raises(InvalidState):
        await provider.send_text("too late")


async def test_a_bug_decoding_a_pushed_frame_ends_the_session_with_its_reason(
    fake_openai: FakeOpenAIServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    """Frames are decoded in the socket's read callback; a bug there ends the session
    (reported; the connection is closed, SessionClosed comes after the close) instead
    of escaping into ``websockets``."""
    provider = provider_for(fake_openai, reconnect=ReconnectPolicy(enabled=False))
    await provider.connect()
    await collect_until(provider, SessionReady)
    protocol = provider.session.protocol

    def broken(data: str | bytes) -> None:
        raise RuntimeError("decoder bug")

    # both ways in: the general one and the audio hot path (HotPath.receive_audio)
    protocol.receive_message = broken  # type: ignore[method-assign]
    protocol.receive_audio = broken  # type: ignore[attr-defined]
    await provider.send_text("hello")
    events = await collect_until(provider, SessionClosed)
    closed = events[-1]
    assert isinstance(closed, SessionClosed)
    assert "RuntimeError: decoder bug" in closed.reason
    assert "session reader failed" in caplog.text
    assert not provider.is_connected
    failure = provider.session.failure()
    assert failure is not None
    assert "decoder bug" in str(failure)


# -- Azure -----------------------------------------------------------------------------


async def test_azure_ga_endpoint_uses_api_key_header(fake_openai: FakeOpenAIServerHandle) -> None:
    base = fake_openai.url.removesuffix("/v1")
    provider = AzureOpenAIProvider(
        AzureOpenAIConfig(
            api_key=KEY, base_url=base.replace("ws://", "http://"), model="gpt-realtime"
        )
    )
    request = provider.make_protocol().connect_request()
    assert request.url == f"{base}/openai/v1/realtime?model=gpt-realtime"
    assert request.headers == {"api-key": KEY}


async def test_azure_preview_speaks_beta_against_a_beta_fake() -> None:
    async with run_fake_openai_server(FakeOpenAIConfig(dialect="beta")) as handle:
        base = handle.url.removesuffix("/v1")
        provider = AzureOpenAIProvider(
            AzureOpenAIConfig(
                api_key=KEY,
                base_url=base,
                model="gpt-realtime",
                api_version="2025-04-01-preview",
                session=SessionConfig(temperature=0.7),
            )
        )
        assert "api-version=2025-04-01-preview&deployment=gpt-realtime" in (
            provider.make_protocol().connect_request().url
        )
        await provider.connect()
        try:
            await provider.send_text("Hello Azure")
            events = await collect_until(provider, ResponseDone)
            assert any(isinstance(e, AudioDelta) for e in events)
            assert handle.connections[0].received[0]["session"]["temperature"] == 0.7
        finally:
            await provider.disconnect()


def test_azure_needs_endpoint_and_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_OPENAI_ENDPOINT", raising=False)
    with pytest.raises(ConfigError, match="base_url"):
        AzureOpenAIProvider(AzureOpenAIConfig(api_key=KEY, model="dep"))
    with pytest.raises(ConfigError, match="deployment"):
        AzureOpenAIProvider(AzureOpenAIConfig(api_key=KEY, base_url="https://x.openai.azure.com"))


async def test_unknown_voice_is_a_config_error_before_any_io(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    """TTS's "nova" is no Realtime voice: refused at construction, listing the valid ones."""
    with pytest.raises(ConfigError, match="no voice 'nova'") as info:
        provider_for(fake_openai, session=SessionConfig(voice="nova"))
    assert "marin, cedar" in str(info.value)
    with pytest.raises(ConfigError, match="Did you mean 'marin'"):
        provider_for(fake_openai, session=SessionConfig(voice="marine"))
    provider = provider_for(fake_openai, session=SessionConfig(voice="cedar"))
    await provider.connect()
    try:
        with pytest.raises(ConfigError, match="Did you mean 'coral'"):
            await provider.update_session(SessionConfig(voice="Coral!"))
    finally:
        await provider.disconnect()
    assert [e["type"] for e in fake_openai.connections[0].received] == ["session.update"]


async def test_the_fake_refuses_a_voice_the_service_lacks(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    """Sent past the client's check, the fake answers like the service (§4)."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="sk-test", base_url=fake_openai.url.replace("ws", "http", 1))
    async with client.realtime.connect(model="gpt-realtime") as conn:
        assert (await conn.recv()).type == "session.created"
        await conn.session.update(
            session={"type": "realtime", "audio": {"output": {"voice": "nova"}}}  # type: ignore[typeddict-item]
        )
        error = await conn.recv()
        assert error.type == "error"
        assert error.error.code == "invalid_value"
        assert error.error.param == "session.audio.output.voice"
        assert "'marin', 'cedar'" in error.error.message
