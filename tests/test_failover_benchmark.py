"""The failover benchmark's scale part (benchmarks/failover.py) on a real deployment:
redis-server, two ``voxengine serve`` workers and HAProxy, one caller per worker for a
few seconds, the stamping provider fake in its own process. Its figures are timings
(not asserted); what is checked is that the harness measures what it says: every call
held, added latency samples both ways, Redis operations counted per call-minute, and
the level counted within a budget it cannot miss."""

from __future__ import annotations

import pytest
from benchmarks.cluster import MissingBinary
from benchmarks.failover import _headline, scale
from benchmarks.serving_parts import Subprocess, provider_main

pytestmark = pytest.mark.timeout(240)


async def test_one_level_on_two_workers() -> None:
    with Subprocess(provider_main, name="provider-fake") as provider:
        try:
            run = await scale(provider, 2, [1], 4.2, budget_ms=1e9, stop_ms=1e9)
        except MissingBinary as exc:
            pytest.skip(str(exc))
    (level,) = run["levels"]
    assert level["calls"] == 2
    assert level["calls_failed"] == 0, level["errors"]
    latency = level["added_latency_ms"]
    assert latency["samples"] > 300  # most 20 ms frames of 2 x 4.2 s, plus the replies
    assert latency["in_p50"] is not None
    assert latency["out_p50"] is not None
    # every call spent its token (SET NX), kept its record (scripts) and deleted it
    commands = level["redis_commands"]
    assert commands["evalsha"] >= 2
    assert commands["del"] == 2
    assert commands["set"] >= 2
    assert level["redis_ops_per_call_minute"] > 0
    assert (run["calls_per_worker"], run["calls_total"]) == (1, 2)
    summary = _headline({"conditions": "test", "scale": [run]})
    assert summary["calls"][0]["calls_total"] == 2
    assert summary["redis_ops_per_call_minute"]["min"] > 0
