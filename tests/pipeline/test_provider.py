"""PipelineProvider end to end: real speech in, events out, barge-in, tools, failures."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from voxengine.commands import TruncateItem
from voxengine.config import Modality, SessionConfig, ToolSpec, TurnDetection, TurnDetectionConfig
from voxengine.errors import AudioError, ConfigError, InvalidState
from voxengine.events import (
    AudioDelta,
    AudioDone,
    Event,
    InputCleared,
    InputCommitted,
    Interrupted,
    ItemAdded,
    ItemDeleted,
    ItemDone,
    ItemKind,
    ItemTruncated,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SessionClosed,
    SessionReady,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    ToolCall,
    TranscriptDelta,
    TranscriptDone,
    TranscriptFailed,
)
from voxengine.providers.base import Capability, ProviderConfig
from voxengine.providers.pipeline import (
    AnthropicPipelineConfig,
    AnthropicPipelineProvider,
    EspeakTTS,
    LocalResponder,
    PipelineConfig,
    PipelineProvider,
    PocketSphinxSTT,
    Transcript,
    fallback_offline_pipeline,
)
from voxengine.providers.pipeline._packaged import local_extra_installed
from voxengine.providers.pipeline.stages import (
    ChatMessage,
    GenerationSettings,
    LLMChunk,
    PromptCache,
)
from voxengine.testing.fakes.llm import (
    FakeLLMConfig,
    FakeLLMReply,
    FakeLLMToolCall,
    FakeLLMTurn,
    run_fake_llm_server,
)

from .conftest import API_KEY, KEY_WORD, QUESTION, silence, spoken

pytest.importorskip("espeakng_loader")
pytest.importorskip("pocketsphinx")

NOON = dt.datetime(2025, 5, 5, 12, 30)
WEATHER = ToolSpec(
    name="get_weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def offline(llm_delay: float = 0.0, session: SessionConfig | None = None) -> PipelineProvider:
    """The fallback stages (deterministic and instant) around a rule-based responder."""
    return PipelineProvider(
        PipelineConfig(
            stt=PocketSphinxSTT(),
            llm=LocalResponder(clock=lambda: NOON, delay=llm_delay),
            tts=EspeakTTS(),
            vad_engine="energy",
            session=session or SessionConfig(),
        )
    )


async def send_chunked(provider: PipelineProvider, audio: bytes, chunk: int = 640) -> None:
    for i in range(0, len(audio), chunk):
        await provider.send_audio(audio[i : i + chunk])


async def until(
    events: AsyncIterator[Event], kind: type[Event], timeout: float = 20.0
) -> list[Event]:
    """Events up to and including the next ``kind``."""
    out: list[Event] = []

    async def run() -> None:
        async for event in events:
            out.append(event)
            if isinstance(event, kind):
                return
        raise AssertionError(f"stream ended before {kind.__name__}")

    await asyncio.wait_for(run(), timeout)
    return out


def without_streams(events: Sequence[Event]) -> list[type[Event]]:
    kinds: list[type[Event]] = []
    for event in events:
        streamed = TextDelta | TranscriptDelta | AudioDelta
        if isinstance(event, streamed) and kinds and kinds[-1] is type(event):
            continue
        kinds.append(type(event))
    return kinds


async def test_spoken_question_end_to_end() -> None:
    provider = offline(llm_delay=0.03)
    await provider.connect()
    stream = provider.events()
    assert isinstance((await until(stream, SessionReady))[0], SessionReady)
    await send_chunked(provider, silence(0.5) + await spoken(QUESTION) + silence(1.0))
    events = await until(stream, ResponseDone)
    await provider.disconnect()

    order = [type(e) for e in events if not isinstance(e, TranscriptDelta | AudioDelta)]
    assert order == [
        SpeechStarted,
        SpeechStopped,
        InputCommitted,
        ItemAdded,
        TranscriptDone,
        ItemDone,
        ResponseStarted,
        ItemAdded,
        AudioDone,
        TranscriptDone,
        ItemDone,
        ResponseDone,
    ]
    started, stopped = events[0], events[1]
    assert isinstance(started, SpeechStarted)
    assert isinstance(stopped, SpeechStopped)
    assert 0.4 < started.audio_start < 1.0 < stopped.audio_end < 2.5
    user = next(e for e in events if isinstance(e, TranscriptDone))
    assert user.role is Role.USER
    assert KEY_WORD in user.transcript.split()  # loose: this is real speech recognition
    text_deltas = [i for i, e in enumerate(events) if isinstance(e, TranscriptDelta)]
    audio_deltas = [i for i, e in enumerate(events) if isinstance(e, AudioDelta)]
    assert text_deltas[0] < audio_deltas[0] < text_deltas[-1]  # speech starts before the LLM ends
    reply = (
        "I cannot check the weather: I am the built-in local responder, not an AI model, "
        "with no weather service. It is 12:30 on Monday."
    )
    assert "".join(e.delta for e in events if isinstance(e, TranscriptDelta)) == reply
    assistant = [e for e in events if isinstance(e, TranscriptDone)][-1]
    assert (assistant.role, assistant.transcript) == (Role.ASSISTANT, reply)
    audio = b"".join(e.audio for e in events if isinstance(e, AudioDelta))
    assert 3.0 < provider.output_format.duration(len(audio)) < 15.0
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.status is ResponseStatus.COMPLETED
    assert done.usage is not None
    assert done.usage.output_tokens == len(reply.split())
    assert [i.role for i in provider.conversation] == [Role.USER, Role.ASSISTANT]
    assert [type(e) for e in [e async for e in stream]] == [SessionClosed]


async def test_text_turn_and_text_modality() -> None:
    provider = offline(session=SessionConfig(modalities=(Modality.TEXT,), instructions="Be kind."))
    await provider.connect()
    stream = provider.events()
    await provider.send_text("hello")
    events = await until(stream, ResponseDone)
    assert not [e for e in events if isinstance(e, AudioDelta | AudioDone)]
    assert without_streams(events) == [
        SessionReady,
        ItemAdded,
        ItemDone,
        ResponseStarted,
        ItemAdded,
        TextDelta,
        TextDone,
        ItemDone,
        ResponseDone,
    ]
    await provider.send_text("thanks", respond=False)
    await provider.create_response(modalities=(Modality.AUDIO,))
    events = await until(stream, ResponseDone)
    assert any(isinstance(e, AudioDelta) for e in events)
    await provider.disconnect()
    await provider.disconnect()  # idempotent


class CachingResponder:
    """The rule-based responder with a prompt cache (:class:`PromptCache`) that notes
    the conversation it is asked to read ahead of a reply."""

    def __init__(self) -> None:
        self.inner = LocalResponder(clock=lambda: NOON)
        self.prefilled: list[list[str]] = []
        self.called = asyncio.Event()

    @property
    def label(self) -> str:
        return self.inner.label

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings,
    ) -> AsyncIterator[LLMChunk]:
        return self.inner.stream(messages, tools, settings)

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        self.prefilled.append([m.text for m in messages])
        self.called.set()

    async def next_prefill(self) -> list[str]:
        await asyncio.wait_for(self.called.wait(), 20)
        self.called.clear()
        return self.prefilled[-1]


async def test_a_prompt_cache_reads_the_conversation_before_each_reply_is_asked_for() -> None:
    llm = CachingResponder()
    assert isinstance(llm, PromptCache)
    provider = PipelineProvider(
        PipelineConfig(
            stt=PocketSphinxSTT(),
            llm=llm,
            tts=EspeakTTS(),
            vad_engine="energy",
            session=SessionConfig(instructions="Be kind."),
        )
    )
    await provider.connect()
    stream = provider.events()
    try:
        assert await llm.next_prefill() == ["Be kind."]  # connected: the system prompt
        await provider.send_text("hello")
        events = await until(stream, ResponseDone)
        reply = next(e for e in events if isinstance(e, TranscriptDone)).transcript
        # the reply is done: the next prompt begins with this exchange
        assert await llm.next_prefill() == ["Be kind.", "hello", reply]
        await send_chunked(provider, silence(0.3) + await spoken(QUESTION))
        await until(stream, SpeechStarted)
        # the user speaks: the prompt so far is read meanwhile (nothing new in it here)
        assert await llm.next_prefill() == ["Be kind.", "hello", reply]
    finally:
        await provider.disconnect()
    assert not provider._replies.prefilling  # nothing left running after disconnect


async def long_reply_provider() -> tuple[PipelineProvider, AsyncIterator[Event]]:
    provider = offline(llm_delay=0.05)
    await provider.connect()
    stream = provider.events()
    await until(stream, SessionReady)
    return provider, stream


LONG = "alpha beta gamma. delta epsilon zeta. eta theta iota. kappa lambda mu. nu xi omicron."


async def test_barge_in_cancels_and_keeps_only_what_was_heard() -> None:
    provider, stream = await long_reply_provider()
    await provider.send_text(LONG)
    seen: list[Event] = []
    while sum(isinstance(e, AudioDelta) for e in seen) < 20:  # a couple of sentences spoken
        seen += await until(stream, AudioDelta)
    await send_chunked(provider, await spoken("stop") + silence(0.8))
    rest = await until(stream, ResponseDone)
    events = seen + rest
    barge = next(i for i, e in enumerate(events) if isinstance(e, SpeechStarted))
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.status is ResponseStatus.CANCELLED
    assert not any(isinstance(e, AudioDelta | TranscriptDelta) for e in events[barge + 1 : -1][5:])
    message = next(
        e.item for e in rest if isinstance(e, ItemDone) and e.item.role is Role.ASSISTANT
    )
    assert message.status == "incomplete"
    full = "You said: " + LONG
    assert message.text
    assert full.startswith(message.text)
    assert message.text != full
    heard = provider.output_format.duration(
        sum(len(e.audio) for e in events if isinstance(e, AudioDelta))
    )
    interrupted = await provider.interrupt(heard / 2, cancel=False)
    assert interrupted.item_id == message.item_id
    assert interrupted.played == pytest.approx(heard / 2)
    after = await until(stream, Interrupted)
    assert isinstance(after[-2], ItemTruncated)
    assert after[-2].audio_end == pytest.approx(heard / 2)
    assert isinstance(after[-1], Interrupted)
    (kept,) = [i for i in provider.conversation if i.role is Role.ASSISTANT]
    assert kept.text is not None
    assert message.text.startswith(kept.text)
    assert 0 < len(kept.text) < len(message.text)
    # the user's interruption then becomes a turn of its own
    events = await until(stream, ResponseDone)
    assert any(isinstance(e, TranscriptDone) and e.role is Role.USER for e in events)
    await provider.disconnect()


async def test_cancel_response_and_disconnect_mid_response() -> None:
    provider, stream = await long_reply_provider()
    await provider.send_text(LONG)
    await until(stream, TranscriptDelta)
    await provider.cancel_response()
    events = await until(stream, ResponseDone)
    assert isinstance(events[-1], ResponseDone)
    assert events[-1].status is ResponseStatus.CANCELLED
    await provider.cancel_response()  # nothing running: no-op
    await provider.send_text(LONG)
    await provider.send_text("queued: never answered")
    await until(stream, TranscriptDelta)
    await provider.disconnect()
    tail = [e async for e in stream]
    assert not any(isinstance(e, ResponseStarted) for e in tail)
    assert [type(e) for e in tail][-2:] == [ResponseDone, SessionClosed]
    assert isinstance(tail[-2], ResponseDone)
    assert tail[-2].status is ResponseStatus.CANCELLED
    pending = [t for t in asyncio.all_tasks() if t.get_name().startswith("voxengine-pipeline")]
    assert pending == []


def weather_responder(turn: FakeLLMTurn) -> FakeLLMReply:
    if turn.tool_results:
        return FakeLLMReply(text=f"It is {json.loads(turn.tool_results[0][1])} in Paris.")
    if "weather" in turn.user_text:
        call = FakeLLMToolCall(name="get_weather", arguments={"city": "Paris"})
        return FakeLLMReply(text="Let me check.", tool_calls=(call,))
    return FakeLLMReply(text="Hello.")


async def test_tool_round_trip_through_fake_anthropic() -> None:
    config = FakeLLMConfig(api_key=API_KEY, responder=weather_responder)
    async with run_fake_llm_server(config) as server:
        provider = AnthropicPipelineProvider(
            AnthropicPipelineConfig(
                api_key=API_KEY,
                base_url=server.anthropic_base_url,
                session=SessionConfig(tools=(WEATHER,), instructions="You are terse."),
            )
        )
        await provider.connect()
        stream = provider.events()
        await provider.send_text("what is the weather in Paris")
        events = await until(stream, ResponseDone)
        call = next(e for e in events if isinstance(e, ToolCall))
        done = events[-1]
        assert isinstance(done, ResponseDone)
        assert call.response_id == done.response_id
        assert (call.name, json.loads(call.arguments)) == ("get_weather", {"city": "Paris"})
        assert done.usage is not None
        assert done.usage.input_tokens > 0
        assert [i.kind for i in done.output] == [ItemKind.MESSAGE, ItemKind.FUNCTION_CALL]
        assert events.index(call) < len(events) - 1
        await provider.send_tool_result(call.call_id, json.dumps("sunny"), respond=False)
        await provider.create_response()
        events = await until(stream, ResponseDone)
        text = "".join(e.delta for e in events if isinstance(e, TranscriptDelta))
        assert text == "It is sunny in Paris."
        await provider.disconnect()
        first, second = server.requests_to("/v1/messages")
        assert first.body["system"] == "You are terse."
        assert first.body["tools"][0]["name"] == "get_weather"
        result = second.body["messages"][-1]["content"][0]
        assert result == {"type": "tool_result", "tool_use_id": call.call_id, "content": '"sunny"'}


async def test_llm_failure_is_an_event_and_the_session_survives(fake_llm) -> None:  # type: ignore[no-untyped-def]
    provider = AnthropicPipelineProvider(
        AnthropicPipelineConfig(api_key=API_KEY, base_url=fake_llm.anthropic_base_url)
    )
    await provider.connect()
    stream = provider.events()
    fake_llm.fail_next(529, "overloaded_error", "Overloaded")
    await provider.send_text("hi")
    events = await until(stream, ResponseDone)
    error = next(e for e in events if isinstance(e, ProviderErrorEvent))
    assert (error.code, error.message) == ("overloaded_error", "Overloaded")
    assert isinstance(events[-1], ResponseDone)
    assert events[-1].status is ResponseStatus.FAILED
    await provider.send_text("hi again")
    events = await until(stream, ResponseDone)
    assert isinstance(events[-1], ResponseDone)
    assert events[-1].status is ResponseStatus.COMPLETED
    await provider.disconnect()


class BrokenSTT:
    label = "broken"

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        raise RuntimeError("microphone on fire")


async def test_manual_turns_commit_and_stt_failure() -> None:
    manual = SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL))
    provider = PipelineProvider(
        PipelineConfig(stt=BrokenSTT(), llm=LocalResponder(), session=manual)
    )
    await provider.connect()
    stream = provider.events()
    await provider.commit_audio()
    await provider.send_audio(silence(0.2))
    await provider.clear_audio()
    await provider.send_audio(silence(0.2))
    await provider.commit_audio()
    events = await until(stream, ItemDone)
    assert without_streams(events) == [
        SessionReady,
        ProviderErrorEvent,
        InputCleared,
        InputCommitted,
        ItemAdded,
        TranscriptFailed,
        ItemDone,
    ]
    assert (
        "microphone on fire" in next(e for e in events if isinstance(e, TranscriptFailed)).message
    )
    await provider.disconnect()


async def test_recorded_message_then_response_waits_for_the_transcript() -> None:
    provider = offline()
    await provider.connect()
    stream = provider.events()
    await provider.send_audio_message(await spoken(QUESTION))
    await provider.create_response(modalities=(Modality.TEXT,))
    events = await until(stream, ResponseDone)
    kinds = [type(e) for e in events]
    assert kinds.index(TranscriptDone) < kinds.index(ResponseStarted)
    with pytest.raises(AudioError):
        await provider.send_audio_message(b"")
    await provider.disconnect()


async def test_context_session_update_and_deletion() -> None:
    provider = offline(session=SessionConfig(modalities=(Modality.TEXT,)))
    await provider.connect()
    stream = provider.events()
    await provider.add_message("The user is called Ada.", role=Role.SYSTEM, item_id="ctx")
    await provider.update_session(SessionConfig(instructions="Be brief."))
    await provider.delete_item("ctx")
    await provider.delete_item("nope")
    await provider.send_tool_result("no-such-call", "{}", respond=False)
    events = await until(stream, ItemDeleted)
    events += await until(stream, ProviderErrorEvent)
    events += await until(stream, ProviderErrorEvent)
    assert [type(e) for e in events] == [
        SessionReady,
        SessionUpdated,
        ItemAdded,
        ItemDone,
        ItemDeleted,
        ProviderErrorEvent,
        ProviderErrorEvent,
    ]
    assert provider.session_config.instructions == "Be brief."
    assert provider.session_config.modalities == (Modality.TEXT,)
    assert provider.conversation == []
    with pytest.raises(ConfigError):
        await provider.add_message("x", role=Role.TOOL)
    await provider.disconnect()


async def test_contract_errors() -> None:
    provider = fallback_offline_pipeline()
    with pytest.raises(InvalidState):
        await provider.send_audio(silence(0.1))
    with pytest.raises(InvalidState):
        provider.events()
    await provider.connect()
    with pytest.raises(InvalidState):
        await provider.connect()
    with pytest.raises(AudioError):
        await provider.send_audio(silence(0.1), sample_rate=24_000)
    with pytest.raises(AudioError):
        await provider.send_audio(b"\x00\x00\x00")
    with pytest.raises(ConfigError):
        await provider.update_session(
            SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.SEMANTIC_VAD))
        )
    await provider.disconnect()
    with pytest.raises(InvalidState):
        await provider.send_text("late")


def test_configuration() -> None:
    semantic = SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.SEMANTIC_VAD))
    with pytest.raises(ConfigError, match="semantic"):
        PipelineConfig(session=semantic)
    with pytest.raises(ConfigError, match="model"):
        PipelineProvider(PipelineConfig(base_url="http://localhost:11434/v1"))
    assert Capability.SEMANTIC_VAD not in PipelineProvider.capabilities
    assert Capability.TRUNCATION in PipelineProvider.capabilities
    assert PipelineProvider.name == "pipeline"
    assert AnthropicPipelineProvider.name == "anthropic"
    provider = PipelineProvider(
        ProviderConfig(model="llama3.2", base_url="http://localhost:11434/v1")
    )
    assert provider.llm.label == "llama3.2 via http://localhost:11434/v1"
    assert provider.input_format.sample_rate == 16_000
    assert provider.output_format.sample_rate == 24_000
    default = repr(PipelineProvider())
    if local_extra_installed():  # the local voice AI is the default
        assert "SmolLM2-135M-Instruct.Q4_1 (llama.cpp, local)" in default
        assert "whisper base" in default
    else:
        assert "not an AI model" in default
    assert "not an AI model" in repr(fallback_offline_pipeline())
    anthropic = AnthropicPipelineProvider(ProviderConfig(api_key="sk-ant-x", model="claude-x"))
    assert anthropic.llm.label == "anthropic claude-x"
    assert "sk-ant-x" not in repr(anthropic) + repr(anthropic.config)


def test_anthropic_preset_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicPipelineProvider()


async def test_truncate_item_cuts_a_finished_reply_to_what_was_heard() -> None:
    provider, stream = await long_reply_provider()
    await provider.send_text(LONG)
    events = await until(stream, ResponseDone)
    message = next(
        e.item for e in events if isinstance(e, ItemDone) and e.item.role is Role.ASSISTANT
    )
    assert message.text == "You said: " + LONG
    spoken_seconds = provider.output_format.duration(
        sum(len(e.audio) for e in events if isinstance(e, AudioDelta))
    )
    await provider.send(TruncateItem(item_id=message.item_id, audio_end=spoken_seconds / 3))
    (truncated,) = [e for e in await until(stream, ItemTruncated) if isinstance(e, ItemTruncated)]
    assert truncated.item_id == message.item_id
    assert truncated.audio_end == pytest.approx(spoken_seconds / 3)
    (kept,) = [i for i in provider.conversation if i.role is Role.ASSISTANT]
    assert kept.text is not None
    assert 0 < len(kept.text) < len(message.text)
    assert message.text.startswith(kept.text)
    with pytest.raises(ConfigError, match="no spoken assistant item"):
        await provider.send(TruncateItem(item_id="not-an-item", audio_end=0.1))
    (still,) = [i for i in provider.conversation if i.role is Role.ASSISTANT]
    assert still.text == kept.text  # the refusal changed nothing
    await provider.disconnect()


class RecordingSTT:
    """PocketSphinx, noting the audio of every transcription it is asked for."""

    def __init__(self) -> None:
        self.inner = PocketSphinxSTT()
        self.heard: list[bytes] = []

    @property
    def label(self) -> str:
        return self.inner.label

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        self.heard.append(pcm)
        return await self.inner.transcribe(pcm, sample_rate)


def trailing_silence(pcm: bytes) -> float:
    """Seconds after the last sample louder than -40 dBFS (16 kHz)."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    loud = np.nonzero(samples > 328)[0]
    return (len(samples) - (int(loud[-1]) + 1 if loud.size else 0)) / 16_000


