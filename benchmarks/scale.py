"""Part 2: N concurrent ``VoiceEngine(mode="fast")`` sessions in one process.

Every session streams 20 ms input chunks in real time (absolute deadlines) while the
fake server, in its own process, streams the reply paced at one 20 ms audio delta per
20 ms. Session starts are spread over a stagger period (so their 20 ms phases differ,
as independent calls' would), then the figures are taken over a fixed window:

* event delay: server send → ``on_audio_response`` callback, for every audio delta the
  server sent inside the window (p50/p99/max);
* send lateness: how late each 20 ms input chunk started versus its deadline;
* real-time ratios: reply audio the server sent, and the clients received, per session
  per second of window (1.0 = real time);
* CPU: client process CPU seconds per streamed audio second (and % of one core), the
  server process's CPU, to show when the fake rather than the client is the limit, and
  the CPU other processes on the machine used meanwhile (the machine is shared);
* garbage-collector pauses during the window.

Each level runs ``tries`` times (the machine is shared; the try during which other
processes used the least CPU is kept) after ``gc.freeze()`` of the start-up heap.

A level "holds" when the event delay p99 and the send lateness p99 stay under 20 ms
and the clients receive what the server sent in real time.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.clients import CLIENTS, BenchClient, Recorder
from benchmarks.compare import CHUNK_SECONDS, input_chunk, prompt, stream_audio
from benchmarks.fakeserver import AUDIO, FakeServerProcess
from benchmarks.stats import others_cpu_seconds, percentile, processes_cpu_seconds, summary_ms

__all__ = ["GcWatch", "ScalePlan", "run_scale"]

BUDGET_SECONDS = 0.020
_GOLDEN = 0.6180339887498949


class GcWatch:
    """Collects garbage-collector pauses (generation, seconds) while installed."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self, seconds: float) -> dict[str, float]:
        """Collections per second and the longest pause, per generation (ms)."""
        out: dict[str, float] = {}
        for generation in (0, 1, 2):
            pauses = [p for g, p in self.pauses if g == generation]
            out[f"gen{generation}_per_second"] = len(pauses) / seconds
            out[f"gen{generation}_max_ms"] = max(pauses, default=0.0) * 1e3
        return out


@dataclass(frozen=True, slots=True)
class ScalePlan:
    """Session counts and timing of the scale test."""

    sessions: tuple[int, ...] = (50, 100, 200, 400)
    window: float = 5.0
    settle: float = 1.5
    connect_batch: int = 50
    client: str = "fast"
    tries: int = 1


async def _connect_all(
    clients: Sequence[BenchClient], url: str, models: Sequence[str], batch: int
) -> None:
    for start in range(0, len(clients), batch):
        await asyncio.gather(
            *(
                client.connect(url, model)
                for client, model in zip(
                    clients[start : start + batch], models[start : start + batch], strict=True
                )
            )
        )


