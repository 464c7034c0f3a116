"""Run the voxengine benchmarks and write ``benchmarks/results/latest.{json,png}``.

Usage::

    python -m benchmarks.run            # full run, a few minutes on 2 cores
    python -m benchmarks.run --quick    # about a minute
    python benchmarks/run.py --only compare micro --clients raw fast openai_sdk

Parts: ``compare`` (one scripted session per client against the fake server),
``scale`` (N concurrent fast-mode sessions), ``micro`` (audio path per 20 ms frame),
``imports`` (modules loaded by ``import voxengine`` and its import time).
See docs/performance.md for the method.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bareclients import BASE64_LIBRARY
from benchmarks.clients import CLIENTS, OPTIONAL_CLIENTS, quiet_pipecat
from benchmarks.compare import SessionPlan, run_comparison
from benchmarks.fakeserver import ServerSettings
from benchmarks.framecost import DEFAULT_CLIENTS as FRAMECOST_CLIENTS
from benchmarks.framecost import run_framecost
from benchmarks.imports import print_imports, run_imports
from benchmarks.loops import LOOPS, loop_factory, run
from benchmarks.micro import run_micro
from benchmarks.plot import plot_results
from benchmarks.scale import ScalePlan, ServerPool, pinning, plans, run_scale
from benchmarks.stats import machine_info, median
from voxengine.audio.b64 import ACCELERATOR as B64_ACCELERATOR

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("compare", "scale", "micro", "imports", "framecost")

#: Targets from the performance issue (issue 20).
FAST_VS_FLOOR = 1.05
FAST_CPU_VS_FLOOR = 1.1
FAST_MEMORY_VS_FLOOR = 1.2
FAST_VS_PEERS = 0.5
SCALE_SESSIONS = 400
SCALE_P99_MS = 20.0

#: Clients of the quick (CI) run: the floor, the two references, fast mode, one peer.
QUICK_CLIENTS = ("floor", "raw", "protocol", "fast", "openai_provider", "openai_sdk")

#: The lean scale server's front ends (``--lean-engine``), as the results describe them.
_LEAN_ENGINES = {
    "picows": "benchmarks/leanserver.py + leanpicows.py: picows' Cython server (upgrade,"
    " framing, pongs), pre-encoded reply payloads, input audio appends dropped unread",
    "protocol": "benchmarks/leanserver.py: asyncio.Protocol + websockets sans-I/O upgrade,"
    " hand-parsed client frames, pre-encoded reply frames, input audio dropped unread",
}

#: The floor: the bare ``websockets`` client decoding in the read hook.
FLOOR = "floor"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def ratios(clients: dict[str, Any]) -> dict[str, Any]:
    """Each client against the floor, from the pooled figures, and fast mode against each.

    ``*_vs_floor`` divide the pooled p50/p99 (over every frame of every session) of the
    client by the floor's. ``*_vs_floor_per_repeat`` (and their median, ``_paired``) divide
    each session by the floor session run right next to it, to show the spread.
    """
    floor = clients.get(FLOOR)
    out: dict[str, Any] = {}
    for name, c in clients.items():
        entry: dict[str, Any] = {}
        if floor is not None:
            for q in ("p50", "p99"):
                total, base = c[f"event_delay_{q}_ms"], floor[f"event_delay_{q}_ms"]
                c[f"added_delay_{q}_ms"] = total - base
                entry[f"delay_{q}_vs_floor"] = _ratio(total, base)
                entry[f"in_process_{q}_vs_floor"] = _ratio(
                    c[f"in_process_{q}_us"], floor[f"in_process_{q}_us"]
                )
                for figure, key in (
                    ("delay", f"event_delay_{q}_ms_per_repeat"),
                    ("in_process", f"in_process_{q}_us_per_repeat"),
                ):
                    paired = [_ratio(a, b) for a, b in zip(c[key], floor[key], strict=False)]
                    entry[f"{figure}_{q}_vs_floor_per_repeat"] = paired
                    entry[f"{figure}_{q}_vs_floor_paired"] = median(
                        [r for r in paired if r is not None]
                    )
            entry["cpu_vs_floor"] = _ratio(
                c["cpu_ms_per_audio_second"], floor["cpu_ms_per_audio_second"]
            )
            entry["memory_vs_floor"] = _ratio(
                c.get("memory_kib_per_session"), floor.get("memory_kib_per_session")
            )
        out[name] = entry
    fast = clients.get("fast")
    if fast is not None:
        for name, c in clients.items():
            if name == "fast":
                continue
            out["fast"][f"vs_{name}"] = {
                "in_process_p50": _ratio(fast["in_process_p50_us"], c["in_process_p50_us"]),
                "in_process_p99": _ratio(fast["in_process_p99_us"], c["in_process_p99_us"]),
                "delay_p50": _ratio(fast["event_delay_p50_ms"], c["event_delay_p50_ms"]),
                "delay_p99": _ratio(fast["event_delay_p99_ms"], c["event_delay_p99_ms"]),
                "cpu": _ratio(fast["cpu_ms_per_audio_second"], c["cpu_ms_per_audio_second"]),
                "memory": _ratio(
                    fast.get("memory_kib_per_session"), c.get("memory_kib_per_session")
                ),
            }
    return out


def _row(target: str, value: float | None, limit: float, *, below: bool = False) -> dict[str, Any]:
    met = value is not None and (value < limit if below else value <= limit)
    return {"target": target, "value": value, "met": met}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured value and pass/miss."""
    rows: list[dict[str, Any]] = []
    clients = results.get("comparison", {}).get("clients", {})
    ratio = results.get("ratios", {})
    fast = ratio.get("fast", {})
    if "fast" in clients and FLOOR in clients:
        for q in ("p50", "p99"):
            rows.append(
                _row(
                    f"fast in-process latency {q} (pooled) <= {FAST_VS_FLOOR}x the floor's",
                    fast.get(f"in_process_{q}_vs_floor"),
                    FAST_VS_FLOOR,
                )
            )
        rows.append(
            _row(
                f"fast CPU per audio second <= {FAST_CPU_VS_FLOOR}x the floor's",
                fast.get("cpu_vs_floor"),
                FAST_CPU_VS_FLOOR,
            )
        )
        if fast.get("memory_vs_floor") is not None:
            rows.append(
                _row(
                    f"fast RSS per idle session <= {FAST_MEMORY_VS_FLOOR}x the floor's",
                    fast.get("memory_vs_floor"),
                    FAST_MEMORY_VS_FLOOR,
                )
            )
        for peer in ("openai_sdk", "pipecat"):
            if peer in clients:
                for q in ("p50", "p99"):
                    rows.append(
                        _row(
                            f"fast in-process latency {q} < {FAST_VS_PEERS}x {peer}'s",
                            fast.get(f"vs_{peer}", {}).get(f"in_process_{q}"),
                            FAST_VS_PEERS,
                            below=True,
                        )
                    )
    fast_mode = {CLIENTS[name].name for name in ("fast", "fast_picows") if name in CLIENTS}
    for scale_run in results.get("scale", {}).get("runs", []):
        if scale_run["client"] not in fast_mode:
            continue  # fast mode on either WebSocket backend; other clients are context
        level = next((lv for lv in scale_run["levels"] if lv["sessions"] == SCALE_SESSIONS), None)
        if level is not None:
            rows.append(
                {
                    "target": f"{SCALE_SESSIONS} sessions ({scale_run['label']}): event delay p99"
                    f" < {SCALE_P99_MS} ms",
                    "value": level["event_delay"]["p99_ms"],
                    "met": bool(level["holds"]),
                }
            )
    return rows


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float | int) else str(value)