def recording_pipeline(stt: RecordingSTT) -> PipelineProvider:
    return PipelineProvider(
        PipelineConfig(
            stt=stt,
            llm=LocalResponder(clock=lambda: NOON),
            tts=EspeakTTS(),
            vad_engine="energy",
            session=SessionConfig(
                turn_detection=TurnDetectionConfig(silence_duration=0.5, create_response=False)
            ),
        )
    )


async def test_the_turn_is_transcribed_during_the_end_of_turn_silence() -> None:
    stt = RecordingSTT()
    provider = recording_pipeline(stt)
    await provider.connect()
    stream = provider.events()
    try:
        speech = await spoken(QUESTION)
        await send_chunked(provider, silence(0.3) + speech + silence(1.0))
        events = await until(stream, ItemDone)
    finally:
        await provider.disconnect()
    user = next(e for e in events if isinstance(e, TranscriptDone))
    assert KEY_WORD in user.transcript.split()
    # one transcription, of audio taken before the VAD had waited out the 0.5 s of
    # silence that ends the turn: it started while the VAD was still waiting
    assert len(stt.heard) == 1
    assert 0.1 < trailing_silence(stt.heard[0]) < 0.45
    assert len(stt.heard[0]) > len(speech)  # every word of the turn (and the pre-roll)


async def test_an_early_transcription_is_dropped_when_the_user_speaks_again() -> None:
    stt = RecordingSTT()
    provider = recording_pipeline(stt)
    await provider.connect()
    stream = provider.events()
    try:
        first, second = await spoken(QUESTION), await spoken("what time is it")
        # a 0.35 s pause: long enough to start an early transcription, too short to end
        # the turn
        audio = silence(0.3) + first + silence(0.35) + second + silence(1.0)
        for i in range(0, len(audio), 640):
            await provider.send_audio(audio[i : i + 640])
            await asyncio.sleep(0)  # let the early transcription begin, as in real time
        events = await until(stream, ItemDone)
    finally:
        await provider.disconnect()
    assert [type(e) for e in events].count(SpeechStopped) == 1  # one turn
    assert len(stt.heard) == 2  # the early one of the first part, then the whole turn's
    assert len(stt.heard[-1]) > len(first) + len(second)
    user = next(e for e in events if isinstance(e, TranscriptDone))
    assert user.transcript  # the text of the whole turn, not of the dropped early one
    assert [i.role for i in provider.conversation] == [Role.USER]
