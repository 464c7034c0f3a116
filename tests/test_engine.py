"""VoiceEngine in every mode, over real sockets to the fake server and over the mock."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from voxengine import (
    ANY,
    AudioDelta,
    BaseEvent,
    ConfigError,
    InvalidState,
    ResponseDone,
    ResponseStatus,
    Role,
    SessionClosed,
    SessionReady,
    TextDelta,
    ToolCall,
    ToolSpec,
    TranscriptDelta,
    VoiceEngine,
    VoiceEngineConfig,
)
from voxengine.providers import MockConfig, MockProvider
from voxengine.strategies import BigLaneStrategy, FastLaneStrategy, ProviderStrategy
from voxengine.testing import (
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    run_fake_openai_server,
)

from .conftest import assert_valid_client_events


def engine_for(handle: FakeOpenAIServerHandle, mode: str, **kwargs: Any) -> VoiceEngine:
    return VoiceEngine(
        VoiceEngineConfig(
            api_key="sk-test",
            provider="openai",
            mode=mode,
            base_url=handle.url,
            **kwargs,  # type: ignore[arg-type]
        )
    )


@pytest.mark.parametrize(
    ("mode", "strategy"),
    [("fast", FastLaneStrategy), ("provider", ProviderStrategy), ("big", BigLaneStrategy)],
)
async def test_every_mode_holds_a_text_conversation(
    fake_openai: FakeOpenAIServerHandle, mode: str, strategy: type
) -> None:
    engine = engine_for(fake_openai, mode, voice="coral", instructions="Be brief.")
    text: list[str] = []
    audio = bytearray()
    done: list[ResponseDone] = []
    engine.on_text_response = text.append
    engine.on_audio_response = audio.extend
    engine.on_response_done = done.append
    async with engine:
        assert type(engine.strategy) is strategy
        await engine.send_text("Hello!")
        await engine.events.wait_for(ResponseDone, timeout=10)
        await engine.send_text("How are you?")
        await engine.events.wait_for(ResponseDone, timeout=10)
    assert "".join(text) == "You said: Hello!You said: How are you?"
    assert len(audio) > 0
    assert len(audio) % 2 == 0
    assert [d.status for d in done] == [ResponseStatus.COMPLETED] * 2
    server = fake_openai.connections[0]
    assert server.session["audio"]["output"]["voice"] == "coral"
    assert_valid_client_events(server.received)
    if mode == "fast":
        assert engine.history == []
    else:
        roles_texts = [(h.role, h.text) for h in engine.history]
        assert roles_texts == [
            (Role.USER, "Hello!"),
            (Role.ASSISTANT, "You said: Hello!"),
            (Role.USER, "How are you?"),
            (Role.ASSISTANT, "You said: How are you?"),
        ]
        usage = engine.get_usage()
        assert usage.output_tokens > 0
        assert usage.input_tokens > 0
        metrics = engine.get_metrics()
        assert metrics.responses == 2
        assert metrics.time_to_first_audio is not None
        assert metrics.time_to_first_audio > 0
        assert metrics.audio_seconds_out == pytest.approx(len(audio) / 48_000)


async def test_async_iteration_and_wildcard(fake_openai: FakeOpenAIServerHandle) -> None:
    engine = engine_for(fake_openai, "provider")
    everything: list[BaseEvent] = []
    engine.events.on(ANY, everything.append)
    await engine.connect()
    received: list[BaseEvent] = []

    async def consume() -> None:
        async for event in engine.events:
            received.append(event)

    task = asyncio.create_task(consume())
    await asyncio.sleep(0)
    await engine.send_text("Hi")
    await engine.events.wait_for(ResponseDone, timeout=10)
    await engine.disconnect()
    await asyncio.wait_for(task, 5)
    assert isinstance(everything[0], SessionReady)
    assert isinstance(received[-1], SessionClosed)
    assert [type(e) for e in received] == [type(e) for e in everything[1:]]
    deltas = [e for e in received if isinstance(e, TranscriptDelta) and e.role is Role.ASSISTANT]
    assert "".join(d.delta for d in deltas) == "You said: Hi"


async def test_on_function_call_result_is_sent_and_answered() -> None:
    def responder(turn: FakeTurn) -> FakeReply:
        if turn.kind == "tool_output":
            return FakeReply(text="Done: " + turn.text)
        return FakeReply(
            tool_calls=(
                FakeToolCall(name="add", arguments='{"a": 2, "b": 3}'),
                FakeToolCall(name="add", arguments='{"a": 10, "b": 1}'),
            )
        )

    async with run_fake_openai_server(FakeOpenAIConfig(responder=responder)) as handle:
        tool = ToolSpec(
            name="add",
            parameters={
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
            },
        )
        engine = engine_for(handle, "big", tools=(tool,))
        calls: list[ToolCall] = []

        async def on_call(call: ToolCall) -> dict[str, int]:
            calls.append(call)
            args = json.loads(call.arguments)
            return {"sum": args["a"] + args["b"]}

        engine.on_function_call = on_call
        async with engine:
            await engine.send_text("add things")
            await engine.events.wait_for(ResponseDone, timeout=10)  # the calling response
            second = await engine.events.wait_for(ResponseDone, timeout=10)
        assert second.status is ResponseStatus.COMPLETED
        assert len(calls) == 2  # parallel calls, one follow-up response
        received = handle.connections[0].received
        outputs = [
            e["item"]["output"]
            for e in received
            if e.get("item", {}).get("type") == "function_call_output"
        ]
        assert outputs == ['{"sum": 5}', '{"sum": 11}']
        assert sum(1 for e in received if e["type"] == "response.create") == 2
        assert handle.connections[0].session["tools"][0]["name"] == "add"


async def test_errors_reach_on_error(fake_openai: FakeOpenAIServerHandle) -> None:
    engine = engine_for(fake_openai, "fast")
    errors: list[Any] = []
    got_error = asyncio.Event()

    def on_error(event: Any) -> None:
        errors.append(event)
        got_error.set()

    engine.on_error = on_error
    async with engine:
        await engine.commit_audio(respond=False)
        await asyncio.wait_for(got_error.wait(), 5)
    assert errors[0].code == "input_audio_buffer_commit_empty"


async def test_engine_rejects_bad_config_before_io(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="API key"):
        VoiceEngine(VoiceEngineConfig(provider="openai"))
    with pytest.raises(ConfigError, match="temperature"):
        VoiceEngine(VoiceEngineConfig(provider="openai", api_key="k", temperature=0.5))
    engine = VoiceEngine(VoiceEngineConfig(provider="mock"))
    with pytest.raises(InvalidState):
        await engine.send_text("hi")
    with pytest.raises(InvalidState):
        engine.get_metrics()
    assert "mock" in repr(engine)


# -- mock provider ---------------------------------------------------------------------


async def test_engine_on_the_mock_provider_by_name() -> None:
    async with VoiceEngine(VoiceEngineConfig(provider="mock", mode="big")) as engine:
        await engine.send_text("ping")
        done = await engine.events.wait_for(ResponseDone, timeout=5)
        assert done.status is ResponseStatus.COMPLETED
        assert engine.history[-1].text == "You said: ping"


async def test_mock_scripted_replies_history_and_audio() -> None:
    provider = MockProvider(MockConfig(api_key="test-key", replies=("First.", "Second reply.")))
    engine = VoiceEngine(VoiceEngineConfig(provider="mock", mode="fast"), provider=provider)
    audio = bytearray()
    engine.on_audio_response = audio.extend
    async with engine:
        for text in ("one", "two", "three"):
            await engine.send_text(text)
            await engine.events.wait_for(ResponseDone, timeout=5)
    assert [(h.role.value, h.text) for h in provider.history] == [
        ("user", "one"),
        ("assistant", "First."),
        ("user", "two"),
        ("assistant", "Second reply."),
        ("user", "three"),
        ("assistant", "First."),
    ]
    # real PCM16 at 24 kHz: 0.25 s per word, 1 + 2 + 1 words
    assert len(audio) == pytest.approx(4 * 0.25 * 48_000, rel=0.05)


async def test_mock_latency_is_applied() -> None:
    provider = MockProvider(MockConfig(latency=0.05))
    await provider.connect()
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await provider.send_text("hi")
        async for event in provider.events():
            if isinstance(event, (TextDelta, TranscriptDelta, AudioDelta)):
                break
        assert loop.time() - start >= 0.09  # one way out, one way back
    finally:
        await provider.disconnect()


async def test_mock_injected_failures() -> None:
    from voxengine import AuthenticationFailed, ConnectFailed

    with pytest.raises(AuthenticationFailed):
        await MockProvider(MockConfig(fail_connect="auth")).connect()
    network = MockProvider(MockConfig(fail_connect="network"))
    network.retry_backoff = 0.001
    with pytest.raises(ConnectFailed):
        await network.connect(retry_count=1)

    engine = VoiceEngine(
        VoiceEngineConfig(provider="mock"), provider=MockProvider(MockConfig(fail_on_turn=2))
    )
    errors: list[Any] = []
    engine.on_error = errors.append
    async with engine:
        await engine.send_text("fine")
        assert (
            await engine.events.wait_for(ResponseDone, timeout=5)
        ).status is ResponseStatus.COMPLETED
        await engine.send_text("this one fails")
        failed = await engine.events.wait_for(ResponseDone, timeout=5)
        assert failed.status is ResponseStatus.FAILED
        await engine.send_text("recovered")
        assert (
            await engine.events.wait_for(ResponseDone, timeout=5)
        ).status is ResponseStatus.COMPLETED
    assert errors
    assert errors[0].code == "server_error"


def test_mock_config_validation() -> None:
    with pytest.raises(ConfigError):
        MockConfig(latency=-1)
    with pytest.raises(ConfigError):
        MockConfig(fail_on_turn=0)
    with pytest.raises(ConfigError):
        MockConfig(replies=("a",), responder=lambda t: FakeReply(text="b"))


def _record_caller(engine: VoiceEngine) -> set[str]:
    """Names of the tasks the engine's AudioDelta handler runs in ("no task": a callback)."""
    tasks: set[str] = set()

    def where(event: AudioDelta) -> None:
        task = asyncio.current_task()
        tasks.add(task.get_name() if task is not None else "no task")

    engine.events.on(AudioDelta, where)
    return tasks