async def run_level(server: FakeServerProcess, count: int, plan: ScalePlan) -> dict[str, Any]:
    """One level of the scale test with ``count`` sessions."""
    recorders = [Recorder() for _ in range(count)]
    clients = [CLIENTS[plan.client](rec) for rec in recorders]
    models = [f"gpt-realtime-scale{count}-{i}" for i in range(count)]
    await _connect_all(clients, server.url, models, plan.connect_batch)
    stagger = max(1.0, count / 200)
    words = math.ceil((stagger + plan.settle + plan.window + 3.0) / 0.3)
    text = prompt(words)
    chunk = input_chunk()
    stop = asyncio.Event()
    lateness: list[float] = []

    async def drive(index: int) -> None:
        # Spread the starts over the stagger period and the 20 ms phases evenly (golden
        # ratio sequence), so no two sessions tick together by construction.
        phase = CHUNK_SECONDS * ((index * _GOLDEN) % 1.0)
        await asyncio.sleep(stagger * index / count + phase)
        await clients[index].send_text(text)
        await stream_audio(clients[index].send_audio, stop, chunk=chunk, lateness=lateness)

    drivers = [asyncio.create_task(drive(i)) for i in range(count)]
    await asyncio.sleep(stagger + plan.settle)
    lateness.clear()
    server_cpu = server.cpu_seconds()
    busy = processes_cpu_seconds()
    cpu = time.process_time()
    start = time.perf_counter()
    with GcWatch() as collections:
        await asyncio.sleep(plan.window)
    end = time.perf_counter()
    cpu = time.process_time() - cpu
    server_cpu = server.cpu_seconds() - server_cpu
    mine = {os.getpid(), *([server.pid] if server.pid is not None else [])}
    others = others_cpu_seconds(busy, processes_cpu_seconds(), mine)
    late = list(lateness)
    stop.set()
    await asyncio.gather(*drivers)
    for begin in range(0, count, plan.connect_batch):
        await asyncio.gather(*(c.close() for c in clients[begin : begin + plan.connect_batch]))
    logs = server.logs(models)
    server_health = server.health(start, end)

    delays: list[float] = []
    sent_in_window = received_in_window = missing = 0
    for model, rec in zip(models, recorders, strict=True):
        sent = logs[model].sent[AUDIO]
        for index, stamp in enumerate(sent):
            if not start <= stamp < end:
                continue
            sent_in_window += 1
            if index < len(rec.audio):
                delays.append(rec.audio[index] - stamp)
            else:
                missing += 1
        received_in_window += sum(1 for t in rec.audio if start <= t < end)
    window = end - start
    nominal = count * window / CHUNK_SECONDS
    audio_seconds = received_in_window * CHUNK_SECONDS
    delay = summary_ms(delays)
    result = {
        "sessions": count,
        "window_seconds": window,
        "event_delay": delay,
        "send_lateness": summary_ms(late),
        "server_realtime_ratio": sent_in_window / nominal,
        "client_realtime_ratio": received_in_window / nominal,
        "missing_events": missing,
        "client_cpu_pct_of_core": 100 * cpu / window,
        "client_cpu_ms_per_audio_second": 1e3 * cpu / audio_seconds if audio_seconds else None,
        "server_cpu_pct_of_core": 100 * server_cpu / window,
        "other_processes_cpu_pct_of_core": None if others is None else 100 * others / window,
        "gc": collections.summary(window),
        "server_health": server_health,
    }
    result["holds"] = bool(
        delay["p99_ms"] < BUDGET_SECONDS * 1e3
        and percentile(late, 99) < BUDGET_SECONDS
        and missing == 0
        and received_in_window >= 0.98 * sent_in_window
    )
    return result


async def run_scale(
    server: FakeServerProcess, plan: ScalePlan, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every level of ``plan``; ``breaks_at`` is the first level that does not hold."""
    levels = []
    for count in plan.sessions:
        tries = []
        for _ in range(plan.tries):
            gc.collect()
            gc.freeze()  # what a long-running server does after start-up; per-session
            tries.append(await run_level(server, count, plan))  # objects stay collectable
            gc.unfreeze()
        # The machine is shared: keep the try other processes disturbed least.
        level = min(tries, key=lambda lv: lv["other_processes_cpu_pct_of_core"] or 0.0)
        level["tries"] = len(tries)
        levels.append(level)
        log(
            f"  N={count:4d}: event delay p50 {level['event_delay']['p50_ms']:.2f} ms"
            f" p99 {level['event_delay']['p99_ms']:.2f} ms,"
            f" send lateness p99 {level['send_lateness']['p99_ms']:.2f} ms,"
            f" client CPU {level['client_cpu_pct_of_core']:.0f}% of a core,"
            f" server CPU {level['server_cpu_pct_of_core']:.0f}%,"
            f" others {level['other_processes_cpu_pct_of_core'] or 0:.0f}%,"
            f" real time: server {level['server_realtime_ratio']:.2f}"
            f" client {level['client_realtime_ratio']:.2f},"
            f" gen2 GC max {level['gc']['gen2_max_ms']:.0f} ms"
            f" -> {'holds' if level['holds'] else 'BREAKS'}"
        )
    breaks = next((lv["sessions"] for lv in levels if not lv["holds"]), None)
    return {"client": CLIENTS[plan.client].name, "levels": levels, "breaks_at": breaks}
