"""The results PNG: added latency and event delay per client, and the scale test (Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["plot_results"]


def plot_results(results: dict[str, Any], path: Path) -> bool:
    """Write the figure to ``path``; False (and nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    clients = results.get("comparison", {}).get("clients", {})
    scale_runs = results.get("scale", {}).get("runs", [])
    fig, (inner, left, right) = plt.subplots(1, 3, figsize=(18, 5))

    names = [c["client"] for c in clients.values()]
    positions = range(len(names))
    for axis, (key50, key99, scale), label, title in (
        (
            inner,
            ("in_process_p50_us", "in_process_p99_us", 1.0),
            "socket read → application callback (µs)",
            "Added latency per event (lower is better)",
        ),
        (
            left,
            ("event_delay_p50_ms", "event_delay_p99_ms", 1e3),
            "server send → application callback (µs)",
            "End-to-end event delay, one session",
        ),
    ):
        p50 = [c[key50] * scale for c in clients.values()]
        p99 = [c[key99] * scale for c in clients.values()]
        axis.barh([p - 0.2 for p in positions], p50, height=0.4, label="p50")
        axis.barh([p + 0.2 for p in positions], p99, height=0.4, label="p99")
        axis.set_yticks(list(positions), names)
        axis.invert_yaxis()
        axis.set_xlabel(label)
        axis.set_title(title)
        axis.legend()

    if scale_runs:
        for scale_run in scale_runs:
            levels = scale_run["levels"]
            sessions = [lv["sessions"] for lv in levels]
            right.plot(
                sessions,
                [lv["event_delay"]["p99_ms"] for lv in levels],
                "o-",
                label=f"p99, {scale_run['label']}",
            )
        right.axhline(20, color="red", linestyle="--", label="20 ms budget")
        right.set_yscale("log")
        right.set_xlabel("concurrent sessions")
        right.set_ylabel("event delay p99 (ms)")
        right.legend(loc="upper left", fontsize=7)
        right.set_title("Scale: N sessions streaming 20 ms audio both ways")
    else:
        right.set_axis_off()
    machine = results.get("machine", {})
    fig.suptitle(
        f"voxengine benchmarks — {machine.get('date', '')}, {machine.get('cpu', '')},"
        f" {machine.get('cpu_count', '?')} cores, Python {machine.get('python', '')}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