async def test_fast_mode_calls_handlers_from_the_socket_read_callback() -> None:
    """No task switch between the socket and a synchronous handler in fast mode."""
    async with run_fake_openai_server() as handle:
        engine = engine_for(handle, "fast")
        tasks = _record_caller(engine)
        async with engine:
            await engine.send_text("hello there")
            await engine.events.wait_for(ResponseDone, timeout=10)
    assert tasks == {"no task"}  # the WebSocket transport pushes from data_received


async def test_fast_mode_on_a_pull_transport_calls_handlers_from_the_reader_task() -> None:
    """A transport that cannot push (the mock's in-memory pair) is read by a task."""
    engine = VoiceEngine(VoiceEngineConfig(provider="mock", mode="fast"))
    tasks = _record_caller(engine)
    async with engine:
        await engine.send_text("hello there")
        await engine.events.wait_for(ResponseDone, timeout=10)
    assert tasks == {"voxengine-session-reader"}


@pytest.mark.parametrize("mode", ["fast", "big"])
async def test_a_slow_async_handler_never_stalls_the_socket(mode: str) -> None:
    """The reader keeps reading while a handler awaits: only assistant audio is dropped."""
    from voxengine import AudioDropped, TranscriptDone
    from voxengine.providers import OpenAIConfig, OpenAIProvider

    async with run_fake_openai_server(FakeOpenAIConfig(audio_chunk_seconds=0.02)) as handle:
        provider = OpenAIProvider(
            OpenAIConfig(api_key="sk-test", base_url=handle.url, event_queue_size=20)
        )
        engine = VoiceEngine(
            VoiceEngineConfig(api_key="sk-test", mode=mode, base_url=handle.url),  # type: ignore[arg-type]
            provider=provider,
        )

        async def slow(event: AudioDelta) -> None:
            await asyncio.sleep(0.01)

        engine.events.on(AudioDelta, slow)
        dropped: list[AudioDropped] = []
        engine.events.on(AudioDropped, dropped.append)
        transcripts: list[TranscriptDone] = []
        engine.events.on(TranscriptDone, transcripts.append)
        async with engine:
            await engine.send_text("one two three four five six seven eight nine ten")
            await engine.events.wait_for(ResponseDone, timeout=10)
    assert transcripts[0].transcript.startswith("You said: one two")
    assert dropped, "the slow handler should have cost assistant audio"
    assert dropped[0].direction == "output"
    assert dropped[0].seconds > 0


