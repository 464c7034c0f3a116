"""The benchmark's bare clients really speak the protocol and decode every frame.

Each runs one short scripted session against the benchmark's fake server process over a
real socket on 127.0.0.1; every audio and transcript delta the server sent must reach
the client's recorder as decoded PCM, and the socket-read stamps must pair with them.
"""

from __future__ import annotations

import pytest
from benchmarks.clients import CLIENTS
from benchmarks.compare import BYTES_PER_SECOND, SessionPlan, run_session
from benchmarks.fakeserver import FakeServerProcess, ServerSettings
from benchmarks.readstamps import installed

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("name", ["floor", "raw", "protocol", "fast"])
async def test_client_receives_every_frame_decoded(name: str) -> None:
    plan = SessionPlan(turns=1, words=2, repeats=1, memory_sessions=0, turn_timeout=30)
    with FakeServerProcess(ServerSettings()) as server, installed() as stamps:
        result = await run_session(CLIENTS[name], server, plan, f"gpt-realtime-t-{name}", stamps)
    counts = result["counts"]
    assert counts["audio_sent"] == 30  # 2 words x 0.3 s in 20 ms deltas
    assert counts["audio_received"] == counts["audio_sent"]
    assert counts["transcript_received"] == counts["transcript_sent"] > 0
    assert result["audio_seconds"] == pytest.approx(0.6, abs=1 / BYTES_PER_SECOND)
    assert len(result["in_process_delays"]) == counts["audio_received"]
    assert all(d >= 0 for d in result["in_process_delays"])


@pytest.mark.parametrize("engine", ["picows", "protocol"])
@pytest.mark.parametrize("name", ["floor", "fast", "openai_sdk"])
async def test_lean_server_serves_a_whole_session(name: str, engine: str) -> None:
    # The scale test's lean load generator, on either front end, checked by the same
    # clients (the official openai SDK among them): every delta it logged as sent
    # arrives, decoded, in order, and its stamps are perf_counter seconds of the moment.
    if name == "openai_sdk":
        pytest.importorskip("openai")
    if engine == "picows":
        pytest.importorskip("picows", reason="the picows front end needs picows")
    plan = SessionPlan(turns=1, words=2, repeats=1, memory_sessions=0, turn_timeout=30)
    settings = ServerSettings(lean=True, lean_engine=engine)
    with FakeServerProcess(settings) as server, installed() as stamps:
        result = await run_session(CLIENTS[name], server, plan, f"gpt-realtime-l-{name}", stamps)
    counts = result["counts"]
    assert counts["audio_sent"] == 30  # 2 words x 0.3 s in 20 ms deltas
    assert counts["audio_received"] == counts["audio_sent"]
    assert counts["transcript_received"] == counts["transcript_sent"] == 2
    assert result["audio_seconds"] == pytest.approx(0.6, abs=1 / BYTES_PER_SECOND)
    assert all(0 <= d < 5 for d in result["audio_delays"])  # stamped on the shared clock


@pytest.mark.parametrize("name", ["floor", "fast"])
async def test_frame_cost_counts_are_exact_and_repeatable(name: str) -> None:
    # benchmarks/framecost.py feeds a pre-built audio frame to the client's read
    # callback: every frame reaches the application, and the calls counted per frame do
    # not depend on how many frames were fed (so the figure means one frame's work).
    from benchmarks.framecost import _measure_calls

    with FakeServerProcess(ServerSettings(stamp_frames=False)) as server:
        few = await _measure_calls(name, server.url, 20)
        more = await _measure_calls(name, server.url, 60)
    assert few["calls_per_frame"] == more["calls_per_frame"] > 10
    assert few["calls_per_frame"] == int(few["calls_per_frame"])
    assert few["calls_per_send"] > 10


@pytest.mark.parametrize("lean", [False, True], ids=["fake", "lean"])
@pytest.mark.parametrize(
    ("name", "library"),
    [("aiohttp_floor", "aiohttp"), ("picows_floor", "picows"), ("fast_picows", "picows")],
)
async def test_compiled_parser_floor_completes_a_session(
    name: str, library: str, lean: bool
) -> None:
    # The floors on compiled frame parsers (benchmarks/compiledclients.py), and fast
    # mode on the picows backend, speak the same protocol to the full fake (which checks every client event) and to the scale
    # test's lean server: every audio delta arrives decoded, every transcript
    # delta arrives, every turn's response ends, and the session closes cleanly (close()
    # returns; the suite fails a test on any unhandled asyncio error).
    pytest.importorskip(library, reason=f"{name} needs the optional {library!r} package")
    plan = SessionPlan(turns=2, words=2, repeats=1, memory_sessions=0, turn_timeout=30)
    with FakeServerProcess(ServerSettings(lean=lean)) as server:
        result = await run_session(CLIENTS[name], server, plan, f"gpt-realtime-c-{name}")
    counts = result["counts"]
    assert counts["audio_sent"] == 60  # 2 turns x 2 words x 0.3 s in 20 ms deltas
    assert counts["audio_received"] == counts["audio_sent"]
    assert counts["transcript_received"] == counts["transcript_sent"] > 0
    assert result["audio_seconds"] == pytest.approx(1.2, abs=1 / BYTES_PER_SECOND)
    assert all(d >= 0 for d in result["audio_delays"])


@pytest.mark.parametrize(
    ("name", "library"),
    [("aiohttp_floor", "aiohttp"), ("picows_floor", "picows"), ("fast_picows", "picows")],
)
async def test_compiled_parser_floor_frame_cost_is_per_frame(name: str, library: str) -> None:
    # framecost feeds these clients' own asyncio protocols (picows': a BufferedProtocol)
    # and each fed frame reaches the recorder: the count per frame does not depend on
    # how many frames were fed.
    pytest.importorskip(library, reason=f"{name} needs the optional {library!r} package")
    from benchmarks.framecost import _measure_calls

    with FakeServerProcess(ServerSettings(stamp_frames=False)) as server:
        few = await _measure_calls(name, server.url, 20)
        more = await _measure_calls(name, server.url, 60)
    assert few["calls_per_frame"] == more["calls_per_frame"] > 3
    assert few["calls_per_send"] > 3


@pytest.mark.parametrize("name", ["floor", "fast"])
def test_cache_cost_child_feeds_every_frame(name: str) -> None:
    # benchmarks/cachecost.py's child (what runs under callgrind) without valgrind: it
    # connects, evicts between frames and waits for each frame to reach the
    # application, so it ends (exit 0) only if every fed frame was delivered.
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    with FakeServerProcess(ServerSettings(stamp_frames=False)) as server:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.cachecost", "--child", name, server.url, "5"],
            capture_output=True,
            text=True,
            cwd=root,
            timeout=90,
        )
    assert done.returncode == 0, done.stderr[-2000:]
