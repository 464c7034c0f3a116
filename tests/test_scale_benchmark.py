"""The scale test's own measurements: the server's pacing, the per-CPU breakdown, a level.

Real processes and sockets on 127.0.0.1 (the lean server in a child process, the
clients in spawned workers); the bounds are generous, as a loaded machine stretches
every timing, and nothing here asserts that a level holds.
"""

from __future__ import annotations

import pytest
from benchmarks.fakeserver import ServerSettings
from benchmarks.scale import ScalePlan, ServerPool, run_level
from benchmarks.stats import cpu_breakdown

pytestmark = pytest.mark.timeout(180)


def test_cpu_breakdown_gives_each_cpus_shares_between_two_snapshots() -> None:
    # user nice system idle iowait irq softirq steal, in ticks
    before = {"cpu0": [100, 0, 50, 1000, 0, 0, 10, 0], "cpu1": [0, 0, 0, 0, 0, 0, 0, 0]}
    after = {"cpu0": [160, 0, 70, 1010, 0, 0, 20, 0], "cpu1": [50, 0, 0, 25, 0, 0, 0, 25]}
    shares = cpu_breakdown(before, after)
    assert shares is not None
    assert shares["cpu0"]["user"] == pytest.approx(60.0)
    assert shares["cpu0"]["system"] == pytest.approx(20.0)
    assert shares["cpu0"]["softirq"] == pytest.approx(10.0)
    assert shares["cpu0"]["idle"] == pytest.approx(10.0)
    assert shares["cpu1"] == pytest.approx(
        {
            "user": 50,
            "nice": 0,
            "system": 0,
            "softirq": 0,
            "irq": 0,
            "steal": 25,
            "iowait": 0,
            "idle": 25,
        }
    )
    assert cpu_breakdown(None, after) is None


@pytest.mark.parametrize("engine", ["picows", "protocol"])
async def test_a_scale_level_reports_server_pacing_cpu_and_the_flag(engine: str) -> None:
    if engine == "picows":
        pytest.importorskip("picows", reason="the picows front end needs picows")
    plan = ScalePlan(sessions=(3,), window=1.0, settle=0.5, client="floor")
    with ServerPool(ServerSettings(lean=True, lean_engine=engine), 1) as pool:
        level = await run_level(pool, 3, plan)
    [health] = level["server_health"]
    # every audio delta's lateness against its 20 ms deadline, in the window
    assert 0 <= health["pace_lateness_p99_ms"] <= health["pace_lateness_max_ms"] < 5_000
    assert health["loop_lag_p99_ms"] >= 0
    assert level["server_realtime_ratio"] > 0.5  # the server streamed in the window
    assert level["missing_events"] == 0
    assert len(level["server_cpu_pct_of_core"]) == 1
    breakdown = level["cpu_breakdown_pct"]
    assert breakdown
    assert all(sum(cpu.values()) == pytest.approx(100, abs=1) for cpu in breakdown.values())
    expected = health["loop_lag_p99_ms"] > 10 or health["pace_lateness_p99_ms"] > 10
    assert level["server_limited"] == (expected or level["server_cpu_pct_of_core"][0] > 90)
