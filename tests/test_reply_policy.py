"""End to end over real sockets: every message the user sends gets its own reply.

The fakes run one response at a time, like the services; voxengine's reply policy
(ReplyPolicy.QUEUE by default) makes a reply asked for during another response wait
for it instead of being refused. Also: input transcription in either order relative
to the response (the OpenAI order is not documented) lands in the history.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from voxengine import ResponseDone, ResponseStatus, VoiceEngine, VoiceEngineConfig
from voxengine.config import Modality, ReplyPolicy, SessionConfig
from voxengine.events import (
    AudioDelta,
    Event,
    ProviderErrorEvent,
    ResponseStarted,
    Role,
    TextDone,
    ToolCall,
    TranscriptDone,
)
from voxengine.providers import OpenAIConfig, OpenAIProvider
from voxengine.providers.base import BaseProvider
from voxengine.providers.gemini import GeminiConfig, GeminiProvider
from voxengine.testing import (
    FakeGeminiConfig,
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    default_responder,
    run_fake_gemini_server,
    run_fake_openai_server,
    synthesize_speech,
)

KEY = "sk-test"
TIMEOUT = 20.0


def responder(turn: FakeTurn) -> FakeReply:
    if turn.kind == "text" and "weather" in turn.text:
        return FakeReply(
            text="Let me check that for you right now.",
            tool_calls=(FakeToolCall(name="get_weather", arguments="{}"),),
        )
    if turn.kind == "text" and "story" in turn.text:
        return FakeReply(text=" ".join(["and then the sea was calm again"] * 12))
    return default_responder(turn)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIServerHandle]:
    """Streams a step per 10 ms: responses are live long enough to collide."""
    async with run_fake_openai_server(
        FakeOpenAIConfig(responder=responder), pace_seconds=0.01
    ) as handle:
        yield handle


async def collect(provider: BaseProvider, done: int) -> list[Event]:
    """Events until ``done`` responses have ended."""
    events: list[Event] = []

    async def run() -> None:
        finished = 0
        async for event in provider.events():
            events.append(event)
            if isinstance(event, ResponseDone):
                finished += 1
                if finished == done:
                    return

    await asyncio.wait_for(run(), TIMEOUT)
    return events


def texts(events: list[Event]) -> list[str]:
    return [e.text for e in events if isinstance(e, TextDone)]


def text_only(**kwargs: Any) -> SessionConfig:
    return SessionConfig(modalities=(Modality.TEXT,), **kwargs)


async def test_two_messages_in_a_row_each_get_their_reply(fake: FakeOpenAIServerHandle) -> None:
    provider = OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=fake.url, session=text_only()))
    await provider.connect()
    try:
        await provider.send_text("one")
        await provider.send_text("two")
        events = await collect(provider, 2)
    finally:
        await provider.disconnect()
    assert texts(events) == ["You said: one", "You said: two"]
    assert all(e.status is ResponseStatus.COMPLETED for e in events if isinstance(e, ResponseDone))
    assert not [e for e in events if isinstance(e, ProviderErrorEvent)]
    (server,) = fake.connections
    assert [e["type"] for e in server.received].count("response.create") == 2


async def test_tool_result_sent_during_the_response_gets_the_follow_up(
    fake: FakeOpenAIServerHandle,
) -> None:
    """The call arrives before its response ends; the result is sent at once."""
    provider = OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=fake.url, session=text_only()))
    await provider.connect()
    try:
        await provider.send_text("weather?")
        events: list[Event] = []
        async with asyncio.timeout(TIMEOUT):
            async for event in provider.events():
                events.append(event)
                if isinstance(event, ResponseStarted):
                    started = True
                if isinstance(event, ToolCall):
                    break
        assert started
        await provider.send_tool_result(events[-1].call_id, '"sunny"')  # type: ignore[union-attr]
        events += await collect(provider, 2)
    finally:
        await provider.disconnect()
    assert texts(events)[-1] == 'The tool returned "sunny".'
    assert not [e for e in events if isinstance(e, ProviderErrorEvent)]


async def test_text_sent_while_a_vad_reply_plays_is_answered_after_it(
    fake: FakeOpenAIServerHandle,
) -> None:
    provider = OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=fake.url))
    await provider.connect()
    try:
        speech = synthesize_speech("what time is it", sample_rate=24_000) + bytes(24_000)
        for start in range(0, len(speech), 4800):
            await provider.send_audio(speech[start : start + 4800])
        events: list[Event] = []
        async with asyncio.timeout(TIMEOUT):
            async for event in provider.events():
                events.append(event)
                if isinstance(event, AudioDelta):
                    break  # the VAD-started reply is playing
        await provider.send_text("and the date?")
        events += await collect(provider, 2)
    finally:
        await provider.disconnect()
    done = [e for e in events if isinstance(e, ResponseDone)]
    assert [e.status for e in done] == [ResponseStatus.COMPLETED] * 2
    transcripts = [
        e.transcript for e in events if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT
    ]
    assert transcripts[0].startswith("I heard")
    assert transcripts[-1] == "You said: and the date?"


async def test_interrupt_policy_cancels_the_active_reply(fake: FakeOpenAIServerHandle) -> None:
    session = text_only(reply_policy=ReplyPolicy.INTERRUPT)
    provider = OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=fake.url, session=session))
    await provider.connect()
    try:
        await provider.send_text("tell me a story")  # 84 words: live for a while
        async with asyncio.timeout(TIMEOUT):
            async for event in provider.events():
                if isinstance(event, ResponseStarted):
                    break
        await provider.send_text("never mind: hello")
        events = await collect(provider, 2)
    finally:
        await provider.disconnect()
    done = [e for e in events if isinstance(e, ResponseDone)]
    assert [e.status for e in done] == [ResponseStatus.CANCELLED, ResponseStatus.COMPLETED]
    assert texts(events)[-1] == "You said: never mind: hello"


@pytest.mark.parametrize("timing", ["before_response", "after_response", "random"])
async def test_user_transcript_in_either_order_reaches_the_history(timing: Any) -> None:
    config = FakeOpenAIConfig(transcription_timing=timing)
    async with run_fake_openai_server(config) as server:
        engine = VoiceEngine(
            VoiceEngineConfig(
                api_key=KEY,
                provider="openai",
                base_url=server.url,
                input_transcription_model="gpt-4o-mini-transcribe",
            )
        )
        seen: list[Event] = []
        both = asyncio.Event()

        def note(event: Any) -> None:
            seen.append(event)
            user = [e for e in seen if isinstance(e, TranscriptDone) and e.role is Role.USER]
            if user and any(isinstance(e, ResponseDone) for e in seen):
                both.set()

        engine.events.on((ResponseDone, TranscriptDone), note)
        async with engine:
            speech = synthesize_speech("what time is it", sample_rate=24_000) + bytes(24_000)
            await engine.send_audio(speech, sample_rate=24_000)
            await asyncio.wait_for(both.wait(), TIMEOUT)
            history = engine.history
    (done,) = [e for e in seen if isinstance(e, ResponseDone)]
    assert done.status is ResponseStatus.COMPLETED
    (transcript,) = [e for e in seen if isinstance(e, TranscriptDone) and e.role is Role.USER]
    assert transcript.transcript == "(1.6 s of audio)"
    order = [
        type(e).__name__ + (":user" if getattr(e, "role", None) is Role.USER else "") for e in seen
    ]
    if timing == "before_response":
        assert order.index("TranscriptDone:user") < order.index("ResponseDone")
    elif timing == "after_response":
        assert order.index("TranscriptDone:user") > order.index("ResponseDone")
    user, assistant = history[0], history[1]
    assert (user.role, user.text) == (Role.USER, "(1.6 s of audio)")
    assert (assistant.role, assistant.text) == (Role.ASSISTANT, "I heard 1.6 seconds of audio.")


async def test_gemini_two_messages_in_a_row_each_get_their_reply() -> None:
    async with run_fake_gemini_server(FakeGeminiConfig(paced=True), pace_seconds=0.01) as server:
        provider = GeminiProvider(GeminiConfig(api_key="k", base_url=server.url))
        await provider.connect()
        try:
            await provider.send_text("one")
            await provider.send_text("two")
            events = await collect(provider, 2)
        finally:
            await provider.disconnect()
    done = [e for e in events if isinstance(e, ResponseDone)]
    assert [e.status for e in done] == [ResponseStatus.COMPLETED] * 2
    transcripts = [
        e.transcript for e in events if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT
    ]
    assert transcripts == ["You said: one", "You said: two"]


@pytest.mark.parametrize(
    ("policy", "statuses"),
    [
        (ReplyPolicy.QUEUE, [ResponseStatus.COMPLETED, ResponseStatus.COMPLETED]),
        (ReplyPolicy.INTERRUPT, [ResponseStatus.CANCELLED, ResponseStatus.COMPLETED]),
    ],
)
async def test_pipeline_two_messages_in_a_row(
    policy: ReplyPolicy, statuses: list[ResponseStatus]
) -> None:
    """The cascaded pipeline runs replies one after another: the same policy holds."""
    from voxengine.providers.pipeline import PipelineConfig, PipelineProvider
    from voxengine.testing._scripted_stages import ScriptedLLM

    session = SessionConfig(reply_policy=policy, modalities=(Modality.TEXT,))
    llm = ScriptedLLM(responder, delay=0.01)  # a word per 10 ms: the story runs 0.8 s
    provider = PipelineProvider(PipelineConfig(session=session, llm=llm))
    await provider.connect()
    try:
        await provider.send_text("tell me a story")
        async with asyncio.timeout(TIMEOUT):
            async for event in provider.events():
                if isinstance(event, ResponseStarted):
                    break
        await provider.send_text("what day is it")
        events = await collect(provider, 2)
    finally:
        await provider.disconnect()
    done = [e for e in events if isinstance(e, ResponseDone)]
    assert [e.status for e in done] == statuses


@pytest.mark.parametrize("order", ["audio_first", "transcript_first"])
async def test_either_audio_done_order_gives_the_same_turn(order: Any) -> None:
    """§9: output_audio.done and output_audio_transcript.done come in either order."""
    async with run_fake_openai_server(FakeOpenAIConfig(audio_done_order=order)) as server:
        engine = VoiceEngine(VoiceEngineConfig(api_key=KEY, base_url=server.url))
        audio = bytearray()
        engine.on_audio_response = audio.extend
        async with engine:
            await engine.send_text("hello")
            done = await engine.events.wait_for(ResponseDone, timeout=TIMEOUT)
            history = engine.history
    assert done.status is ResponseStatus.COMPLETED
    assert (history[-1].role, history[-1].text) == (Role.ASSISTANT, "You said: hello")
    assert len(audio) > 24_000
