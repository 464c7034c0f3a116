"""The whole local voice AI as a provider: the conformance suite, streaming (speech
starts while the model is still writing) and barge-in (generation and speech stop,
the history keeps only what was played)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from voxengine.config import SessionConfig, ToolSpec, TurnDetectionConfig
from voxengine.events import (
    AudioDelta,
    Event,
    ItemDone,
    ItemTruncated,
    ResponseDone,
    ResponseStatus,
    Role,
    SpeechStarted,
    TranscriptDelta,
    TranscriptDone,
)
from voxengine.providers.base import BaseProvider
from voxengine.providers.pipeline import (
    GenerationSettings,
    LlamaCppLLM,
    LLMChunk,
    PipelineConfig,
    PipelineProvider,
    PiperTTS,
    TextChunk,
    Transcript,
    WhisperSTT,
    local_pipeline,
)
from voxengine.providers.pipeline.stages import ChatMessage
from voxengine.testing._scripted_stages import ScriptedLLM
from voxengine.testing.conformance import (
    CONFORMANCE_CHECKS,
    ConformanceCheck,
    FakeScript,
    ProviderHarness,
)

from .conftest import piper_speech, trimmed

pytestmark = pytest.mark.local_models

Stages = tuple[WhisperSTT, PiperTTS, LlamaCppLLM]


@pytest.fixture
async def speech(opened: Stages) -> bytes:
    """A spoken question (Piper, 16 kHz) for the suite's audio turns."""
    return await piper_speech(opened[1], "What is the capital of France?")


def scripted_llm_harness(stages: Stages, speech: bytes) -> ProviderHarness:
    """Real Whisper, Silero VAD and Piper; the suite's scripted language model, so the
    checks that compare reply text and tool calls can run."""
    whisper, piper, _ = stages

    @contextlib.asynccontextmanager
    async def make(session: SessionConfig, script: FakeScript) -> AsyncIterator[BaseProvider]:
        delay = script.pace_seconds if script.paced else 0.0
        yield PipelineProvider(
            PipelineConfig(
                session=session,
                stt=whisper,
                llm=ScriptedLLM(script.responder, delay=delay),
                tts=piper,
                vad_engine="silero",
            )
        )

    return ProviderHarness(name="local-speech", make_provider=make, speech=speech, timeout=90)


def local_harness(stages: Stages, speech: bytes) -> ProviderHarness:
    """Every stage real: Whisper, Silero VAD, SmolLM2 and Piper (scripts are ignored)."""
    whisper, piper, llama = stages

    @contextlib.asynccontextmanager
    async def make(session: SessionConfig, script: FakeScript) -> AsyncIterator[BaseProvider]:
        yield local_pipeline(session, stt=whisper, llm=llama, tts=piper)

    return ProviderHarness(name="local", make_provider=make, speech=speech, timeout=90)


#: Checks that do not depend on the reply's wording or on tool calls (which SmolLM2
#: cannot make): run with every stage real.
UNSCRIPTED = frozenset(
    {
        "connect",
        "disconnect",
        "audio_output",
        "audio_turn",
        "manual_turn",
        "input_transcription",
        "interruption",
        "truncation",
        "usage",
        "session_update",
        "item_deletion",
    }
)


@pytest.mark.parametrize("check", CONFORMANCE_CHECKS, ids=lambda c: c.name)
async def test_local_speech_conforms(
    opened: Stages, speech: bytes, check: ConformanceCheck
) -> None:
    await check.run(scripted_llm_harness(opened, speech))


@pytest.mark.parametrize(
    "check", [c for c in CONFORMANCE_CHECKS if c.name in UNSCRIPTED], ids=lambda c: c.name
)
async def test_local_pipeline_conforms(
    opened: Stages, speech: bytes, check: ConformanceCheck
) -> None:
    await check.run(local_harness(opened, speech))


class TimedLLM:
    """Passes the real model's stream through, noting when its last token came."""

    def __init__(self, inner: LlamaCppLLM) -> None:
        self.inner = inner
        self.last_token: float | None = None
        self.text = ""

    @property
    def label(self) -> str:
        return self.inner.label

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings,
    ) -> AsyncIterator[LLMChunk]:
        async for chunk in self.inner.stream(messages, tools, settings):
            if isinstance(chunk, TextChunk):
                self.last_token = time.perf_counter()
                self.text += chunk.text
            yield chunk


async def collect_until(
    events: AsyncIterator[Event], done: type[Event], seen: list[tuple[float, Event]]
) -> None:
    async for event in events:
        seen.append((time.perf_counter(), event))
        if isinstance(event, done):
            return


