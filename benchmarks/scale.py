"""Part 2: N concurrent sessions of one client, measured on the client side alone.

The client runs in ``workers`` child processes (1 = what one voxengine process can
carry; more = sessions per core), each with its share of the sessions, on the chosen
event loop (``asyncio`` or ``uvloop``). The server side is a pool of ``servers`` fake
server processes (:class:`ServerPool`), sessions spread over them round-robin, so that
no single pure-Python fake is the bottleneck; every level reports each server's CPU and
loop lag, and flags ``server_limited`` when a server was saturated or lagging (then the
level says more about the fake than about the client).

Every session streams 20 ms input chunks on absolute deadlines while the fake streams
the reply paced at one 20 ms audio delta per 20 ms. Starts are spread over a stagger
period (golden-ratio 20 ms phases, over all workers), then the figures are taken over a
fixed window, on one clock (``perf_counter`` is ``CLOCK_MONOTONIC``, shared by all
processes):

* event delay: server send → application audio callback, for every audio delta the
  server sent inside the window, pooled over all sessions (p50/p90/p99/max);
* send lateness: how late each 20 ms input chunk started versus its deadline;
* real-time ratios: reply audio the server sent and the clients received, per session
  per second of window (1.0 = real time);
* CPU: client CPU in the window (each worker's ``process_time``; % of one core, per
  streamed audio second, and sessions per fully used core), the servers' CPU (from
  ``/proc``), and the CPU other processes used meanwhile (the machine may be shared);
* the workers' garbage-collector pauses.

Each worker freezes its start-up heap (``gc.freeze()``) after connecting, as a long
running server would. A level "holds" when the event delay p99 and the send lateness
p99 stay under 20 ms and the clients receive in real time what the servers sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from typing import Any

from benchmarks.compare import CHUNK_SECONDS, input_chunk, prompt, stream_audio
from benchmarks.fakeserver import AUDIO, FakeServerProcess, ServerSettings, SessionLog
from benchmarks.stats import (
    cpu_breakdown,
    cpu_ticks,
    others_cpu_seconds,
    percentile,
    processes_cpu_seconds,
    summary_ms,
)

__all__ = ["GcWatch", "ScalePlan", "ServerPool", "run_scale"]

BUDGET_SECONDS = 0.020
_GOLDEN = 0.6180339887498949
#: a server using more of its core than this, or lagging more, limits the level
SERVER_SATURATED_PCT = 90.0
SERVER_LAG_MS = 10.0


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
    """Session counts, processes and timing of the scale test."""

    sessions: tuple[int, ...] = (50, 100, 200, 400)
    window: float = 5.0
    settle: float = 1.5
    connect_batch: int = 50
    client: str = "fast"
    #: client processes sharing the sessions (1 = one process carries them all)
    workers: int = 1
    #: event loop of the client processes: "asyncio" or "uvloop"
    loop: str = "asyncio"
    #: pin client process ``i`` to CPU ``i`` (the servers get the other CPUs: ``pinning``)
    pin: bool = False


class ServerPool:
    """``count`` fake server processes; session ``i`` goes to server ``i % count``."""

    def __init__(self, settings: ServerSettings, count: int) -> None:
        self.servers = [FakeServerProcess(settings) for _ in range(max(1, count))]

    def __enter__(self) -> ServerPool:
        with contextlib.ExitStack() as stack:
            for server in self.servers:
                stack.enter_context(server)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @property
    def first(self) -> FakeServerProcess:
        """The first server (the comparison runs on it alone)."""
        return self.servers[0]

    def url(self, index: int) -> str:
        """The URL of the server that session ``index`` uses."""
        return self.servers[index % len(self.servers)].url

    def logs(self, models: Sequence[str]) -> dict[str, SessionLog]:
        """The send logs of the sessions ``models`` (session ``i`` is ``models[i]``)."""
        out: dict[str, SessionLog] = {}
        for number, server in enumerate(self.servers):
            out.update(server.logs(list(models[number :: len(self.servers)])))
        return out

    def cpu_seconds(self) -> list[float]:
        """CPU seconds used so far, per server."""
        return [server.cpu_seconds() for server in self.servers]

    def health(self, start: float, end: float) -> list[dict[str, float]]:
        """Loop lag and GC pauses of each server in ``[start, end)``."""
        return [server.health(start, end) for server in self.servers]

    @property
    def pids(self) -> set[int]:
        """The servers' process ids."""
        return {server.pid for server in self.servers if server.pid is not None}