def print_report(results: dict[str, Any]) -> None:
    """The figures, ratios and targets as plain-text tables."""
    clients = results.get("comparison", {}).get("clients", {})
    ratio = results.get("ratios", {})
    if clients:
        print("\nOne session at a time (µs, pooled over every frame of every session):")
        print(
            f"{'client':40s} {'in p50':>7s} {'in p99':>7s} {'x fl50':>6s} {'x fl99':>6s}"
            f" {'e2e p50':>7s} {'e2e p99':>7s} {'1st ms':>6s} {'CPU ms/s':>8s} {'RSS KiB':>7s}"
        )
        for name, c in clients.items():
            r = ratio.get(name, {})
            print(
                f"{c['client']:40s} {_fmt(c['in_process_p50_us'], 1):>7s}"
                f" {_fmt(c['in_process_p99_us'], 1):>7s}"
                f" {_fmt(r.get('in_process_p50_vs_floor')):>6s}"
                f" {_fmt(r.get('in_process_p99_vs_floor')):>6s}"
                f" {c['event_delay_p50_ms'] * 1e3:7.1f} {c['event_delay_p99_ms'] * 1e3:7.1f}"
                f" {c['first_audio_ms']:6.1f} {c['cpu_ms_per_audio_second']:8.2f}"
                f" {_fmt(c.get('memory_kib_per_session'), 1):>7s}"
            )
        print("  (in = socket read -> callback; x fl = ÷ the floor's pooled figure)")
        for q in ("p50", "p99"):
            spread = ratio.get("fast", {}).get(f"in_process_{q}_vs_floor_per_repeat")
            if spread:
                print(
                    f"  fast in-process {q} ÷ floor, per adjacent pair: "
                    + ", ".join(_fmt(x) for x in spread)
                )
        for peer, value in ratio.get("fast", {}).items():
            if peer.startswith("vs_"):
                print(
                    f"  fast {peer.replace('_', ' ', 1)}: in-process p50"
                    f" x{_fmt(value['in_process_p50'])} p99 x{_fmt(value['in_process_p99'])},"
                    f" CPU x{_fmt(value['cpu'])}, RSS x{_fmt(value['memory'])}"
                )
        for name, error in results["comparison"].get("errors", {}).items():
            print(f"  {name}: not measured: {error}")
    for scale_run in results.get("scale", {}).get("runs", []):
        print(f"\nScale ({scale_run['client']}, {scale_run['label']}):")
        for lv in scale_run["levels"]:
            print(
                f"  N={lv['sessions']:4d} p99 {lv['event_delay']['p99_ms']:7.2f} ms,"
                f" client CPU {lv['client_cpu_pct_of_core']:.0f}% of a core,"
                " server CPU " + "/".join(f"{p:.0f}" for p in lv["server_cpu_pct_of_core"]) + "%,"
                f" sessions/core {_fmt(lv['sessions_per_core'], 0)},"
                f" {'holds' if lv['holds'] else 'breaks'}"
                f"{' (server-limited)' if lv['server_limited'] else ''}"
            )
    micro = results.get("micro")
    if micro:
        print("\nAudio path per 20 ms frame (µs):")
        for section in (
            "resample_per_frame",
            "energy_vad_per_frame",
            "numpy_rms_per_frame",
            "energy_vad_vs_numpy_rms",
            "encode_per_chunk",
            "decode_per_chunk",
        ):
            values = ", ".join(f"{k} {v:.2f}" for k, v in micro[section].items())
            print(f"  {section}: {values}")
        alloc = micro["allocations_per_chunk"]
        print(
            "  allocations (peak/kept bytes): "
            + ", ".join(
                f"{k} {v['peak_bytes']:.0f}/{v['kept_bytes']:.0f}"
                for k, v in alloc.items()
                if isinstance(v, dict)
            )
        )
    framecost = results.get("framecost", {}).get("clients", {})
    if framecost:
        print("\nCost per audio frame (deterministic; x fl = ÷ the floor's):")
        for name, entry in framecost.items():
            print(
                f"  {name:9s} calls/frame {_fmt(entry['calls_per_frame'], 1):>6s}"
                f" x{_fmt(entry.get('calls_per_frame_vs_floor'))}"
                f"  calls/send {_fmt(entry['calls_per_send'], 1):>6s}"
                f" x{_fmt(entry.get('calls_per_send_vs_floor'))}"
                f"  instructions/frame {_fmt(entry.get('instructions_per_frame'), 0):>7s}"
                f" x{_fmt(entry.get('instructions_per_frame_vs_floor'))}"
                f"  instructions/send {_fmt(entry.get('instructions_per_send'), 0):>7s}"
                f" x{_fmt(entry.get('instructions_per_send_vs_floor'))}"
            )
    if "imports" in results:
        print_imports(results["imports"])
    print("\nTargets:")
    for row in results.get("targets", []):
        print(f"  [{'met ' if row['met'] else 'MISS'}] {row['target']}: {_fmt(row['value'])}")


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_info(), "quick": args.quick}
    results["machine"]["note"] = args.note
    plan = (
        SessionPlan(turns=1, words=6, repeats=1, memory_sessions=10, pair_repeats=1)
        if args.quick
        else SessionPlan()
    )
    if args.rounds:
        plan = dataclasses.replace(plan, repeats=args.rounds)
    if args.memory_sessions is not None:
        plan = dataclasses.replace(plan, memory_sessions=args.memory_sessions)
    base = (
        ScalePlan(sessions=(50,), window=2.0, settle=1.0)
        if args.quick
        else ScalePlan(sessions=(100, 200, 400), window=5.0)
    )
    if args.sessions:
        base = dataclasses.replace(base, sessions=tuple(args.sessions))
    loops = args.loop or ["asyncio"]
    workers = args.workers or [1]
    settings = ServerSettings(loop=args.server_loop)
    if args.pin:
        base = dataclasses.replace(base, pin=True)
        settings = dataclasses.replace(settings, cpus=pinning(max(workers)))
    scale_plans = [
        p
        for client in args.scale_client
        for p in plans(dataclasses.replace(base, client=client), loops, workers)
    ]
    results["method"] = {
        "server": "voxengine.testing.FakeOpenAIServer (paced mode) in child processes, stepped"
        " on absolute 20 ms deadlines; frames stamped with perf_counter (CLOCK_MONOTONIC)"
        " right before the write",
        "server_settings": dataclasses.asdict(settings),
        "scale_servers": args.servers,
        "scale_server": _LEAN_ENGINES[args.lean_engine]
        if args.scale_server == "lean"
        else "the fake server (as compare)",
        "session_plan": dataclasses.asdict(plan),
        "scale_plans": [dataclasses.asdict(p) for p in scale_plans],
        "floor": "bare websockets client decoding in the read hook (ClientConnection subclass,"
        f" process_event), orjson + {BASE64_LIBRARY} base64",
        "base64": f"voxengine.audio.b64: {B64_ACCELERATOR or 'strict binascii (no accelerator)'}",
        "percentiles": "pooled over every frame of every session; ratios from pooled figures;"
        " per-session values and their medians kept beside",
        "delay": "server perf_counter before ws.send -> client perf_counter in the callback;"
        " n-th sent frame matched with n-th received, audio + assistant transcript deltas",
        "in_process": "websockets Protocol.events_received returns the parsed audio frame ->"
        " application audio callback",
        "cpu": "client time.process_time() over the turns, all sessions / reply audio seconds",
        "memory": "RSS growth over N idle connected sessions / N, fresh child process per client",
    }
    scale_settings = dataclasses.replace(
        settings, lean=args.scale_server == "lean", lean_engine=args.lean_engine
    )
    with contextlib.ExitStack() as servers:
        pool = servers.enter_context(ServerPool(settings, args.servers))
        scale_pool = pool
        if "scale" in args.only and scale_settings.lean:
            scale_pool = servers.enter_context(ServerPool(scale_settings, args.servers))
        # Scale first, before the peers (pipecat, openai) are imported into this process.
        if "scale" in args.only:
            runs = []
            for scale_plan in scale_plans:
                levels = ", ".join(map(str, scale_plan.sessions))
                print(
                    f"scale: {CLIENTS[scale_plan.client].name}, {scale_plan.loop},"
                    f" {scale_plan.workers} client process(es), {args.servers} server(s),"
                    f" N = {levels}"
                )
                runs.append(await run_scale(scale_pool, scale_plan))
            results["scale"] = {
                "servers": args.servers,
                "server": args.scale_server,
                "lean_engine": args.lean_engine if args.scale_server == "lean" else None,
                "runs": runs,
            }
        if "compare" in args.only:
            if "pipecat" in args.clients and not quiet_pipecat():
                print("pipecat-ai is not installed: skipping it")
                args.clients = [c for c in args.clients if c != "pipecat"]
            print(f"compare: {', '.join(args.clients)} ({plan.repeats} rounds)")
            results["comparison"] = await run_comparison(
                pool.first, plan, args.clients, loop=loops[0]
            )
            results["comparison"]["loop"] = loops[0]
            results["ratios"] = ratios(results["comparison"]["clients"])
    if "micro" in args.only:
        print("micro: audio path")
        results["micro"] = run_micro(*((200, 3) if args.quick else (2000, 7)))
    if "framecost" in args.only:
        counting = shutil.which("valgrind") is not None and not args.quick
        print(f"framecost: Python calls{' and instructions (callgrind)' if counting else ''}")
        clients = FRAMECOST_CLIENTS
        if not args.quick and importlib.util.find_spec("picows") is not None:
            clients += ("picows_floor", "fast_picows")  # the compiled backend, side by side
        results["framecost"] = await run_framecost(
            clients, 5000, instructions=counting, calls_frames=200 if args.quick else 2000
        )
    if "imports" in args.only:
        print("imports: import voxengine in fresh interpreters")
        results["imports"] = run_imports(repeats=5 if args.quick else 10)
    results["machine"]["load_average_end"] = list(os.getloadavg())
    results["targets"] = targets(results)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print and save."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="well under 2 minutes, few samples (CI); writes results/ci-quick.json",
    )
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument(
        "--clients",
        nargs="+",
        choices=list(CLIENTS),
        help="default: all (--quick: floor, references, fast, OpenAIProvider, openai SDK)",
    )
    parser.add_argument("--sessions", nargs="+", type=int, help="scale levels (default 100..400)")
    parser.add_argument("--rounds", type=int, help="comparison rounds (default 4)")
    parser.add_argument("--memory-sessions", type=int, help="idle sessions for RSS (default 100)")
    parser.add_argument(
        "--scale-client",
        nargs="+",
        choices=list(CLIENTS),
        default=["fast"],
        help="client(s) of the scale test, run in this order (e.g. fast floor: the floor's"
        " runs come after fast mode's, as context for its targets)",
    )
    parser.add_argument(
        "--loop",
        nargs="+",
        choices=LOOPS,
        help="client event loop(s); scale runs once per loop, compare uses the first",
    )
    parser.add_argument(
        "--workers",
        nargs="+",
        type=int,
        help="client processes sharing the scale sessions (default 1; e.g. 1 2)",
    )
    parser.add_argument(
        "--servers", type=int, default=1, help="fake server processes for the scale test"
    )
    parser.add_argument(
        "--scale-server",
        choices=("lean", "fake"),
        default="lean",
        help="scale test's server: lean (benchmarks/leanserver.py, default) or the full fake",
    )
    parser.add_argument(
        "--lean-engine",
        choices=tuple(_LEAN_ENGINES),
        default="picows" if importlib.util.find_spec("picows") else "protocol",
        help="the lean server's WebSocket front end: picows (default when installed) or a"
        " bare asyncio.Protocol with a hand parse",
    )
    parser.add_argument("--server-loop", choices=LOOPS, default="asyncio")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="Linux: pin scale client process i to CPU i and the fake servers to the rest",
    )
    parser.add_argument("--note", default="", help="free text kept in machine.note (load...)")
    parser.add_argument("--out", type=Path, help="default results/latest.json (--quick: ci-quick)")
    args = parser.parse_args(argv)
    if args.clients is None:
        default = QUICK_CLIENTS if args.quick else CLIENTS
        args.clients = [name for name in default if name not in OPTIONAL_CLIENTS]
    if args.out is None:
        args.out = RESULTS / ("ci-quick.json" if args.quick else "latest.json")
    try:
        for name in [*(args.loop or []), args.server_loop]:
            loop_factory(name)
        if args.pin:
            pinning(max(args.workers or [1]))
    except ValueError as exc:
        parser.error(str(exc))
    started = time.perf_counter()
    results = run((_run(args)), (args.loop or ["asyncio"])[0])
    results["machine"]["duration_seconds"] = time.perf_counter() - started
    print_report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_finite(results), indent=2, allow_nan=False))
    png = args.out.with_suffix(".png")
    if plot_results(results, png):
        print(f"\nwrote {args.out} and {png}")
    else:
        print(f"\nwrote {args.out} (no plot: matplotlib is not installed)")
    return 0


def _finite(value: Any) -> Any:
    """``value`` with NaN/inf turned into None (null) and tuples into lists, for JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    sys.exit(main())