async def test_first_audio_comes_before_the_model_finishes(opened: Stages) -> None:
    whisper, piper, llama = opened
    timed = TimedLLM(llama)
    session = SessionConfig(instructions="Answer in three or four sentences.")
    provider = local_pipeline(session, stt=whisper, tts=piper)
    provider.llm = timed  # the same model, observed
    await provider.connect()
    seen: list[tuple[float, Event]] = []
    try:
        await provider.send_text("Tell me about the ocean.")
        await asyncio.wait_for(collect_until(provider.events(), ResponseDone, seen), 240)
    finally:
        await provider.disconnect()
    done = seen[-1][1]
    assert isinstance(done, ResponseDone)
    assert done.status is ResponseStatus.COMPLETED
    assert timed.text.count(". ") >= 1, timed.text  # more than one sentence to stream
    first_audio = next(t for t, e in seen if isinstance(e, AudioDelta))
    assert timed.last_token is not None
    assert first_audio < timed.last_token  # speaking began while the model was writing


async def test_barge_in_stops_the_reply_and_keeps_what_was_played(opened: Stages) -> None:
    whisper, piper, llama = opened
    session = SessionConfig(
        turn_detection=TurnDetectionConfig(create_response=False, interrupt_response=True),
        max_output_tokens=400,
    )
    provider = local_pipeline(session, stt=whisper, llm=llama, tts=piper)
    interruption = await piper_speech(piper, "Stop, please. That is enough.")
    await provider.connect()
    events = provider.events()
    seen: list[tuple[float, Event]] = []
    try:
        await provider.send_text("Tell me a very long story about a ship at sea.")
        await asyncio.wait_for(collect_until(events, AudioDelta, seen), 240)
        chunk = 640  # 20 ms at 16 kHz
        audio = interruption + bytes(16_000)
        for i in range(0, len(audio), chunk):
            await provider.send_audio(audio[i : i + chunk])
        await asyncio.wait_for(collect_until(events, ResponseDone, seen), 120)
        reply = [e for _, e in seen if isinstance(e, ResponseDone)][-1]
        assert reply.status is ResponseStatus.CANCELLED
        assert any(isinstance(e, SpeechStarted) for _, e in seen)
        generated = "".join(
            e.delta for _, e in seen if isinstance(e, TranscriptDelta) and e.role is Role.ASSISTANT
        )
        spoken = next(
            e.transcript
            for _, e in seen
            if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT
        )
        assert spoken  # the first sentence was spoken before the user cut in
        assert len(spoken) < len(generated.strip())  # the unspoken rest is dropped
        item = next(i for i in provider.conversation if i.role is Role.ASSISTANT)
        assert item.text == spoken  # the model will see only what was said
        assert item.status == "incomplete"
        # the application reports how much was actually played: history follows it
        await provider.interrupt(0.6, item_id=item.item_id, cancel=False)
        await asyncio.wait_for(collect_until(events, ItemTruncated, seen), 30)
        heard = next(i for i in provider.conversation if i.item_id == item.item_id).text
        assert heard
        assert len(heard.split()) < len(spoken.split())
        assert spoken.startswith(heard)
    finally:
        await provider.disconnect()


class HeardWhisper:
    """Whisper, noting the audio of each transcription (what the turn committed)."""

    def __init__(self, inner: WhisperSTT) -> None:
        self.inner = inner
        self.heard: list[bytes] = []
        self.label = inner.label

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        self.heard.append(pcm)
        return await self.inner.transcribe(pcm, sample_rate)


async def test_whisper_hears_the_whole_turn_to_its_last_sample(opened: Stages) -> None:
    """The end of the question ("...of France?") reaches Whisper: Silero's end of turn,
    the early transcription and the commit cut nothing (a misheard last word is the
    recogniser's, not a truncated turn)."""
    whisper, piper, llama = opened
    heard = HeardWhisper(whisper)
    session = SessionConfig(turn_detection=TurnDetectionConfig(create_response=False))
    provider = PipelineProvider(
        PipelineConfig(stt=heard, llm=llama, tts=piper, vad_engine="silero", session=session)
    )
    question = await piper_speech(piper, "What is the capital of France?")
    await provider.connect()
    seen: list[tuple[float, Event]] = []
    try:
        audio = bytes(8_000) + question + bytes(32_000)
        for i in range(0, len(audio), 640):  # 20 ms chunks, the loop free between them
            await provider.send_audio(audio[i : i + 640])
            await asyncio.sleep(0)
        await asyncio.wait_for(collect_until(provider.events(), ItemDone, seen), 120)
    finally:
        await provider.disconnect()
    assert len(heard.heard) == 1
    # every sample of the utterance, in order, to the last one above -36 dBFS (Piper
    # pads its speech with near-silence, which the early transcription, made after
    # 0.1 s of silence, may not wait for)
    assert trimmed(question) in heard.heard[0]
    user = next(e for _, e in seen if isinstance(e, TranscriptDone))
    again = await whisper.transcribe(heard.heard[0], 16_000)
    assert user.transcript == again.text  # the event carries what the whole turn says
    # the silence around the turn may change a word (Whisper heard "friends" once in CI),
    # never the number of words: the last one was not cut off
    alone = await whisper.transcribe(question, 16_000)
    assert len(user.transcript.split()) == len(alone.text.split())
