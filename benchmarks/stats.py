"""Small statistics and environment helpers (no third-party dependencies)."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "machine_info",
    "median",
    "others_cpu_seconds",
    "percentile",
    "process_cpu_seconds",
    "processes_cpu_seconds",
    "summary_ms",
]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    """The median; NaN when empty."""
    return statistics.median(values) if values else float("nan")


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of durations given in seconds, in milliseconds."""
    return {
        "p50_ms": percentile(seconds, 50) * 1e3,
        "p90_ms": percentile(seconds, 90) * 1e3,
        "p99_ms": percentile(seconds, 99) * 1e3,
        "max_ms": max(seconds) * 1e3 if seconds else float("nan"),
        "count": float(len(seconds)),
    }


def processes_cpu_seconds() -> dict[int, float] | None:
    """User + system CPU seconds of every process now running (from /proc); None off Linux.

    Per-process times are accounted exactly by the kernel, unlike the tick-sampled
    /proc/stat totals, which miss short bursts between ticks (an event loop that wakes
    every few ms is mostly invisible to them). Processes that exit are not counted.
    """
    if not Path("/proc/self/stat").exists():
        return None
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            seconds = process_cpu_seconds(int(entry.name))
            if seconds is not None:
                times[int(entry.name)] = seconds
    return times


_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_SHOWN = ("user", "nice", "system", "softirq", "irq", "steal", "iowait", "idle")


def cpu_ticks() -> dict[str, list[int]] | None:
    """Per-CPU time counters (``/proc/stat``: user ... steal, in clock ticks); None off Linux."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    return {
        line.split()[0]: [int(x) for x in line.split()[1 : 1 + len(_CPU_FIELDS)]]
        for line in lines
        if line.startswith("cpu") and line[3:4].isdigit()
    }


def cpu_breakdown(
    before: dict[str, list[int]] | None, after: dict[str, list[int]] | None
) -> dict[str, dict[str, float]] | None:
    """Each CPU's share (%) of user, nice, system, softirq, irq, steal, iowait, idle time between
    :func:`cpu_ticks` snapshots. Tick-sampled (short bursts are missed), but it shows
    what per-process times cannot: interrupt and softirq work (the loopback network
    stack's receive side, ksoftirqd) and time the hypervisor took (steal) on each CPU.
    """
    if before is None or after is None:
        return None
    out: dict[str, dict[str, float]] = {}
    for cpu, ticks in after.items():
        delta = [b - a for a, b in zip(before.get(cpu, ticks), ticks, strict=False)]
        total = sum(delta) or 1
        share = dict(zip(_CPU_FIELDS, (100 * d / total for d in delta), strict=False))
        out[cpu] = {key: share.get(key, 0.0) for key in _SHOWN}
    return out


def others_cpu_seconds(
    before: dict[int, float] | None, after: dict[int, float] | None, exclude: set[int]
) -> float | None:
    """CPU used between two :func:`processes_cpu_seconds` snapshots by processes not in
    ``exclude`` (a process that started in between counts from zero)."""
    if before is None or after is None:
        return None
    return sum(
        seconds - before.get(pid, 0.0) for pid, seconds in after.items() if pid not in exclude
    )


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (from /proc); None off Linux."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def machine_info() -> dict[str, Any]:
    """Where and when the benchmark ran, and with which versions."""
    packages = (
        "voxengine",
        "websockets",
        "orjson",
        "pybase64",
        "uvloop",
        "picows",
        "openai",
        "pipecat-ai",
        "numpy",
        "soxr",
        "pydantic",
    )
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_start": list(os.getloadavg()),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty_files": len((_git("status", "--porcelain") or "").splitlines()),
        "versions": {name: _version(name) for name in packages},
    }
