"""Serving benchmark: concurrent callers one server process holds, and the latency it adds.

    python -m benchmarks.serving                       # 1, 10, 25 callers; all systems
    python -m benchmarks.serving --callers 1,5 --seconds 9 --systems voxengine-twilio

Systems (each a separate run of N simultaneous callers, one server process each):

* ``voxengine-twilio``: voxengine's Twilio routes; callers are the fake Twilio
  (:mod:`voxengine.testing.fake_twilio`): signed webhook, μ-law 8 kHz in real time,
  marks acknowledged as the audio "plays";
* ``voxengine-browser``: voxengine's browser WebSocket endpoint; callers are the Python
  client of the browser protocol (:mod:`voxengine.serve.client`), 16 kHz in, 24 kHz out;
* ``pipecat-twilio``: Pipecat's FastAPI WebSocket transport with its
  ``TwilioFrameSerializer`` and ``OpenAIRealtimeLLMService``, called by the same fake
  Twilio (skipped when pipecat-ai is not installed).

Every system talks to the same provider fake (benchmarks/serving_parts.py: the bundled
fake OpenAI Realtime server in its own process, paced: reply audio in 20 ms deltas every
20 ms, its server VAD answering each utterance). Each caller repeats: 1.2 s of
speech-like audio, then 3 s of silence (the reply plays in it), for ``--seconds``.

Added latency (pooled over callers, p50/p99):

* **in**: for each 20 ms frame a caller sends, from just before it is sent to the moment
  the provider has received caller audio up to the end of that frame (so resampling
  filter delay and buffering count);
* **out**: for each 20 ms delta the provider sends, from just before it is sent to the
  moment the caller has received reply audio up to the end of that delta.

Stamps are ``time.perf_counter()`` (``CLOCK_MONOTONIC``) in three processes. Results go
to benchmarks/results/serving.json. On a shared machine every figure is "measured under
load": re-run on a quiet machine for reference numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import importlib.util
import json
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.serving_parts import (
    AUTH_TOKEN,
    SECRET,
    ProviderLog,
    Subprocess,
    model_for,
    provider_main,
    server_main,
)
from benchmarks.stats import percentile, process_cpu_seconds
from voxengine.testing import synthesize_speech

RESULTS = Path(__file__).parent / "results" / "serving.json"
SYSTEMS = ("voxengine-twilio", "voxengine-browser", "pipecat-twilio")
_FRAME = 0.02
#: A chunk counts as arrived when all but this much of it has (resampler rounding).
_TOLERANCE = 0.001


@dataclass(slots=True)
class CallerRecord:
    """One caller's stamps."""

    tag: str
    sent: list[float] = field(default_factory=list)  # perf_counter before frame i
    received: list[tuple[float, float]] = field(default_factory=list)  # (t, seconds so far)
    violations: list[str] = field(default_factory=list)  # what Twilio would not accept
    error: str | None = None


def _script(seconds: float, rate: int) -> bytes:
    """Utterances of 1.2 s, each followed by 3 s of silence, for ``seconds``."""
    turn = synthesize_speech("one two three four", sample_rate=rate) + bytes(2 * 3 * rate)
    repeats = max(1, round(seconds / (len(turn) / (2 * rate))))
    return turn * repeats


async def _twilio_caller(base: str, record: CallerRecord, seconds: float) -> None:
    from voxengine.testing.fake_twilio import place_call

    total = 0.0

    def on_media(payload: bytes, at: float) -> None:
        nonlocal total
        total += len(payload) / 8000
        record.received.append((at, total))

    async with place_call(
        base, AUTH_TOKEN, from_number=f"+{record.tag}", on_media=on_media
    ) as call:
        await call.stream_pcm(
            _script(seconds, 8000), on_frame=lambda i: record.sent.append(time.perf_counter())
        )
        await asyncio.sleep(0.5)
        await call.hang_up()
    record.violations = list(call.violations)


async def _browser_caller(base: str, record: CallerRecord, seconds: float) -> None:
    from voxengine.serve.client import fetch_token, open_call

    token = await fetch_token(base, secret=SECRET, subject=f"bench-{record.tag}")
    ws_url = base.replace("http://", "ws://") + "/ws"
    async with open_call(ws_url, token, metadata={"tag": record.tag}) as call:
        total = 0.0
        receive = call.player.receive

        def stamped(pcm: bytes) -> None:
            nonlocal total
            total += len(pcm) / 48_000
            record.received.append((time.perf_counter(), total))
            receive(pcm)

        call.player.receive = stamped  # type: ignore[method-assign]
        pcm = _script(seconds, 16_000)
        size = 640  # 20 ms at 16 kHz
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for i, offset in enumerate(range(0, len(pcm), size)):
            delay = begin + i * _FRAME - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            record.sent.append(time.perf_counter())
            await call.send_audio(pcm[offset : offset + size])
        await asyncio.sleep(0.5)
        await call.send_json({"type": "bye"})


