"""The results PNG: event delay per client, and the scale test (matplotlib, Agg)."""

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
    levels = results.get("scale", {}).get("levels", [])
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))

    names = [c["client"] for c in clients.values()]
    p50 = [c["event_delay_p50_ms"] * 1e3 for c in clients.values()]
    p99 = [c["event_delay_p99_ms"] * 1e3 for c in clients.values()]
    positions = range(len(names))
    left.barh([p - 0.2 for p in positions], p50, height=0.4, label="p50")
    left.barh([p + 0.2 for p in positions], p99, height=0.4, label="p99")
    left.set_yticks(list(positions), names)
    left.invert_yaxis()
    left.set_xlabel("server send → application callback (µs)")
    left.set_title("Event delay, one session (lower is better)")
    left.legend()

    if levels:
        sessions = [lv["sessions"] for lv in levels]
        right.plot(sessions, [lv["event_delay"]["p99_ms"] for lv in levels], "o-", label="p99")
        right.plot(sessions, [lv["event_delay"]["p50_ms"] for lv in levels], "o-", label="p50")
        right.axhline(20, color="red", linestyle="--", label="20 ms budget")
        right.set_yscale("log")
        right.set_xlabel("concurrent fast-mode sessions (one process)")
        right.set_ylabel("event delay (ms)")
        cpu = right.twinx()
        cpu.plot(
            sessions,
            [lv["client_cpu_pct_of_core"] for lv in levels],
            "s:",
            color="grey",
            label="client CPU % of a core",
        )
        cpu.set_ylabel("client CPU (% of one core)")
        cpu.set_ylim(0, 110)
        right.legend(loc="upper left")
        cpu.legend(loc="lower right")
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