def _client_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the client side: voxengine's own (not its fake servers') and those of
    ``websockets`` client connections (e.g. a keepalive task)."""
    from websockets.asyncio.client import ClientConnection

    found = []
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        frame = getattr(coro, "cr_frame", None)
        if frame is None:
            continue
        owner = frame.f_locals.get("self")
        module = frame.f_globals.get("__name__", "")
        client_code = module.startswith("voxengine") and not module.startswith("voxengine.testing")
        if client_code or isinstance(owner, ClientConnection):
            found.append(task)
    return found


async def test_an_idle_connected_fast_session_runs_no_task(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    """Memory per idle session: while connected and idle, nothing of the client runs
    (no supervisor, reader or keepalive task; the watchdog and keepalive are timers),
    and the session still answers, reconnect supervision included."""
    engine = engine_for(fake_openai, "fast")
    done: list[ResponseDone] = []
    engine.on_response_done = done.append
    async with engine:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while _client_tasks():  # the reader hands the close over to a callback
            assert loop.time() < deadline, f"tasks left: {_client_tasks()}"
            await asyncio.sleep(0.01)
        await engine.send_text("still there?")
        await engine.events.wait_for(ResponseDone, timeout=10)
        assert done
        assert done[0].status is ResponseStatus.COMPLETED
    assert not _client_tasks()
