"""Failover and scale of a multi-worker deployment (issue 18), on loopback.

Runs the real thing (:mod:`benchmarks.cluster`: redis-server, N ``voxengine serve``
worker processes, HAProxy from deploy/haproxy.cfg) against the fake OpenAI server in
this process, with the Python clients of the browser protocol, and measures:

* **failover**: a call is started through the load balancer and says a first turn;
  the worker carrying it is SIGKILLed; the client (``ResilientCall``) reconnects with
  its resume token and asks a question at once. Measured from the kill to the first
  assistant audio of the answer (the call talks again), and from the kill to the new
  ``ready`` (reconnected); the answer must come from the restored history. p50/p95
  over ``--kills`` kills (the killed worker is restarted between kills, unmeasured).
* **scale**: ``--calls-per-worker`` simulated callers per worker, each streaming
  real-time microphone audio (speech, then silence, looped; the fake's VAD answers
  each turn with streamed audio) and sending a ``ping`` every 0.5 s, for
  ``--seconds``, with 2..4 workers. Reported: calls held (calls that ran the whole
  time without error), the ping round trip through HAProxy and the worker's event
  loop (p50/p99: the delay a message meets on the serving path, both directions),
  and the first-audio latency of the turns.
* **Redis operations per call-minute**: ``INFO commandstats`` before and after each
  scale run, divided by calls x minutes.

Every figure is stored with the machine's load (``os.getloadavg``) before and after:
this machine is shared, and timings taken on it are under load. The harness is
re-runnable: ``python -m benchmarks.failover [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from benchmarks.cluster import SECRET, Cluster
from benchmarks.stats import machine_info, percentile
from voxengine.serve.client import fetch_token, open_call
from voxengine.serve.resilient import open_resilient_call
from voxengine.testing import (
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    FakeReply,
    FakeTurn,
    run_fake_openai_server,
    synthesize_speech,
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


async def caller(
    cluster: Cluster, token: str, seconds: float, pings: list[float], firsts: list[float]
) -> bool:
    speech = synthesize_speech("how is the weather today", sample_rate=16000)
    silence = bytes(2 * 16000 * 2)
    ok = True
    async with open_call(cluster.ws_url, token, player="realtime") as call:
        deadline = time.monotonic() + seconds

        async def ping() -> None:
            number = 0
            while time.monotonic() < deadline:
                number += 1
                start = len(call.messages)
                sent = time.monotonic()
                await call.send_json({"type": "ping", "id": number})
                await call.wait_for("pong", lambda m, n=number: m["id"] == n, start=start)
                pings.append(time.monotonic() - sent)
                await asyncio.sleep(0.5)

        pinger = asyncio.create_task(ping())
        try:
            while time.monotonic() < deadline:
                await call.stream_pcm(speech + silence, realtime=True)
        except Exception:
            ok = False
        with contextlib.suppress(Exception):
            await pinger
        firsts.extend(m["first_audio"] for m in call.messages if m["type"] == "latency")
        ok = ok and call.close_code is None
        with contextlib.suppress(Exception):
            await call.hang_up()
    return ok


async def scale(
    fake: FakeOpenAIServerHandle, workers: int, per_worker: int, seconds: float
) -> dict[str, Any]:
    load_before = _load()
    with Cluster(workers=workers, fake_openai_url=fake.url, state_ttl=30) as cluster:
        stats = _redis_stats(cluster)
        calls = workers * per_worker
        tokens = [
            await fetch_token(cluster.http_url, secret=SECRET, subject=f"c{i}")
            for i in range(calls)
        ]
        pings: list[float] = []
        firsts: list[float] = []
        started = time.monotonic()
        results = await asyncio.gather(
            *(caller(cluster, t, seconds, pings, firsts) for t in tokens), return_exceptions=True
        )
        elapsed = time.monotonic() - started
        after = _redis_stats(cluster)
    held = sum(1 for r in results if r is True)
    commands = {k: after.get(k, 0) - stats.get(k, 0) for k in after}
    commands["info"] = commands.get("info", 0) - 1  # the INFO call itself
    ops = sum(commands.values())
    # Redis counts the commands run inside the scripts too (GET/SET/PEXPIRE: the keeper's
    # only direct commands are EVALSHA, DEL and the connection's HELLO/SCRIPT LOAD)
    inside = sum(commands.get(k, 0) for k in ("get", "set", "pexpire"))
    minutes = calls * elapsed / 60
    return {
        "workers": workers,
        "calls": calls,
        "calls_held": held,
        "seconds": round(elapsed, 1),
        "ping_rtt_ms": {"p50": _ms(pings, 50), "p99": _ms(pings, 99), "count": len(pings)},
        "first_audio_ms": {"p50": _ms(firsts, 50), "p99": _ms(firsts, 99), "count": len(firsts)},
        "redis_ops": ops,
        "redis_ops_per_call_minute": round(ops / minutes, 1),
        "redis_round_trips_per_call_minute": round((ops - inside) / minutes, 1),
        "redis_commands": commands,
        "load_average_before": load_before,
        "load_average_after": _load(),
    }


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
    out: dict[str, Any] = {"machine": machine_info(), "note": args.note}
    config = FakeOpenAIConfig(responder=remembering)
    async with run_fake_openai_server(config, pace_seconds=0.02) as fake:
        if args.kills:
            print(f"failover: {args.kills} kills")
            out["failover"] = await failover(fake, args.kills)
            print(json.dumps(out["failover"], indent=1))
        out["scale"] = []
        for workers in args.workers:
            print(f"scale: {workers} workers x {args.calls_per_worker} calls, {args.seconds}s")
            result = await scale(fake, workers, args.calls_per_worker, args.seconds)
            out["scale"].append(result)
            print(json.dumps({k: v for k, v in result.items() if k != "redis_commands"}))
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20, help="failover runs (0: skip)")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 3, 4])
    parser.add_argument("--calls-per-worker", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--quick", action="store_true", help="3 kills, 2 workers x 3 calls, 8 s")
    parser.add_argument("--note", default="", help="stored with the results (load conditions)")
    parser.add_argument("--out", type=Path, default=RESULTS / "failover.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.kills, args.workers, args.calls_per_worker, args.seconds = 3, [2], 3, 8.0
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
