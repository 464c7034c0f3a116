"""Benchmarks of the local voice AI (Whisper base, SmolLM2-135M via llama.cpp, Piper, Silero).

Run: ``HF_HUB_OFFLINE=1 python -m benchmarks.local [--turns 20] [--sentences 30]``.
Results go to ``benchmarks/results/local.json``; ``docs/performance.md`` quotes them.

* ``wer``: word error rate of Whisper and of PocketSphinx on the same sentences,
  synthesised with two voices (Piper en_US-joe at two speeds, espeak-ng), clean and
  with white noise at 10 dB SNR; plus the real-time factor of STT and of Piper.
* ``turns``: time to first audio over spoken turns through the whole provider, the
  audio fed in real time (20 ms chunks): from the end of the user's speech to the
  first reply audio. Each stage is timed inside the pipeline (VAD end of turn; the
  STT call, the LLM until its first piece and the TTS until its first chunk that the
  turn used, with when each started), with its share of their sum and the overlap
  (the sum minus the time to first audio: work done during the end-of-turn silence or
  side by side); compared with the sum of the same stages run alone on the same input.
  Also the playback stall: how long a listener playing the reply in real time from
  its first audio waits for audio not ready yet (a gap inside the reply).
* ``llm``: SmolLM2 tokens per second; peak RSS of the process (all models loaded).
* ``pauses``: how often Silero's end of turn cuts a sentence at a 0.35 s pause inside
  it, per ``silence_duration``, and how often the early transcription (and the
  speculative reply) starts in such a pause, per ``early_transcription``
  (:mod:`benchmarks.local_pauses`; deterministic).

These are ratios and distributions for comparison on one machine, not timed tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from voxengine.audio.format import AudioFormat
from voxengine.audio.resample import convert
from voxengine.config import SessionConfig, ToolSpec
from voxengine.events import (
    AudioDelta,
    Event,
    ResponseDone,
    Role,
    SpeechStopped,
)
from voxengine.providers.pipeline import (
    ChatMessage,
    EspeakTTS,
    GenerationSettings,
    LlamaCppLLM,
    PipelineConfig,
    PipelineProvider,
    PiperTTS,
    PocketSphinxSTT,
    SentenceSplitter,
    TextChunk,
    TextToSpeech,
    Transcript,
    WhisperSTT,
)
from voxengine.providers.pipeline.stages import FinishChunk, LLMChunk

from .local_pauses import bench_early_wer, bench_pauses

RESULTS = Path(__file__).parent / "results" / "local.json"
RATE = 16_000

SENTENCES = (
    "What is the capital of France?",
    "Please turn off the lights in the kitchen.",
    "How long does it take to boil an egg?",
    "Tell me a short story about a brave little dog.",
    "What time does the library open tomorrow?",
    "Can you recommend a good book about history?",
    "Remind me to call my sister this evening.",
    "What is the weather like in London today?",
    "How do I make a cup of green tea?",
    "Play some relaxing music in the living room.",
    "Why is the sky blue during the day?",
    "Set an alarm for seven in the morning.",
    "What is the difference between a frog and a toad?",
    "Add milk and bread to my shopping list.",
    "How far away is the moon from the earth?",
    "Who wrote the play Romeo and Juliet?",
    "Translate good morning into Spanish.",
    "What should I cook for dinner tonight?",
    "Open the front door for the delivery driver.",
    "How many legs does a spider have?",
    "Explain how a rainbow is formed.",
    "Send a message to my boss saying I am running late.",
    "What is the tallest mountain in the world?",
    "Turn the volume down a little please.",
    "Where can I find a quiet place to study?",
    "How do plants make their own food?",
    "Tell me a joke about computers.",
    "What is the best way to learn a new language?",
    "Book a table for two at an Italian restaurant.",
    "Why do cats like to sleep so much?",
    "What are the planets in our solar system?",
    "Close the window in the bedroom.",
)

QUESTIONS = (
    "What is the capital of France?",
    "How do I make a cup of tea?",
    "Tell me a fun fact about the ocean.",
    "Why is the sky blue?",
    "What should I eat for breakfast?",
    "How do plants grow?",
    "What is a good name for a dog?",
    "Tell me about the moon.",
    "How can I sleep better?",
    "What is the largest animal on earth?",
)

_CLEAN = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def _wer(references: list[str], hypotheses: list[str]) -> float:
    return float(
        jiwer.wer(
            references,
            [h if h.strip() else "<empty>" for h in hypotheses],
            reference_transform=_CLEAN,
            hypothesis_transform=_CLEAN,
        )
    )


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def _speak(tts: TextToSpeech, text: str) -> tuple[bytes, float]:
    """PCM16 at 16 kHz and the synthesis seconds."""
    started = time.perf_counter()
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    seconds = time.perf_counter() - started
    return convert(
        pcm, AudioFormat(sample_rate=tts.sample_rate), AudioFormat(sample_rate=RATE)
    ), seconds


def _noisy(pcm: bytes, snr_db: float, seed: int) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    power = float(np.mean(samples**2)) or 1.0
    noise = np.random.default_rng(seed).normal(
        0, np.sqrt(power / 10 ** (snr_db / 10)), samples.size
    )
    return (samples + noise).clip(-32768, 32767).astype("<i2").tobytes()


async def bench_wer(whisper: WhisperSTT, count: int) -> dict[str, Any]:
    sphinx = PocketSphinxSTT()
    await sphinx.open()
    voices: dict[str, TextToSpeech] = {
        "piper joe 1.0x": PiperTTS(),
        "piper joe 0.8x (faster)": PiperTTS(length_scale=0.8),
        "espeak-ng en-us 160 wpm": EspeakTTS(voice="en-us", words_per_minute=160),
    }
    sentences = list(SENTENCES[:count])
    conditions: dict[str, Any] = {}
    tts_rtf: list[float] = []
    stt_rtf: list[float] = []
    for name, tts in voices.items():
        await tts.open()
        for noise in (False, True):
            refs, heard_whisper, heard_sphinx = [], [], []
            for i, sentence in enumerate(sentences):
                pcm, synth_seconds = await _speak(tts, sentence)
                seconds = len(pcm) / (2 * RATE)
                if isinstance(tts, PiperTTS) and not noise:
                    tts_rtf.append(synth_seconds / seconds)
                if noise:
                    pcm = _noisy(pcm, 10.0, seed=i)
                started = time.perf_counter()
                heard = await whisper.transcribe(pcm, RATE)
                stt_rtf.append((time.perf_counter() - started) / seconds)
                refs.append(sentence)
                heard_whisper.append(heard.text)
                heard_sphinx.append((await sphinx.transcribe(pcm, RATE)).text)
            label = f"{name}, {'white noise 10 dB SNR' if noise else 'clean'}"
            conditions[label] = {
                "whisper_wer": _wer(refs, heard_whisper),
                "pocketsphinx_wer": _wer(refs, heard_sphinx),
                "examples": list(zip(refs[:2], heard_whisper[:2], heard_sphinx[:2], strict=True)),
            }
            print(
                f"  {label}: whisper {conditions[label]['whisper_wer']:.1%}, "
                f"pocketsphinx {conditions[label]['pocketsphinx_wer']:.1%}",
                flush=True,
            )
    return {
        "sentences": len(sentences),
        "whisper_window": whisper.window,
        "conditions": conditions,
        "stt_rtf_p50": _pct(stt_rtf, 50),
        "tts_rtf_p50": _pct(tts_rtf, 50),
    }


def _clocks() -> tuple[float, float]:
    """Wall time and the CPU time of the whole process (every thread: CTranslate2,
    llama.cpp and onnxruntime run their own)."""
    return time.perf_counter(), time.process_time()


async def _stage_alone(
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


#: The pipeline's end-of-turn silence (``TurnDetectionConfig.silence_duration``).
SILENCE_SETTING = 0.5
_STAGES = ("vad_end_of_turn", "stt", "llm_first_sentence", "tts_first_chunk")


class _Timeline:
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


class _TimedSTT:
    def __init__(self, inner: WhisperSTT, timeline: _Timeline) -> None:
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


class _TimedLLM:
    def __init__(self, inner: LlamaCppLLM, timeline: _Timeline, first_clause: int) -> None:
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


class _TimedTTS:
    def __init__(self, inner: PiperTTS, timeline: _Timeline) -> None:
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


def _turn_row(marks: dict[str, tuple[float, float]], timeline: _Timeline) -> dict[str, float]:
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
    row["sum"] = sum(row[name] for name in _STAGES)
    row["overlap"] = row["sum"] - row["ttfa"]
    return row


async def bench_turns(
    whisper: WhisperSTT,
    llama: LlamaCppLLM,
    piper: PiperTTS,
    turns: int,
    speculate: bool | None = None,
    early_transcription: float | None = None,
    first_clause: int | None = None,
) -> dict[str, Any]:
    session = SessionConfig(
        instructions="You are a voice assistant. Answer in one or two short sentences.",
        max_output_tokens=60,
    )
    silence_after = 1.2
    rows: list[dict[str, float]] = []
    alone: list[dict[str, float]] = []
    timeline = _Timeline()
    defaults = PipelineConfig(speculate=speculate)
    speculate = defaults.speculates(llama, piper)
    early = defaults.early_transcription if early_transcription is None else early_transcription
    first_clause = defaults.first_clause if first_clause is None else first_clause
    # local_pipeline() with each stage timed (the same stages and settings)
    provider = PipelineProvider(
        PipelineConfig(
            stt=_TimedSTT(whisper, timeline),
            llm=_TimedLLM(llama, timeline, first_clause),
            tts=_TimedTTS(piper, timeline),
            vad_engine="silero",
            speculate=speculate,
            early_transcription=early,
            first_clause=first_clause,
            session=session,
        )
    )
    await provider.connect()
    events = provider.events()
    try:
        for turn in range(turns):
            question = QUESTIONS[turn % len(QUESTIONS)]
            pcm, _ = await _speak(piper, question)
            before = [
                ChatMessage(role=Role.SYSTEM, text=session.instructions or ""),
                *(
                    ChatMessage(role=item.role or Role.USER, text=item.text or "")
                    for item in provider.conversation
                ),
            ]
            marks: dict[str, tuple[float, float]] = {}
            timeline.calls.clear()
            playback = _Playback()
            watcher = asyncio.create_task(_watch(events, marks, playback))
            chunk = 640
            audio = pcm + bytes(2 * int(RATE * silence_after))
            samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
            last_voiced = int(np.nonzero(samples > 500)[0][-1]) + 1  # Piper pads with silence
            start = time.perf_counter()
            spoken_until = start + last_voiced / RATE  # when a speaker would stop
            for i in range(0, len(audio), chunk):  # real time: 20 ms per 20 ms chunk
                await provider.send_audio(audio[i : i + chunk])
                if "speech_end" not in marks and time.perf_counter() >= spoken_until:
                    marks["speech_end"] = (spoken_until, time.process_time())
                delay = start + (i + chunk) / (2 * RATE) - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await asyncio.wait_for(watcher, 300)
            if {"speech_end", "stopped", "first_audio"} <= marks.keys():
                rows.append(_turn_row(marks, timeline))
                rows[-1]["playback_stall"] = playback.stalled
            alone.append(
                await _stage_alone(whisper, llama, piper, pcm, before, session, first_clause)
            )
            print(
                f"  turn {turn + 1}: ttfa {rows[-1]['ttfa'] * 1000:.0f} ms" if rows else "",
                flush=True,
            )
    finally:
        await provider.disconnect()
    ttfa = [r["ttfa"] for r in rows]
    vad = statistics.median(r["vad_end_of_turn"] for r in rows)
    sums = [vad + a["stt"] + a["llm_first_sentence"] + a["tts_first_chunk"] for a in alone]
    in_pipeline = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    stage_sum = sum(in_pipeline[name] for name in _STAGES)
    return {
        "turns": len(rows),
        "speculative_replies": speculate,
        "early_transcription_after": early,
        "first_clause_chars": first_clause,
        "llm_threads": [llama.threads, llama.batch_threads],
        "whisper_window": whisper.window,
        "whisper_fit_fallbacks": [whisper.fit_fallbacks, whisper.fit_decodings],
        "ttfa_p50": _pct(ttfa, 50),
        "ttfa_p95": _pct(ttfa, 95),
        "ttfa_cpu_p50": statistics.median(r["ttfa_cpu"] for r in rows),
        "playback_stall_p50": _pct([r["playback_stall"] for r in rows], 50),
        "playback_stall_p95": _pct([r["playback_stall"] for r in rows], 95),
        "turns_with_a_stall_over_100ms": sum(r["playback_stall"] > 0.1 for r in rows),
        "stage_p50_in_pipeline": in_pipeline,
        "stage_share_of_sum_p50": {name: in_pipeline[name] / stage_sum for name in _STAGES},
        "vad_wait_share_of_ttfa_p50": in_pipeline["vad_end_of_turn"] / _pct(ttfa, 50),
        "overlap_p50": in_pipeline["overlap"],
        "stage_p50_alone": {k: statistics.median(a[k] for a in alone) for k in alone[0]},
        "sum_of_stages_alone_p50": _pct(sums, 50),
        "ttfa_over_sum_alone_p50": _pct(ttfa, 50) / _pct(sums, 50),
        "silence_duration_setting": SILENCE_SETTING,
        "notes": (
            "in-pipeline stages: each stage call the turn used, timed inside the pipeline "
            "(duration, CPU of the whole process meanwhile, and when it started relative "
            "to the end of speech: speech-to-text and, with speculative replies, the "
            "model and the synthesis start during the end-of-turn silence); overlap = "
            "sum of the in-pipeline stages - time to first audio; playback stall: "
            "seconds a listener playing the reply in real time from its first audio "
            "waited for the next audio (the next piece not ready in time)"
        ),
    }


class _Playback:
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


async def _watch(
    events: AsyncIterator[Event], marks: dict[str, tuple[float, float]], playback: _Playback
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


async def bench_llm(llama: LlamaCppLLM, runs: int = 5) -> dict[str, Any]:
    rates: list[float] = []
    firsts: list[float] = []
    for i in range(runs):
        messages = [ChatMessage(role=Role.USER, text=QUESTIONS[i % len(QUESTIONS)])]
        started = time.perf_counter()
        first: float | None = None
        count = 0
        async for chunk in llama.stream(messages, (), GenerationSettings(max_output_tokens=96)):
            if isinstance(chunk, TextChunk):
                count += 1
                first = first or time.perf_counter() - started
        total = time.perf_counter() - started
        if first is not None and count > 1:
            rates.append((count - 1) / (total - first))
            firsts.append(first)
    return {
        "tokens_per_second_p50": statistics.median(rates),
        "first_token_p50": statistics.median(firsts),
    }


def _read_results(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _write_results(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--sentences", type=int, default=30)
    parser.add_argument("--note", default="", help="e.g. 'machine shared with 4 other jobs'")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results file")
    parser.add_argument(
        "--whisper-window", choices=("fit", "full"), default="fit", help="WhisperSTT(window=)"
    )
    parser.add_argument(
        "--speculate",
        choices=("auto", "on", "off"),
        default="auto",
        help="start replies during the end-of-turn silence (PipelineConfig.speculate)",
    )
    parser.add_argument(
        "--llm-threads", type=int, default=None, help="LlamaCppLLM(threads=) (default: its own)"
    )
    parser.add_argument(
        "--early-transcription",
        type=float,
        default=None,
        help="PipelineConfig(early_transcription=) in seconds (default: its own)",
    )
    parser.add_argument(
        "--first-clause",
        type=int,
        default=None,
        help="PipelineConfig(first_clause=) in characters (default: its own)",
    )
    parser.add_argument(
        "--sections",
        default="llm,turns,wer,pauses",
        help="comma-separated subset to (re)run; the others are kept from the results file",
    )
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    output: Path = args.output
    previous = _read_results(output)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    whisper = WhisperSTT(window=args.whisper_window)
    piper = PiperTTS()
    llama = LlamaCppLLM(threads=args.llm_threads)
    speculate = {"auto": None, "on": True, "off": False}[args.speculate]
    loads: dict[str, float] = {}
    for name, stage in (("whisper", whisper), ("llama", llama), ("piper", piper)):
        started = time.perf_counter()
        await stage.open()
        loads[name] = time.perf_counter() - started
    print(f"{sorted(sections)} ...", flush=True)
    llm = await bench_llm(llama) if "llm" in sections else previous.get("llm")
    turns = (
        await bench_turns(
            whisper,
            llama,
            piper,
            args.turns,
            speculate,
            args.early_transcription,
            args.first_clause,
        )
        if "turns" in sections
        else previous.get("turns")
    )
    wer = await bench_wer(whisper, args.sentences) if "wer" in sections else previous.get("wer")
    pauses = await bench_pauses() if "pauses" in sections else previous.get("pauses")
    if "pauses" in sections:
        pauses["early"] = await bench_early_wer(whisper, SENTENCES[: args.sentences])
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "note": args.note},
        "load_seconds": loads,
        "llm": llm,
        "turns": turns,
        "wer": wer,
        "pauses": pauses,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    _write_results(output, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
