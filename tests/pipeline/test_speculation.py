"""Speculative replies: a reply prepared during the end-of-turn silence is delivered only
when the turn really ends, and dropped without a trace when the user goes on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from voxengine.commands import SendText
from voxengine.config import SessionConfig, ToolSpec, TurnDetectionConfig
from voxengine.events import (
    AudioDelta,
    Event,
    ItemDone,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SpeechStopped,
    TranscriptDone,
)
from voxengine.providers.pipeline import (
    EspeakTTS,
    LlamaCppLLM,
    LocalResponder,
    OpenAIChatLLM,
    PipelineConfig,
    PipelineProvider,
    PiperTTS,
)
from voxengine.providers.pipeline.speculation import ReplyInputs, Speculation
from voxengine.providers.pipeline.stages import (
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LLMChunk,
    TextChunk,
)

from .conftest import QUESTION, silence, spoken
from .test_provider import RecordingSTT

pytest.importorskip("espeakng_loader")
pytest.importorskip("pocketsphinx")


class NumberedLLM:
    """Replies "Answer number N, ..." to its N-th request and notes every request."""

    label = "numbered"

    def __init__(self) -> None:
        self.requests: list[list[ChatMessage]] = []

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: object
    ) -> AsyncIterator[LLMChunk]:
        self.requests.append(list(messages))
        yield TextChunk(text=f"Answer number {len(self.requests)}, ")
        yield TextChunk(text="to what you said.")
        yield FinishChunk(stop_reason="stop")


class SignallingTTS:
    """espeak-ng, setting :attr:`spoke` once it has made audio."""

    def __init__(self) -> None:
        self.inner = EspeakTTS()
        self.spoke = asyncio.Event()

    @property
    def label(self) -> str:
        return self.inner.label

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        inner = self.inner.synthesize(text)
        try:
            async for chunk in inner:
                self.spoke.set()
                yield chunk
        finally:
            await inner.aclose()  # type: ignore[attr-defined]


def speculating_pipeline(llm: NumberedLLM, tts: SignallingTTS) -> PipelineProvider:
    return PipelineProvider(
        PipelineConfig(
            stt=RecordingSTT(),
            llm=llm,
            tts=tts,
            vad_engine="energy",
            speculate=True,
            session=SessionConfig(turn_detection=TurnDetectionConfig(silence_duration=0.5)),
        )
    )


async def feed(provider: PipelineProvider, audio: bytes) -> None:
    for i in range(0, len(audio), 640):
        await provider.send_audio(audio[i : i + 640])
        await asyncio.sleep(0)  # let the early transcription begin, as in real time


async def collect(events: AsyncIterator[Event], into: list[Event]) -> None:
    async for event in events:
        into.append(event)
        if isinstance(event, ResponseDone):
            return


def index(events: list[Event], kind: type[Event]) -> int:
    return next(i for i, e in enumerate(events) if isinstance(e, kind))


async def test_a_reply_prepared_in_the_silence_is_released_when_the_turn_ends() -> None:
    llm, tts = NumberedLLM(), SignallingTTS()
    provider = speculating_pipeline(llm, tts)
    await provider.connect()
    seen: list[Event] = []
    collector = asyncio.create_task(collect(provider.events(), seen))
    try:
        # the question and 0.35 s of silence: the turn is transcribed early (after
        # 0.2 s) but has not ended (0.5 s); the input then pauses until the reply to
        # the early transcript has made audio
        await feed(provider, silence(0.3) + await spoken(QUESTION) + silence(0.35))
        await asyncio.wait_for(tts.spoke.wait(), 20)
        for _ in range(20):
            await asyncio.sleep(0)  # whatever was emitted reaches the collector
        assert not any(isinstance(e, ResponseStarted | AudioDelta) for e in seen)
        assert not any(isinstance(e, SpeechStopped) for e in seen)
        await feed(provider, silence(0.5))  # the turn ends
        await asyncio.wait_for(collector, 20)
    finally:
        collector.cancel()
        await provider.disconnect()
    assert len(llm.requests) == 1  # the prepared reply was the reply: asked once
    user = next(e for e in seen if isinstance(e, TranscriptDone) and e.role is Role.USER)
    assert llm.requests[0][-1] == ChatMessage(role=Role.USER, text=user.transcript)
    # delivered after the turn's own events, in the usual order
    user_done = next(
        i for i, e in enumerate(seen) if isinstance(e, ItemDone) and e.item.role is Role.USER
    )
    assert index(seen, SpeechStopped) < user_done < index(seen, ResponseStarted)
    assert index(seen, ResponseStarted) < index(seen, AudioDelta)
    done = seen[-1]
    assert isinstance(done, ResponseDone)
    assert done.status is ResponseStatus.COMPLETED
    assert [i.role for i in provider.conversation] == [Role.USER, Role.ASSISTANT]
    assert provider.conversation[1].text == "Answer number 1, to what you said."


async def test_a_prepared_reply_is_dropped_when_the_user_goes_on() -> None:
    llm, tts = NumberedLLM(), SignallingTTS()
    provider = speculating_pipeline(llm, tts)
    await provider.connect()
    seen: list[Event] = []
    collector = asyncio.create_task(collect(provider.events(), seen))
    try:
        part = await spoken(QUESTION)
        await feed(provider, silence(0.3) + part + silence(0.35))
        await asyncio.wait_for(tts.spoke.wait(), 20)  # the reply to the first part is ready
        await feed(provider, part + silence(1.0))  # but the user goes on
        await asyncio.wait_for(collector, 20)
    finally:
        collector.cancel()
        await provider.disconnect()
    assert len(llm.requests) == 2  # the dropped reply to the first part, then the turn's
    assert [type(e) for e in seen].count(SpeechStopped) == 1  # one turn
    assert [type(e) for e in seen].count(ResponseStarted) == 1  # one reply delivered
    assert index(seen, SpeechStopped) < index(seen, AudioDelta)  # nothing spoken early
    user = next(e for e in seen if isinstance(e, TranscriptDone) and e.role is Role.USER)
    assert llm.requests[1][-1] == ChatMessage(role=Role.USER, text=user.transcript)
    assert len(user.transcript) > len(llm.requests[0][-1].text or "")  # the whole turn
    reply = next(e for e in seen if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT)
    assert reply.transcript == "Answer number 2, to what you said."
    assert [i.role for i in provider.conversation] == [Role.USER, Role.ASSISTANT]
    assert provider.conversation[1].text == reply.transcript


async def test_a_prepared_reply_is_dropped_when_the_conversation_changed_meanwhile() -> None:
    llm, tts = NumberedLLM(), SignallingTTS()
    provider = speculating_pipeline(llm, tts)
    await provider.connect()
    seen: list[Event] = []
    collector = asyncio.create_task(collect(provider.events(), seen))
    try:
        await feed(provider, silence(0.3) + await spoken(QUESTION) + silence(0.35))
        await asyncio.wait_for(tts.spoke.wait(), 20)
        await provider.send(SendText(text="I am in Paris."))  # added before the turn ends
        await feed(provider, silence(0.5))
        await asyncio.wait_for(collector, 20)
    finally:
        collector.cancel()
        await provider.disconnect()
    assert len(llm.requests) == 2
    assert ChatMessage(role=Role.USER, text="I am in Paris.") in llm.requests[1]
    reply = next(e for e in seen if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT)
    assert reply.transcript == "Answer number 2, to what you said."


async def test_held_events_are_released_in_order_or_dropped() -> None:
    inputs = ReplyInputs(messages=(), tools=(), settings=GenerationSettings(), speak=True)
    out: list[Event] = []
    first = Speculation(until=1.0, inputs=inputs, emit=out.append)
    first.start(first.committed())
    started = [ResponseStarted(response_id="r1"), ResponseStarted(response_id="r2")]
    first.emit(started[0])
    first.emit(started[1])
    assert out == []
    assert first.held == 2
    task = first.commit()
    assert out == started
    assert first.held == 0
    first.emit(started[0])  # live now
    assert out == [*started, started[0]]
    await task
    assert first.discard() is None  # a committed reply is not a speculation any more
    with pytest.raises(RuntimeError):
        first.commit()

    out.clear()
    second = Speculation(until=1.0, inputs=inputs, emit=out.append)
    second.start(second.committed())
    second.emit(started[0])
    dropped = second.discard()
    second.emit(started[1])
    assert out == []
    assert second.held == 0
    assert dropped is not None
    with pytest.raises(asyncio.CancelledError):
        await dropped
    with pytest.raises(RuntimeError):
        second.commit()


def test_replies_are_prepared_ahead_only_where_a_dropped_one_costs_no_request() -> None:
    local = PipelineConfig()
    assert local.speculates(LlamaCppLLM(), PiperTTS())
    assert local.speculates(LocalResponder(), EspeakTTS())
    api = OpenAIChatLLM(model="gpt-4o-mini", api_key="k")
    assert not local.speculates(api, PiperTTS())
    assert PipelineConfig(speculate=True).speculates(api, PiperTTS())
    assert not PipelineConfig(speculate=False).speculates(LlamaCppLLM(), PiperTTS())


async def test_a_prepared_reply_cancelled_right_after_it_is_adopted_still_reports_its_end() -> None:
    """The race: the held reply has run to its end and waits to be committed; the turn
    ends (its events are released, ResponseStarted reaches the app) and a cancel (a
    barge-in) lands before its task resumes. Its ResponseDone must not be lost."""
    from voxengine.providers.pipeline._responder import Responder
    from voxengine.providers.pipeline.conversation import Conversation

    out: list[Event] = []
    counter = iter(range(1000))
    conversation = Conversation()
    tts = SignallingTTS()
    await tts.open()
    responder = Responder(
        llm=NumberedLLM(),
        tts=tts,
        conversation=conversation,
        session=SessionConfig,
        emit=out.append,
        new_id=lambda kind: f"{kind}-{next(counter)}",
        is_open=lambda: True,
    )
    speculation = responder.speculate(1.0, "hello")
    assert speculation is not None
    assert speculation.task is not None
    async with asyncio.timeout(30):  # the reply runs to its last event, held back
        while not any(isinstance(e, ItemDone) for e in speculation._held):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    for _ in range(5):  # let it reach its wait for the commit
        await asyncio.sleep(0)
    assert out == []
    task = speculation.commit()
    assert any(isinstance(e, ResponseStarted) for e in out)  # released to the app
    task.cancel()  # before the task resumes
    await asyncio.wait({task})
    done = [e for e in out if isinstance(e, ResponseDone)]
    assert len(done) == 1
    assert done[0].status is ResponseStatus.COMPLETED  # it had run to its end
    assert [item.role for item in conversation.items] == [Role.ASSISTANT]
    await responder.aclose()
    await tts.aclose()