async def _group(
    plan: ScalePlan,
    urls: Sequence[str],
    models: Sequence[str],
    indices: Sequence[int],
    total: int,
    control: Connection,
) -> dict[str, Any]:
    """One worker's sessions: connect, report ready, run from the parent's start time."""
    from benchmarks.clients import CLIENTS, Recorder

    recorders = [Recorder() for _ in models]
    clients = [CLIENTS[plan.client](rec) for rec in recorders]
    for start in range(0, len(clients), plan.connect_batch):
        batch = range(start, min(start + plan.connect_batch, len(clients)))
        await asyncio.gather(*(clients[i].connect(urls[i], models[i]) for i in batch))
    gc.collect()
    gc.freeze()  # what a long-running server does after start-up
    loop = asyncio.get_running_loop()
    control.send("ready")
    go_at, window_start, window_end, words = await loop.run_in_executor(None, control.recv)
    text, chunk = prompt(words), input_chunk()
    stop = asyncio.Event()
    lateness: list[tuple[float, float]] = []
    stagger = window_start - plan.settle - go_at

    async def drive(local: int) -> None:
        index = indices[local]
        phase = CHUNK_SECONDS * ((index * _GOLDEN) % 1.0)
        await asyncio.sleep(max(0.0, go_at + stagger * index / total + phase - time.perf_counter()))
        await clients[local].send_text(text)
        await stream_audio(clients[local].send_audio, stop, chunk=chunk, lateness=lateness)

    drivers = [asyncio.create_task(drive(i)) for i in range(len(clients))]
    await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
    cpu = time.process_time()
    with GcWatch() as collections:
        await asyncio.sleep(max(0.0, window_end - time.perf_counter()))
    cpu = time.process_time() - cpu
    stop.set()
    await asyncio.gather(*drivers)
    for start in range(0, len(clients), plan.connect_batch):
        await asyncio.gather(*(c.close() for c in clients[start : start + plan.connect_batch]))
    gc.unfreeze()
    return {
        "audio": {model: rec.audio for model, rec in zip(models, recorders, strict=True)},
        "lateness": [late for at, late in lateness if window_start <= at < window_end],
        "cpu_seconds": cpu,
        "gc": collections.summary(window_end - window_start),
    }


def _worker(
    control: Connection,
    plan: ScalePlan,
    urls: list[str],
    models: list[str],
    indices: list[int],
    total: int,
    cpu: int | None,
) -> None:
    from benchmarks.loops import run

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    result = run(_group(plan, urls, models, indices, total, control), plan.loop)
    control.send(result)


async def _recv(control: Connection, timeout: float) -> Any:
    loop = asyncio.get_running_loop()
    ready = await loop.run_in_executor(None, control.poll, timeout)
    if not ready:
        raise TimeoutError("a scale worker did not answer")
    return control.recv()


async def run_level(pool: ServerPool, count: int, plan: ScalePlan) -> dict[str, Any]:
    """One level of the scale test with ``count`` sessions over ``plan.workers`` processes."""
    models = [f"gpt-realtime-scale{count}-{plan.loop}-{plan.workers}-{i}" for i in range(count)]
    urls = [pool.url(i) for i in range(count)]
    workers = max(1, min(plan.workers, count))
    context = multiprocessing.get_context("spawn")
    controls: list[Connection] = []
    processes = []
    for number in range(workers):
        mine = list(range(number, count, workers))
        parent, child = context.Pipe()
        process = context.Process(
            target=_worker,
            args=(
                child,
                plan,
                [urls[i] for i in mine],
                [models[i] for i in mine],
                mine,
                count,
                number if plan.pin else None,
            ),
            daemon=True,
        )
        process.start()
        controls.append(parent)
        processes.append(process)
    try:
        for control in controls:
            tag = await _recv(control, 120)
            assert tag == "ready", tag
        stagger = max(1.0, count / 200)
        words = math.ceil((stagger + plan.settle + plan.window + 3.0) / 0.3)
        go_at = time.perf_counter() + 0.2
        start = go_at + stagger + plan.settle
        end = start + plan.window
        for control in controls:
            control.send((go_at, start, end, words))
        await asyncio.sleep(max(0.0, start - time.perf_counter()))
        server_cpu = pool.cpu_seconds()
        busy = processes_cpu_seconds()
        ticks = cpu_ticks()
        await asyncio.sleep(max(0.0, end - time.perf_counter()))
        per_cpu = cpu_breakdown(ticks, cpu_ticks())
        server_cpu = [b - a for a, b in zip(server_cpu, pool.cpu_seconds(), strict=True)]
        mine_pids = {os.getpid(), *pool.pids, *(p.pid for p in processes if p.pid is not None)}
        others = others_cpu_seconds(busy, processes_cpu_seconds(), mine_pids)
        parts = [await _recv(control, 120) for control in controls]
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
    logs = pool.logs(models)
    server_health = pool.health(start, end)
    audio: dict[str, list[float]] = {}
    for part in parts:
        audio.update(part["audio"])
    late = [x for part in parts for x in part["lateness"]]
    cpu_each = [part["cpu_seconds"] for part in parts]
    cpu = sum(cpu_each)

    delays: list[float] = []
    sent_in_window = received_in_window = missing = 0
    for model in models:
        received = audio[model]
        for index, stamp in enumerate(logs[model].sent[AUDIO]):
            if not start <= stamp < end:
                continue
            sent_in_window += 1
            if index < len(received):
                delays.append(received[index] - stamp)
            else:
                missing += 1
        received_in_window += sum(1 for t in received if start <= t < end)
    window = end - start
    nominal = count * window / CHUNK_SECONDS
    audio_seconds = received_in_window * CHUNK_SECONDS
    delay = summary_ms(delays)
    server_pct = [100 * s / window for s in server_cpu]
    client_pct = 100 * cpu / window
    result = {
        "sessions": count,
        "workers": workers,
        "loop": plan.loop,
        "servers": len(pool.servers),
        "pinned": plan.pin,
        "window_seconds": window,
        "event_delay": delay,
        "send_lateness": summary_ms(late),
        "server_realtime_ratio": sent_in_window / nominal,
        "client_realtime_ratio": received_in_window / nominal,
        "missing_events": missing,
        "client_cpu_pct_of_core": client_pct,
        "client_cpu_pct_per_worker": [100 * c / window for c in cpu_each],
        "client_cpu_ms_per_audio_second": 1e3 * cpu / audio_seconds if audio_seconds else None,
        # sessions one fully used core would carry at this level's cost per session
        "sessions_per_core": count / (client_pct / 100) if client_pct > 0 else None,
        "server_cpu_pct_of_core": server_pct,
        "other_processes_cpu_pct_of_core": None if others is None else 100 * others / window,
        # per CPU: softirq/irq (the loopback stack's receive side), steal (the hypervisor)
        "cpu_breakdown_pct": per_cpu,
        "gc": [part["gc"] for part in parts],
        "server_health": server_health,
    }
    result["server_limited"] = any(p > SERVER_SATURATED_PCT for p in server_pct) or any(
        max(h["loop_lag_p99_ms"], h.get("pace_lateness_p99_ms", 0.0)) > SERVER_LAG_MS
        for h in server_health
    )
    result["holds"] = bool(
        delay["p99_ms"] < BUDGET_SECONDS * 1e3
        and percentile(late, 99) < BUDGET_SECONDS
        and missing == 0
        and received_in_window >= 0.98 * sent_in_window
    )
    return result


