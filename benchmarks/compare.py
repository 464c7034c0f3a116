"""Part 1: the same scripted session for every client, side by side.

Script (per client, per repeat): connect; stream 20 ms chunks of quiet input audio in
real time (below the fake's VAD threshold, so it never starts a turn) for the whole
session; ``turns`` times: ``send_text`` (a ``words``-word message; the fake echoes it
as ``words * 0.3`` s of speech, one 20 ms audio delta every ``pace`` s) and wait for
the end of the response; close.

Figures:

* event delay: server ``perf_counter`` right before the frame is written → client
  ``perf_counter`` in the application callback, for every audio delta and assistant
  transcript delta (n-th sent ↔ n-th received). "Added" = client minus the floor.
* time to first audio: ``send_text`` call → first audio callback (includes the fake's
  own response start and one pacing interval, the same for every client).
* CPU per audio second: client process CPU time (``time.process_time``) from the first
  ``send_text`` to the last response end, divided by seconds of reply audio received.
  The fake runs in another process; the figure includes the input audio streaming.
* memory per session: RSS growth over ``n`` idle connected sessions, divided by ``n``,
  each client in a fresh child process (:mod:`benchmarks.memory`).
* delays are pooled over every frame of every session for p50/p99 (the ratios use the
  pooled figures); per-session figures and their medians are kept beside them.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.clients import CLIENTS, BenchClient, Recorder
from benchmarks.fakeserver import AUDIO, TRANSCRIPT, FakeServerProcess
from benchmarks.memory import rss_per_session
from benchmarks.readstamps import ReadStamps, installed
from benchmarks.stats import median, summary_ms

__all__ = ["SessionPlan", "input_chunk", "match_delays", "run_comparison", "stream_audio"]

BYTES_PER_SECOND = 48_000  # PCM16 mono 24 kHz
CHUNK_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """The scripted session."""

    turns: int = 2
    words: int = 12
    repeats: int = 4
    #: the floor and fast mode run this many times per round (paired, back to back)
    pair_repeats: int = 2
    memory_sessions: int = 100
    turn_timeout: float = 60.0


def input_chunk(seconds: float = CHUNK_SECONDS, seed: int = 7) -> bytes:
    """Quiet (about -60 dBFS) deterministic noise: real samples the fake's VAD ignores."""
    samples = np.random.default_rng(seed).integers(-40, 41, round(24_000 * seconds))
    return samples.astype("<i2").tobytes()


def prompt(words: int) -> str:
    """The user message; the fake speaks it back, one 0.3 s word at a time."""
    return " ".join(f"word{i}" for i in range(words))


async def stream_audio(
    send: Callable[[bytes], Any],
    stop: asyncio.Event,
    *,
    chunk: bytes,
    period: float = CHUNK_SECONDS,
    lateness: list[tuple[float, float]] | None = None,
) -> int:
    """Send ``chunk`` every ``period`` s on absolute deadlines until ``stop``; returns count.

    ``lateness`` (if given) collects ``(deadline, how late the send started)`` per send.
    """
    perf_counter = time.perf_counter
    deadline = perf_counter()
    sent = 0
    while not stop.is_set():
        if lateness is not None:
            lateness.append((deadline, perf_counter() - deadline))
        await send(chunk)
        sent += 1
        deadline += period
        pause = deadline - perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
    return sent


def match_delays(sent: Sequence[float], received: Sequence[float]) -> list[float]:
    """Pair the n-th send with the n-th receipt; receipt minus send, in seconds."""
    return [r - s for s, r in zip(sent, received, strict=False)]


async def run_session(
    cls: type[BenchClient],
    server: FakeServerProcess,
    plan: SessionPlan,
    model: str,
    stamps: ReadStamps | None = None,
) -> dict[str, Any]:
    """One scripted session; returns raw per-event delays and per-session figures.

    ``stamps`` (installed by the caller) gives the socket-read time of every audio
    frame, for the in-process delay; only this session may run meanwhile.
    """
    rec = Recorder()
    client = cls(rec)
    await client.connect(server.url, model)
    if stamps is not None:
        stamps.clear()
    stop = asyncio.Event()
    streamer = asyncio.create_task(stream_audio(client.send_audio, stop, chunk=input_chunk()))
    text = prompt(plan.words)
    first_audio: list[float] = []
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for _ in range(plan.turns):
        rec.done.clear()
        seen = len(rec.audio)
        started = time.perf_counter()
        await client.send_text(text)
        await asyncio.wait_for(rec.done.wait(), plan.turn_timeout)
        if len(rec.audio) > seen:
            first_audio.append(rec.audio[seen] - started)
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    stop.set()
    await streamer
    await client.close()
    log = server.logs([model])[model]
    audio = match_delays(log.sent[AUDIO], rec.audio)
    transcript = match_delays(log.sent[TRANSCRIPT], rec.transcript)
    read = stamps.audio if stamps is not None else []
    in_process = match_delays(read, rec.audio) if len(read) == len(rec.audio) else []
    audio_seconds = rec.audio_bytes / BYTES_PER_SECOND
    return {
        "audio_delays": audio,
        "event_delays": audio + transcript,
        "in_process_delays": in_process,
        "first_audio": first_audio,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "audio_seconds": audio_seconds,
        "counts": {
            "audio_sent": len(log.sent[AUDIO]),
            "audio_received": len(rec.audio),
            "transcript_sent": len(log.sent[TRANSCRIPT]),
            "transcript_received": len(rec.transcript),
        },
    }