async def _run_callers(system: str, base: str, count: int, seconds: float) -> list[CallerRecord]:
    records = [CallerRecord(tag=f"{count}{i:04d}") for i in range(count)]
    caller = _browser_caller if system == "voxengine-browser" else _twilio_caller

    async def one(record: CallerRecord, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            await caller(base, record, seconds)
        except Exception as exc:  # reported in the results, not fatal to the run
            record.error = f"{type(exc).__name__}: {exc}"[:200]

    # callers start spread over one second, as real calls do
    await asyncio.gather(*(one(r, i / max(1, count)) for i, r in enumerate(records)))
    return records


def _latencies_in(record: CallerRecord, log: ProviderLog) -> list[float]:
    times = [t for t, _ in log.audio_in]
    totals = [s for _, s in log.audio_in]
    result = []
    for i, sent in enumerate(record.sent):
        k = bisect.bisect_left(totals, (i + 1) * _FRAME - _TOLERANCE)
        if k < len(times):
            result.append(times[k] - sent)
    return result


def _latencies_out(record: CallerRecord, log: ProviderLog) -> list[float]:
    times = [t for t, _ in record.received]
    totals = [s for _, s in record.received]
    result = []
    for sent, total in log.audio_out:
        k = bisect.bisect_left(totals, total - _TOLERANCE)
        if k < len(times):
            result.append(times[k] - sent)
    return result


def _ms(values: Sequence[float], q: float) -> float | None:
    return round(1e3 * percentile(values, q), 2) if values else None


async def run_level(
    system: str, count: int, seconds: float, provider: Subprocess
) -> dict[str, Any]:
    """One system with ``count`` simultaneous callers: pooled latency percentiles."""
    kind = "pipecat" if system.startswith("pipecat") else "voxengine"
    provider_url = f"ws://127.0.0.1:{provider.port}/v1"
    with Subprocess(server_main, kind, provider_url, name=f"server-{kind}") as server:
        pids = {"server": server.process.pid, "provider": provider.process.pid}
        before = {name: process_cpu_seconds(pid) if pid else None for name, pid in pids.items()}
        client_before = time.process_time()
        started = time.perf_counter()
        records = await _run_callers(system, f"http://127.0.0.1:{server.port}", count, seconds)
        wall = time.perf_counter() - started
        client_cpu = time.process_time() - client_before
        after = {name: process_cpu_seconds(pid) if pid else None for name, pid in pids.items()}
    logs = provider.logs([model_for(r.tag) for r in records])
    lat_in: list[float] = []
    lat_out: list[float] = []
    for record in records:
        log = logs.get(model_for(record.tag), ProviderLog())
        lat_in += _latencies_in(record, log)
        lat_out += _latencies_out(record, log)
    cpu: dict[str, float | None] = {"client": round(100 * client_cpu / wall, 1)}
    for name in pids:
        start, end = before[name], after[name]
        cpu[name] = None if start is None or end is None else round(100 * (end - start) / wall, 1)
    errors = [r.error for r in records if r.error]
    return {
        "callers": count,
        "calls_failed": len(errors),
        "errors": errors[:3],
        "protocol_violations": sum(len(r.violations) for r in records),
        "frames_in": len(lat_in),
        "deltas_out": len(lat_out),
        "responses": sum(log.responses for log in logs.values()),
        "in_p50_ms": _ms(lat_in, 50),
        "in_p99_ms": _ms(lat_in, 99),
        "out_p50_ms": _ms(lat_out, 50),
        "out_p99_ms": _ms(lat_out, 99),
        "pooled_p99_ms": _ms(lat_in + lat_out, 99),
        "server_cpu_percent": cpu["server"],
        # the harness's own processes: near 100 % means the level measures the harness
        "provider_cpu_percent": cpu["provider"],
        "client_cpu_percent": cpu["client"],
        "load_average": _load(),
    }


async def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table, write benchmarks/results/serving.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callers", default="1,10,25", help="comma-separated caller counts")
    parser.add_argument("--seconds", type=float, default=8.4, help="audio per caller")
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--conditions", default="measured under load (shared machine)")
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    if "pipecat-twilio" in systems and importlib.util.find_spec("pipecat") is None:
        print("pipecat-ai is not installed: skipping pipecat-twilio")
        systems.remove("pipecat-twilio")
    counts = [int(c) for c in args.callers.split(",")]
    results: dict[str, list[dict[str, Any]]] = {s: [] for s in systems}
    with Subprocess(provider_main, name="provider-fake") as provider:
        for count in counts:
            for system in systems:
                level = await run_level(system, count, args.seconds, provider)
                results[system].append(level)
                _print(system, level)
    report = {
        "benchmark": "serving",
        "conditions": args.conditions,
        "machine": {"python": platform.python_version(), "cpus": _cpus()},
        "seconds_per_caller": args.seconds,
        "metric": "added latency: in = caller frame sent -> provider has it; out = provider "
        "delta sent -> caller has it; pooled p99 over callers and both directions",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _print(system: str, level: dict[str, Any]) -> None:
    print(
        f"{system:18} N={level['callers']:3}"
        f"  in p50/p99 {level['in_p50_ms']}/{level['in_p99_ms']} ms"
        f"  out p50/p99 {level['out_p50_ms']}/{level['out_p99_ms']} ms"
        f"  pooled p99 {level['pooled_p99_ms']} ms  cpu server/provider/client "
        f"{level['server_cpu_percent']}/{level['provider_cpu_percent']}/"
        f"{level['client_cpu_percent']}%  load {level['load_average']}"
        f"  failed {level['calls_failed']}",
        flush=True,
    )


def _load() -> float | None:
    import os

    with contextlib.suppress(OSError):
        return round(os.getloadavg()[0], 2)
    return None


def _cpus() -> int | None:
    import os

    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count()


if __name__ == "__main__":
    asyncio.run(main())
