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
