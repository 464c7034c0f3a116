"""Timing the local pipeline's stages inside a turn (:mod:`benchmarks.local`).

Each stage is wrapped (:class:`TimedSTT`, :class:`TimedLLM`, :class:`TimedTTS`) to note
on a :class:`Timeline` when each call ran, in wall and process CPU time;
:func:`turn_row` picks the calls a turn used; :func:`stage_alone` runs the same stages
alone on the same input, for the comparison; :class:`Playback` and :func:`watch`
follow the reply as a real-time listener would hear it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from voxengine.config import SessionConfig, ToolSpec
from voxengine.events import AudioDelta, Event, ResponseDone, Role, SpeechStopped
from voxengine.providers.pipeline import (
    ChatMessage,
    GenerationSettings,
    LlamaCppLLM,
    PiperTTS,
    SentenceSplitter,
    TextChunk,
    Transcript,
    WhisperSTT,
)
from voxengine.providers.pipeline.stages import FinishChunk, LLMChunk

from .local_speech import RATE

__all__ = [
    "SILENCE_SETTING",
    "STAGES",
    "Playback",
    "TimedLLM",
    "TimedSTT",
    "TimedTTS",
    "Timeline",
    "stage_alone",
    "turn_row",
    "watch",
]


def _clocks() -> tuple[float, float]:
    """Wall time and the CPU time of the whole process (every thread: CTranslate2,
    llama.cpp and onnxruntime run their own)."""
    return time.perf_counter(), time.process_time()


#: The pipeline's end-of-turn silence (``TurnDetectionConfig.silence_duration``).
SILENCE_SETTING = 0.5
STAGES = ("vad_end_of_turn", "stt", "llm_first_sentence", "tts_first_chunk")


async def stage_alone(
    whisper: WhisperSTT,
    llama: LlamaCppLLM,
    piper: PiperTTS,
    pcm: bytes,
    messages: list[ChatMessage],
    session: SessionConfig,
    first_clause: int,
) -> dict[str, float]:
    """STT, LLM first piece and TTS first chunk of one turn, each run alone on the input
    the pipeline had (the committed audio; the same conversation, its prompt prefilled as
    the pipeline prefills it while the user speaks): wall and CPU seconds."""
    out: dict[str, float] = {}
    wall, cpu = _clocks()
    text = (await whisper.transcribe(pcm + bytes(2 * int(RATE * SILENCE_SETTING)), RATE)).text
    out["stt"], out["stt_cpu"] = time.perf_counter() - wall, time.process_time() - cpu
    await llama.prefill(messages)
    asked = [*messages, ChatMessage(role=Role.USER, text=text)]
    splitter = SentenceSplitter(first_clause=first_clause)
    first: str | None = None
    wall, cpu = _clocks()
    stream = llama.stream(
        asked, (), GenerationSettings(max_output_tokens=session.max_output_tokens)
    )
    async for chunk in stream:
        if isinstance(chunk, TextChunk) and (done := splitter.push(chunk.text)):
            first = done[0]
            break
    await stream.aclose()  # type: ignore[attr-defined]
    out["llm_first_sentence"] = time.perf_counter() - wall
    out["llm_first_sentence_cpu"] = time.process_time() - cpu
    first = first or splitter.flush() or "Okay."
    wall, cpu = _clocks()
    speech = piper.synthesize(first)
    await anext(speech)
    out["tts_first_chunk"], out["tts_first_chunk_cpu"] = (
        time.perf_counter() - wall,
        time.process_time() - cpu,
    )
    await speech.aclose()  # type: ignore[attr-defined]
    return out


class Timeline:
    """When each stage call of a turn ran: ``(stage, start, end, cpu_start, cpu_end)``
    (``end``: the result, the first piece of the reply, the first audio chunk)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float, float, float]] = []

    def add(self, stage: str, started: tuple[float, float]) -> None:
        wall, cpu = _clocks()
        self.calls.append((stage, started[0], wall, started[1], cpu))

    def used(self, stage: str, before: float) -> tuple[str, float, float, float, float] | None:
        """The last call of ``stage`` that started before ``before``: the one whose
        result the turn used (earlier ones were dropped: the user went on)."""
        calls = [c for c in self.calls if c[0] == stage and c[1] <= before]
        return calls[-1] if calls else None


