"""Failover and scale of a multi-worker deployment (issue 18), on loopback.

Runs the real thing (:mod:`benchmarks.cluster`: redis-server, N ``voxengine serve``
worker processes, HAProxy from deploy/haproxy.cfg) against fake OpenAI servers, with
the Python clients of the browser protocol, and measures:

* **failover**: a call is started through the load balancer and says a first turn;
  the worker carrying it is SIGKILLed; the client (``ResilientCall``) reconnects with
  its resume token and asks a question at once. Measured from the kill to the first
  assistant audio of the answer (the call talks again), and from the kill to the new
  ``ready`` (reconnected); the answer must come from the restored history. p50/p95
  over ``--kills`` kills (the killed worker is restarted between kills, unmeasured).
* **calls per worker**: for 2, 3 and 4 workers (``--workers``), callers per worker are
  raised through ``--levels`` (5, 10, 20, 40, 80): every caller is the Python client of
  the browser protocol through HAProxy, streaming real-time microphone audio (1.2 s of
  speech, 3 s of silence, looped) while the provider fake (the bundled fake OpenAI
  Realtime server in its own process, :mod:`benchmarks.serving_parts`) answers each turn
  with paced 20 ms audio deltas. Added latency is measured as in
  :mod:`benchmarks.serving`: *in*, from just before a caller sends a 20 ms frame to the
  provider having received it; *out*, from just before the provider sends a delta to
  the caller having received it (both through HAProxy and a worker). A level is held
  when every call ran to the end and the pooled p99 is within ``--budget-ms`` (20 ms);
  the last level held is the figure: calls per worker, and total = workers x that.
  Levels go on past the budget (``calls_per_worker_held``: every call ran to the end)
  until a call fails or the p99 passes ``--stop-ms`` (the workers are saturated).
* **Redis operations per call-minute**: ``INFO commandstats`` before and after each
  level, divided by calls x minutes (commands as Redis counts them, those run inside the
  scripts included, and the round trips the workers make).

Every figure is stored with the machine's load (``os.getloadavg``) and the CPU the
workers and the harness used: this machine is shared, and timings taken on it are under
load (``--conditions`` says so in the results). One run gives the issue's three figures
(``summary`` in the results): ``python -m benchmarks.failover [--quick]`` writes
benchmarks/results/failover.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from benchmarks.cluster import SECRET, Cluster
from benchmarks.serving import _run_callers, pooled_latencies
from benchmarks.serving_parts import SECRET as BENCH_SECRET
from benchmarks.serving_parts import Subprocess, model_for, provider_main
from benchmarks.stats import machine_info, percentile, process_cpu_seconds
from voxengine.serve.client import fetch_token
from voxengine.serve.resilient import open_resilient_call
from voxengine.testing import (
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    FakeReply,
    FakeTurn,
    run_fake_openai_server,
)

RESULTS = Path(__file__).parent / "results"


def remembering(turn: FakeTurn) -> FakeReply:
    """Answers "what is my name" from the conversation the fake holds."""
    if "what is my name" in turn.text.lower():
        for item in turn.history:
            for part in item.get("content", []):
                text = part.get("text") or part.get("transcript") or ""
                if "My name is" in text:
                    return FakeReply(text=f"Your name is {text.split()[-1]}.")
        return FakeReply(text="I do not know your name.")
    if turn.kind == "audio":
        return FakeReply(text=f"I heard {turn.audio_seconds:.1f} seconds of audio.")
    return FakeReply(text="Nice to meet you.")


def _completed(message: dict[str, Any]) -> bool:
    return bool(message["state"] == "done" and message["status"] == "completed")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1e3, 1)


# -- failover -------------------------------------------------------------------------------


async def one_failover(cluster: Cluster) -> dict[str, Any]:
    token = await fetch_token(cluster.http_url, secret=SECRET, subject="bench")
    async with open_resilient_call(cluster.ws_url, token, player="instant") as call:
        await call.send_text("My name is Ada")
        await call.wait_for("response", _completed, timeout=30)
        victim = cluster.carrier()
        seen = len(call.messages)
        killed = time.monotonic()
        victim.kill()
        await call.send_text("What is my name?", timeout=60)  # waits for the resume
        await call.wait_for("latency", timeout=60, start=seen)  # first audio of the answer
        talking = time.monotonic() - killed
        await call.wait_for("response", _completed, timeout=30, start=seen)
        finals = [
            m["text"]
            for m in call.messages[seen:]
            if m["type"] == "transcript" and m["final"] and m["role"] == "assistant"
        ]
        reconnected = call.reconnect_seconds[0] if call.reconnect_seconds else float("nan")
        await call.hang_up()
    await asyncio.to_thread(cluster.start_worker, victim)
    await asyncio.to_thread(cluster.wait_balanced)  # back to two workers before the next kill
    return {
        "talking_again_s": talking,
        "reconnected_s": reconnected,
        "remembered": bool(finals) and finals[-1] == "Your name is Ada.",
    }


async def failover(fake: FakeOpenAIServerHandle, kills: int) -> dict[str, Any]:
    load_before = _load()
    runs: list[dict[str, Any]] = []
    with Cluster(workers=2, fake_openai_url=fake.url, state_ttl=30) as cluster:
        for index in range(kills):
            runs.append(await one_failover(cluster))
            print(f"  kill {index + 1}/{kills}: {runs[-1]['talking_again_s'] * 1e3:.0f} ms")
    talking = [r["talking_again_s"] for r in runs]
    reconnect = [r["reconnected_s"] for r in runs]
    return {
        "kills": kills,
        "workers": 2,
        "talking_again_ms": {"p50": _ms(talking, 50), "p95": _ms(talking, 95)},
        "reconnected_ms": {"p50": _ms(reconnect, 50), "p95": _ms(reconnect, 95)},
        "remembered": sum(r["remembered"] for r in runs),
        "load_average_before": load_before,
        "load_average_after": _load(),
    }


# -- scale ----------------------------------------------------------------------------------


def _cpu(pids: list[int]) -> float:
    return sum(process_cpu_seconds(pid) or 0.0 for pid in pids)


async def scale_level(
    cluster: Cluster, provider: Subprocess, per_worker: int, seconds: float
) -> dict[str, Any]:
    """``per_worker`` callers per worker at once, through HAProxy, for ``seconds``."""
    calls = cluster.workers * per_worker
    pids = [w.process.pid for w in cluster.nodes if w.process is not None]
    load_before = _load()
    redis_before = _redis_stats(cluster)
    cpu_before, client_before = _cpu(pids), time.process_time()
    started = time.monotonic()
    records = await _run_callers("voxengine-browser", cluster.http_url, calls, seconds)
    elapsed = time.monotonic() - started
    cpu_workers, cpu_client = _cpu(pids) - cpu_before, time.process_time() - client_before
    await asyncio.to_thread(_wait_idle, cluster)  # every record deleted after its hang-up
    redis_after = _redis_stats(cluster)
    logs = await asyncio.to_thread(provider.logs, [model_for(r.tag) for r in records])
    lat_in, lat_out = pooled_latencies(records, logs)
    failed = [r.error for r in records if r.error]
    commands = {k: redis_after.get(k, 0) - redis_before.get(k, 0) for k in redis_after}
    commands["info"] = commands.get("info", 0) - 1  # the INFO call itself
    commands = {k: v for k, v in commands.items() if v}
    ops = sum(commands.values())
    # Redis counts the commands run inside the scripts too (GET/SET/PEXPIRE): the
    # workers' own round trips are EVALSHA, SET NX (call tokens), DEL and the
    # connection's HELLO/SCRIPT LOAD
    inside = sum(commands.get(k, 0) for k in ("get", "pexpire")) + commands.get("set", 0) - calls
    minutes = calls * elapsed / 60
    pooled = lat_in + lat_out
    return {
        "calls_per_worker": per_worker,
        "calls": calls,
        "calls_failed": len(failed),
        "errors": failed[:3],
        "seconds": round(elapsed, 1),
        "added_latency_ms": {
            "in_p50": _ms_or_none(lat_in, 50),
            "in_p99": _ms_or_none(lat_in, 99),
            "out_p50": _ms_or_none(lat_out, 50),
            "out_p99": _ms_or_none(lat_out, 99),
            "p99": _ms_or_none(pooled, 99),
            "samples": len(pooled),
        },
        "redis_ops": ops,
        "redis_ops_per_call_minute": round(ops / minutes, 1),
        "redis_round_trips_per_call_minute": round((ops - max(inside, 0)) / minutes, 1),
        "redis_commands": commands,
        # a harness near 100 % of a core measures itself, not the workers
        "cpu_percent": {
            "workers_total": round(100 * cpu_workers / elapsed, 1),
            "client": round(100 * cpu_client / elapsed, 1),
        },
        "load_average_before": load_before,
        "load_average_after": _load(),
    }


def _ms_or_none(values: list[float], q: float) -> float | None:
    return _ms(values, q) if values else None


def _wait_idle(cluster: Cluster, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(w.calls() > 0 for w in cluster.nodes if w.alive):
        if time.monotonic() > deadline:
            return
        time.sleep(0.1)


def _within(level: dict[str, Any], budget_ms: float) -> bool:
    p99 = level["added_latency_ms"]["p99"]
    return level["calls_failed"] == 0 and p99 is not None and p99 <= budget_ms


async def scale(
    provider: Subprocess,
    workers: int,
    levels: list[int],
    seconds: float,
    budget_ms: float,
    stop_ms: float,
) -> dict[str, Any]:
    """Raise the callers per worker through ``levels`` until a call fails or the pooled
    p99 added latency passes ``stop_ms``; the last level within ``budget_ms`` is what a
    worker holds."""
    url = f"ws://127.0.0.1:{provider.port}/v1"
    runs: list[dict[str, Any]] = []
    within = held = 0
    with Cluster(workers=workers, fake_openai_url=url, state_ttl=30, secret=BENCH_SECRET) as c:
        for per_worker in levels:
            level = await scale_level(c, provider, per_worker, seconds)
            runs.append(level)
            print(f"  {workers} workers x {per_worker}: {_summary(level)}", flush=True)
            if level["calls_failed"]:
                break
            held = per_worker
            if _within(level, budget_ms) and within == len(runs) - 1:
                within = len(runs)
            if not _within(level, stop_ms):
                break
    return {
        "workers": workers,
        "budget_p99_ms": budget_ms,
        "calls_per_worker": levels[within - 1] if within else 0,
        "calls_total": (levels[within - 1] if within else 0) * workers,
        "calls_per_worker_held": held,
        "calls_total_held": held * workers,
        "levels": runs,
    }


def _summary(level: dict[str, Any]) -> str:
    latency = level["added_latency_ms"]
    return (
        f"added p50 in/out {latency['in_p50']}/{latency['out_p50']} ms, p99 {latency['p99']} ms;"
        f" failed {level['calls_failed']}; redis {level['redis_ops_per_call_minute']}/call-min;"
        f" cpu workers/client {level['cpu_percent']['workers_total']}/"
        f"{level['cpu_percent']['client']} %; load {level['load_average_after'][0]}"
    )


def _redis_stats(cluster: Cluster) -> dict[str, int]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=cluster.redis_port, socket_timeout=5)
    try:
        info = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in info.items()}


# -- main -----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "machine": machine_info(),
        "conditions": args.conditions,
        "metric": "failover: SIGKILL of the worker carrying a call -> the client's new ready / "
        "the first audio of the answer; scale: added latency in = caller frame sent -> "
        "provider has it, out = provider delta sent -> caller has it (through HAProxy and "
        "a worker), pooled p99; calls per worker = the last level within the budget",
    }
    if args.kills:
        config = FakeOpenAIConfig(responder=remembering)
        async with run_fake_openai_server(config, pace_seconds=0.02) as fake:
            print(f"failover: {args.kills} kills", flush=True)
            out["failover"] = await failover(fake, args.kills)
            print(json.dumps(out["failover"], indent=1), flush=True)
    out["scale"] = []
    with Subprocess(provider_main, name="provider-fake") as provider:
        for workers in args.workers:
            print(f"scale: {workers} workers, {args.levels} callers per worker", flush=True)
            out["scale"].append(
                await scale(
                    provider, workers, args.levels, args.seconds, args.budget_ms, args.stop_ms
                )
            )
    out["summary"] = _headline(out)
    print(json.dumps(out["summary"], indent=1))
    return out


def _headline(out: dict[str, Any]) -> dict[str, Any]:
    """The issue's three figures, side by side."""
    summary: dict[str, Any] = {"conditions": out["conditions"]}
    if "failover" in out:
        summary["kill_to_talking_again_ms"] = out["failover"]["talking_again_ms"]
        summary["kills"] = out["failover"]["kills"]
    summary["calls"] = [
        {
            "workers": run["workers"],
            "calls_per_worker": run["calls_per_worker"],
            "calls_total": run["calls_total"],
            "p99_added_ms_at_that_level": next(
                (
                    lv["added_latency_ms"]["p99"]
                    for lv in run["levels"]
                    if lv["calls_per_worker"] == run["calls_per_worker"]
                ),
                None,
            ),
            "budget_p99_ms": run["budget_p99_ms"],
            "calls_per_worker_held": run["calls_per_worker_held"],
            "p99_added_ms_per_level": {
                lv["calls_per_worker"]: lv["added_latency_ms"]["p99"] for lv in run["levels"]
            },
        }
        for run in out["scale"]
    ]
    per_minute = [lv["redis_ops_per_call_minute"] for run in out["scale"] for lv in run["levels"]]
    trips = [
        lv["redis_round_trips_per_call_minute"] for run in out["scale"] for lv in run["levels"]
    ]
    if per_minute:
        summary["redis_ops_per_call_minute"] = {"min": min(per_minute), "max": max(per_minute)}
        summary["redis_round_trips_per_call_minute"] = {"min": min(trips), "max": max(trips)}
    return summary


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="failover runs (0: skip)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=[5, 10, 20, 40, 80],
        help="callers per worker, tried in order until the budget is left",
    )
    parser.add_argument("--budget-ms", type=float, default=20.0, help="p99 added latency")
    parser.add_argument(
        "--stop-ms", type=float, default=1000.0, help="stop raising levels past this p99"
    )
    parser.add_argument("--seconds", type=float, default=12.6, help="audio per caller")
    parser.add_argument("--quick", action="store_true", help="3 kills; 2 workers x 2, 4; 8.4 s")
    parser.add_argument(
        "--conditions",
        default="measured under load (shared machine)",
        help="stored with the results: say whether the machine was quiet",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "failover.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.kills, args.workers, args.levels, args.seconds = 3, [2], [2, 4], 8.4
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the clusters cleanly, as Ctrl-C does


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    arguments = parse()
    result = asyncio.run(main(arguments))
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"written: {arguments.out}")
