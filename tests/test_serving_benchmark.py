"""The serving benchmark (benchmarks/serving.py): its latency arithmetic, and one short
real run per server: voxengine's Twilio endpoint, and Pipecat's FastAPI WebSocket
transport with its TwilioFrameSerializer (a Media Streams server no one here wrote,
which also checks that the fake Twilio speaks the protocol as others implement it)."""

from __future__ import annotations

import importlib.util

import pytest
from benchmarks.serving import CallerRecord, _latencies_in, _latencies_out, run_level
from benchmarks.serving_parts import ProviderLog, Subprocess, provider_main

pytestmark = pytest.mark.timeout(240)


def test_inbound_latency_is_until_the_provider_has_the_whole_frame() -> None:
    record = CallerRecord(tag="t", sent=[10.0, 10.02, 10.04])
    # the provider got 10 ms, then 30 ms, then 60 ms of audio
    log = ProviderLog(audio_in=[(10.005, 0.01), (10.03, 0.03), (10.07, 0.06)])
    assert _latencies_in(record, log) == pytest.approx([0.03, 0.05, 0.03])


def test_outbound_latency_is_until_the_caller_has_the_whole_delta() -> None:
    log = ProviderLog(audio_out=[(5.0, 0.02), (5.02, 0.04), (5.04, 0.06)])
    record = CallerRecord(tag="t", received=[(5.001, 0.02), (5.05, 0.0595)])
    # the last delta's final 0.5 ms is within the 1 ms tolerance
    assert _latencies_out(record, log) == pytest.approx([0.001, 0.03, 0.01])


@pytest.mark.parametrize("system", ["voxengine-twilio", "pipecat-twilio"])
async def test_one_real_caller(system: str) -> None:
    if system.startswith("pipecat") and not all(
        importlib.util.find_spec(name) for name in ("pipecat", "fastapi")
    ):
        pytest.skip("pipecat-ai or fastapi is not installed (pip install -e '.[sdk-tests]')")
    with Subprocess(provider_main, name="provider-fake") as provider:
        level = await run_level(system, 1, 4.2, provider)
    assert level["calls_failed"] == 0, level["errors"]
    assert level["protocol_violations"] == 0
    assert level["responses"] >= 1  # the utterance was answered
    assert level["frames_in"] > 150  # most of the 4.2 s of caller audio reached the provider
    assert level["deltas_out"] > 50  # the 2.1 s reply reached the caller
    assert level["in_p50_ms"] >= 0


def test_a_level_holds_when_both_p99s_are_under_20_ms_and_no_call_failed() -> None:
    from benchmarks.serving import holds

    good = {"calls_failed": 0, "in_p99_ms": 19.9, "out_p99_ms": 3.0}
    assert holds(good)
    assert not holds(good | {"out_p99_ms": 20.0})
    assert not holds(good | {"in_p99_ms": None})
    assert not holds(good | {"calls_failed": 1})


async def test_the_sweep_finds_the_most_callers_that_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    import benchmarks.serving as serving

    capacity = 37  # what the pretend server holds
    tried: list[int] = []

    async def pretend(system: str, count: int, seconds: float, provider: object) -> dict:
        tried.append(count)
        p99 = 5.0 if count <= capacity else 45.0
        return {
            "callers": count,
            "calls_failed": 0,
            "in_p99_ms": p99,
            "out_p99_ms": p99,
            "server_cpu_percent": 1.0,
        }

    monkeypatch.setattr(serving, "run_level", pretend)
    result = await serving.sweep("voxengine-twilio", 1.0, None, max_callers=256)  # type: ignore[arg-type]
    assert tried[:7] == [1, 2, 4, 8, 16, 32, 64]
    # bisected to within 10 %: the answer holds, the first failing level does not
    assert capacity * 0.9 <= result["max_callers"] <= capacity < result["first_failing"]
    assert [level["holds"] for level in result["levels"]] == [
        n <= capacity for n in sorted(set(tried))
    ]
    # a server that holds everything stops at the ceiling
    capacity = 10_000
    tried.clear()
    result = await serving.sweep("voxengine-twilio", 1.0, None, max_callers=100)  # type: ignore[arg-type]
    assert result["max_callers"] == 100
    assert result["first_failing"] is None


def test_the_low_delay_resampler_holds_nothing_back_where_soxr_does() -> None:
    from benchmarks.serving import resampling_delays

    table = resampling_delays()
    assert set(table) == {"8k-24k", "24k-8k", "16k-24k", "48k-24k"}
    for row in table.values():
        assert row["low_delay"]["held_back_max_ms"] == 0.0
        assert 0.0 < row["low_delay"]["signal_delay_ms"] <= 3.5
    assert table["24k-8k"]["soxr_hq"]["held_back_max_ms"] >= 20.0
