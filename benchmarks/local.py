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
from pathlib import Path
from typing import Any

import numpy as np

from voxengine.config import SessionConfig
from voxengine.events import Role
from voxengine.providers.pipeline import (
    ChatMessage,
    GenerationSettings,
    LlamaCppLLM,
    PipelineConfig,
    PipelineProvider,
    PiperTTS,
    TextChunk,
    WhisperSTT,
)

from .local_pauses import bench_early_wer, bench_pauses
from .local_speech import RATE, SENTENCES, pct, speak
from .local_timing import (
    SILENCE_SETTING,
    STAGES,
    Playback,
    TimedLLM,
    TimedSTT,
    TimedTTS,
    Timeline,
    stage_alone,
    turn_row,
    watch,
)
from .local_wer import bench_wer

RESULTS = Path(__file__).parent / "results" / "local.json"

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
    timeline = Timeline()
    defaults = PipelineConfig(speculate=speculate)
    speculate = defaults.speculates(llama, piper)
    early = defaults.early_transcription if early_transcription is None else early_transcription
    first_clause = defaults.first_clause if first_clause is None else first_clause
    # local_pipeline() with each stage timed (the same stages and settings)
    provider = PipelineProvider(
        PipelineConfig(
            stt=TimedSTT(whisper, timeline),
            llm=TimedLLM(llama, timeline, first_clause),
            tts=TimedTTS(piper, timeline),
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
            pcm, _ = await speak(piper, question)
            before = [
                ChatMessage(role=Role.SYSTEM, text=session.instructions or ""),
                *(
                    ChatMessage(role=item.role or Role.USER, text=item.text or "")
                    for item in provider.conversation
                ),
            ]
            marks: dict[str, tuple[float, float]] = {}
            timeline.calls.clear()
            playback = Playback()
            watcher = asyncio.create_task(watch(events, marks, playback))
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
                rows.append(turn_row(marks, timeline))
                rows[-1]["playback_stall"] = playback.stalled
            alone.append(
                await stage_alone(whisper, llama, piper, pcm, before, session, first_clause)
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
    stage_sum = sum(in_pipeline[name] for name in STAGES)
    return {
        "turns": len(rows),
        "speculative_replies": speculate,
        "early_transcription_after": early,
        "first_clause_chars": first_clause,
        "llm_threads": [llama.threads, llama.batch_threads],
        "whisper_window": whisper.window,
        "whisper_fit_fallbacks": [whisper.fit_fallbacks, whisper.fit_decodings],
        "ttfa_p50": pct(ttfa, 50),
        "ttfa_p95": pct(ttfa, 95),
        "ttfa_cpu_p50": statistics.median(r["ttfa_cpu"] for r in rows),
        "playback_stall_p50": pct([r["playback_stall"] for r in rows], 50),
        "playback_stall_p95": pct([r["playback_stall"] for r in rows], 95),
        "turns_with_a_stall_over_100ms": sum(r["playback_stall"] > 0.1 for r in rows),
        "stage_p50_in_pipeline": in_pipeline,
        "stage_share_of_sum_p50": {name: in_pipeline[name] / stage_sum for name in STAGES},
        "vad_wait_share_of_ttfa_p50": in_pipeline["vad_end_of_turn"] / pct(ttfa, 50),
        "overlap_p50": in_pipeline["overlap"],
        "stage_p50_alone": {k: statistics.median(a[k] for a in alone) for k in alone[0]},
        "sum_of_stages_alone_p50": pct(sums, 50),
        "ttfa_over_sum_alone_p50": pct(ttfa, 50) / pct(sums, 50),
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