def _aggregate(name: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pooled figures over every frame of every session (the headline), with the
    per-session figures and their medians beside them."""
    per_run = [summary_ms(r["event_delays"]) for r in runs]
    in_process = [summary_ms(r["in_process_delays"]) for r in runs if r["in_process_delays"]]
    audio_runs = [summary_ms(r["audio_delays"]) for r in runs]
    pooled = summary_ms([d for r in runs for d in r["event_delays"]])
    pooled_audio = summary_ms([d for r in runs for d in r["audio_delays"]])
    pooled_in = summary_ms([d for r in runs for d in r["in_process_delays"]])
    first_audio = [t for r in runs for t in r["first_audio"]]
    cpu = sum(r["cpu_seconds"] for r in runs)
    audio_seconds = sum(r["audio_seconds"] for r in runs)
    counts = runs[-1]["counts"]
    return {
        "client": name,
        "repeats": len(runs),
        # pooled over all frames of all sessions
        "event_delay_p50_ms": pooled["p50_ms"],
        "event_delay_p99_ms": pooled["p99_ms"],
        "audio_delay_p50_ms": pooled_audio["p50_ms"],
        "audio_delay_p99_ms": pooled_audio["p99_ms"],
        "event_delay_pooled": pooled,
        # socket read (websockets has parsed the frame) -> callback, audio frames, pooled
        "in_process_p50_us": 1e3 * pooled_in["p50_ms"],
        "in_process_p99_us": 1e3 * pooled_in["p99_ms"],
        "in_process_frames": int(pooled_in["count"]),
        # per session, and the median over sessions (shown beside, not used for ratios)
        "event_delay_p50_ms_per_repeat": [s["p50_ms"] for s in per_run],
        "event_delay_p99_ms_per_repeat": [s["p99_ms"] for s in per_run],
        "event_delay_p50_ms_session_median": median([s["p50_ms"] for s in per_run]),
        "event_delay_p99_ms_session_median": median([s["p99_ms"] for s in per_run]),
        "audio_delay_p99_ms_session_median": median([s["p99_ms"] for s in audio_runs]),
        "in_process_p50_us_per_repeat": [1e3 * s["p50_ms"] for s in in_process],
        "in_process_p99_us_per_repeat": [1e3 * s["p99_ms"] for s in in_process],
        "in_process_p50_us_session_median": median([1e3 * s["p50_ms"] for s in in_process]),
        "in_process_p99_us_session_median": median([1e3 * s["p99_ms"] for s in in_process]),
        "first_audio_ms": median(first_audio) * 1e3,
        # total client CPU over total reply audio (every session pooled)
        "cpu_ms_per_audio_second": 1e3 * cpu / audio_seconds if audio_seconds else float("nan"),
        "cpu_ms_per_audio_second_per_repeat": [
            1e3 * r["cpu_seconds"] / r["audio_seconds"] for r in runs if r["audio_seconds"]
        ],
        "cpu_utilisation_pct": median([100 * r["cpu_seconds"] / r["wall_seconds"] for r in runs]),
        "events_per_run": counts,
        "in_process_complete": len(in_process) == len(runs),
        "complete": all(
            r["counts"]["audio_sent"] == r["counts"]["audio_received"]
            and r["counts"]["transcript_sent"] == r["counts"]["transcript_received"]
            for r in runs
        ),
    }


async def run_comparison(
    server: FakeServerProcess,
    plan: SessionPlan,
    names: Sequence[str],
    log: Callable[[str], None] = print,
    loop: str = "asyncio",
) -> dict[str, Any]:
    """Warm up each client, then ``plan.repeats`` rounds over all clients, then memory.

    ``loop`` is the event loop the memory children run (the caller runs this on it).
    """
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    errors: dict[str, str] = {}
    warm = SessionPlan(turns=1, words=3, repeats=1, memory_sessions=0, pair_repeats=1)
    active = list(names)
    for name in names:
        try:
            await run_session(CLIENTS[name], server, warm, f"gpt-realtime-warm-{name}")
        except Exception as exc:  # a peer that cannot run here is reported, not fatal
            errors[name] = f"{type(exc).__name__}: {exc}"
            active.remove(name)
            log(f"  {name}: cannot run ({errors[name]})")
    # The floor (read-hook client) and fast mode run back to back in every round
    # (alternating which goes first), so each pair sees the same machine; the rest rotate.
    pair = [name for name in ("floor", "fast") if name in active]
    rest = [name for name in active if name not in pair]
    with installed() as stamps:
        for repeat in range(plan.repeats):
            shift = repeat % len(rest) if rest else 0
            pairs: list[str] = []
            for index in range(plan.pair_repeats):  # floor fast | fast floor | ...
                pairs += pair if (repeat + index) % 2 == 0 else pair[::-1]
            order = pairs + rest[shift:] + rest[:shift]
            for name in order:
                gc.collect()
                result = await run_session(
                    CLIENTS[name], server, plan, f"gpt-realtime-{name}-{len(runs[name])}", stamps
                )
                runs[name].append(result)
                p50 = median(result["event_delays"]) * 1e3
                inner = median(result["in_process_delays"]) * 1e6
                log(
                    f"  repeat {repeat + 1}/{plan.repeats} {name:16s} event delay p50"
                    f" {p50:.3f} ms, in-process p50 {inner:.1f} us"
                )
    clients = {name: _aggregate(CLIENTS[name].name, runs[name]) for name in active}
    if plan.memory_sessions:
        for name in active:
            models = [f"gpt-realtime-mem-{name}-{i}" for i in range(plan.memory_sessions + 2)]
            try:
                per_session = await rss_per_session(name, [server.url], models, loop=loop)
            finally:
                server.logs(models)
            clients[name]["memory_kib_per_session"] = per_session / 1024
            log(f"  memory (RSS) {name:16s} {per_session / 1024:.1f} KiB/session")
    return {"clients": clients, "errors": errors}