async def run_scale(
    pool: ServerPool, plan: ScalePlan, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Every level of ``plan``; ``breaks_at`` is the first level that does not hold."""
    from benchmarks.clients import CLIENTS

    levels = []
    for count in plan.sessions:
        level = await run_level(pool, count, plan)
        levels.append(level)
        servers = "/".join(f"{p:.0f}" for p in level["server_cpu_pct_of_core"])
        lag = max(h["loop_lag_p99_ms"] for h in level["server_health"])
        pace = max(h.get("pace_lateness_p99_ms", 0.0) for h in level["server_health"])
        log(
            f"  N={count:4d}: event delay p50 {level['event_delay']['p50_ms']:.2f} ms"
            f" p99 {level['event_delay']['p99_ms']:.2f} ms,"
            f" send lateness p99 {level['send_lateness']['p99_ms']:.2f} ms,"
            f" client CPU {level['client_cpu_pct_of_core']:.0f}% of a core"
            f" ({level['workers']} process(es)), servers CPU {servers}% lag p99 {lag:.1f} ms"
            f" (sends late p99 {pace:.1f} ms),"
            f" others {level['other_processes_cpu_pct_of_core'] or 0:.0f}%,"
            f" real time: server {level['server_realtime_ratio']:.2f}"
            f" client {level['client_realtime_ratio']:.2f}"
            f" -> {'holds' if level['holds'] else 'BREAKS'}"
            f"{' (server-limited)' if level['server_limited'] else ''}"
        )
    breaks = next((lv["sessions"] for lv in levels if not lv["holds"]), None)
    label = f"{plan.loop}, {plan.workers} client process{'es' if plan.workers > 1 else ''}"
    if plan.client != "fast":
        label = f"{plan.client}: {label}"
    return {
        "label": label,
        "client": CLIENTS[plan.client].name,
        "loop": plan.loop,
        "workers": plan.workers,
        "levels": levels,
        "breaks_at": breaks,
    }


def pinning(workers: int) -> tuple[int, ...]:
    """The CPUs left to the servers when client processes ``0..workers-1`` are pinned.

    Raises:
        ValueError: not Linux, or no CPU would be left for the servers.
    """
    if not hasattr(os, "sched_getaffinity"):
        raise ValueError("--pin needs Linux (sched_setaffinity)")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) <= workers or cpus[:workers] != list(range(workers)):
        raise ValueError(f"--pin: {len(cpus)} CPUs, none left for the servers beside {workers}")
    return tuple(cpus[workers:])


def plans(base: ScalePlan, loops: Sequence[str], workers: Sequence[int]) -> list[ScalePlan]:
    """One plan per (loop, workers) combination."""
    return [replace(base, loop=lp, workers=w) for lp in loops for w in workers]