class TimedSTT:
    def __init__(self, inner: WhisperSTT, timeline: Timeline) -> None:
        self.inner, self.timeline, self.label = inner, timeline, inner.label

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        started = _clocks()
        heard = await self.inner.transcribe(pcm, sample_rate)
        self.timeline.add("stt", started)
        return heard


class TimedLLM:
    def __init__(self, inner: LlamaCppLLM, timeline: Timeline, first_clause: int) -> None:
        self.inner, self.timeline, self.label = inner, timeline, inner.label
        self.first_clause = first_clause

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        await self.inner.prefill(messages)

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: Any
    ) -> AsyncIterator[LLMChunk]:
        started, first = _clocks(), True
        splitter = SentenceSplitter(first_clause=self.first_clause)
        inner = self.inner.stream(messages, tools, settings)
        try:
            async for chunk in inner:
                done = isinstance(chunk, TextChunk) and splitter.push(chunk.text)
                if first and (done or isinstance(chunk, FinishChunk)):
                    self.timeline.add("llm_first_sentence", started)
                    first = False
                yield chunk
        finally:
            await inner.aclose()  # type: ignore[attr-defined]  # stops the model now


class TimedTTS:
    def __init__(self, inner: PiperTTS, timeline: Timeline) -> None:
        self.inner, self.timeline, self.label = inner, timeline, inner.label

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        started, first = _clocks(), True
        inner = self.inner.synthesize(text)
        try:
            async for pcm in inner:
                if first:
                    self.timeline.add("tts_first_chunk", started)
                    first = False
                yield pcm
        finally:
            await inner.aclose()  # type: ignore[attr-defined]  # stops the synthesis now


def turn_row(marks: dict[str, tuple[float, float]], timeline: Timeline) -> dict[str, float]:
    """One turn's figures, in seconds from the end of the user's speech: each stage's
    own duration (the call whose result the turn used), when it started, the time to
    first audio, and the overlap (sum of the stages minus the time to first audio: the
    work done while the VAD was still waiting, or side by side)."""
    speech_end, first_audio = marks["speech_end"], marks["first_audio"]
    row = {
        "vad_end_of_turn": marks["stopped"][0] - speech_end[0],
        "vad_end_of_turn_cpu": marks["stopped"][1] - speech_end[1],
        "ttfa": first_audio[0] - speech_end[0],
        "ttfa_cpu": first_audio[1] - speech_end[1],
    }
    llm = timeline.used("llm_first_sentence", first_audio[0])
    stt = timeline.used("stt", llm[1] if llm else first_audio[0])
    tts = timeline.used("tts_first_chunk", first_audio[0])
    for name, call in (("stt", stt), ("llm_first_sentence", llm), ("tts_first_chunk", tts)):
        if call is None:
            raise RuntimeError(f"no {name} call before the first audio")
        row[name] = call[2] - call[1]
        row[f"{name}_cpu"] = call[4] - call[3]
        row[f"{name}_starts_at"] = call[1] - speech_end[0]
    row["sum"] = sum(row[name] for name in STAGES)
    row["overlap"] = row["sum"] - row["ttfa"]
    return row


class Playback:
    """A listener playing the reply in real time from its first audio: how long the
    playback waited for audio that was not there yet (a gap in the middle of the reply,
    when the next piece is not ready before the previous one has played)."""

    def __init__(self) -> None:
        self.clock: float | None = None  # when the audio received so far ends playing
        self.stalled = 0.0

    def add(self, arrived: float, seconds: float) -> None:
        if self.clock is not None and arrived > self.clock:
            self.stalled += arrived - self.clock
        self.clock = max(self.clock or arrived, arrived) + seconds


async def watch(
    events: AsyncIterator[Event], marks: dict[str, tuple[float, float]], playback: Playback
) -> None:
    async for event in events:
        now = _clocks()
        if isinstance(event, SpeechStopped):
            marks.setdefault("stopped", now)
        elif isinstance(event, AudioDelta):
            marks.setdefault("first_audio", now)
            playback.add(now[0], len(event.audio) / (2 * 24_000))
        elif isinstance(event, ResponseDone):
            return
