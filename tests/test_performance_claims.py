"""Every benchmark figure quoted in README.md and docs/*.md is in its results file.

The docs mark each quoted figure with ``<!-- KIND:key -->value`` (see
``benchmarks/claims.py``: ``bench`` for ``benchmarks/results/latest.json``, ``local``
for ``local.json``...); this fails when a marked figure is not the one in its results
file, or when a page that reports figures quotes no marked figure at all.
"""

from __future__ import annotations

import json

import pytest
from benchmarks.claims import ROOT, SOURCES, check, check_all, claims

RESULTS_SAMPLE = {
    "machine": {"cpu": "AMD EPYC", "load_average_start": [0.29, 0.2]},
    "ratios": {"fast": {"vs_openai_sdk": {"in_process_p50": 0.2324}}},
    "comparison": {"clients": {"fast": {"in_process_p50_us": 57.77}}},
    "scale": {"runs": [{"levels": [{"holds": True}]}]},
    "wer": {"piper joe 1.0x, clean": 0.0293},
}


def test_docs_quote_only_figures_from_their_results() -> None:
    assert check_all() == []


@pytest.mark.parametrize(
    ("page", "kind"),
    [
        ("README.md", "bench"),
        ("docs/performance.md", "bench"),
        ("docs/performance.md", "serving"),
        ("docs/performance.md", "local"),
        ("docs/local.md", "local"),
        ("docs/scaling.md", "failover"),
        ("docs/performance.md", "hops"),
        ("docs/transports.md", "bench"),
    ],
)
def test_the_pages_that_report_figures_mark_them(page: str, kind: str) -> None:
    found = [c for c in claims((ROOT / page).read_text()) if c.kind == kind]
    assert len(found) >= 3, f"{page} quotes fewer than 3 marked {kind} figures"


def test_every_results_file_a_marker_names_exists() -> None:
    for kind, path in SOURCES.items():
        assert isinstance(json.loads(path.read_text()), dict), kind


@pytest.mark.parametrize(
    "doc",
    [
        "fast: <!-- bench:comparison.clients.fast.in_process_p50_us -->58 µs",
        "<!-- bench:comparison.clients.fast.in_process_p50_us -->57.8",
        "| <!-- bench:ratios.fast.vs_openai_sdk.in_process_p50 -->0.23\u00d7 |",
        "on <!-- bench:machine.cpu -->AMD EPYC, load <!-- bench:machine.load_average_start.0 -->0.3",
        "<!-- bench:scale.runs.0.levels.0.holds -->true",
        "<!-- bench:wer/piper joe 1.0x, clean % -->2.9 %",
        "<!-- bench:wer/piper joe 1.0x, clean -->0.029",
    ],
)
def test_matching_figures_pass(doc: str) -> None:
    assert check(RESULTS_SAMPLE, {"doc": doc}) == []


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ("<!-- bench:comparison.clients.fast.in_process_p50_us -->59 µs", "results say 58"),
        ("<!-- bench:ratios.fast.vs_openai_sdk.in_process_p50 -->0.25\u00d7", "results say 0.23"),
        ("<!-- bench:comparison.clients.raw.in_process_p50_us -->82", "no such key"),
        ("<!-- bench:machine.load_average_start.5 -->0.3", "no such key"),
        ("<!-- bench:comparison.clients.fast.in_process_p50_us -->fast", "no number"),
        ("<!-- bench:machine.cpu -->Intel Xeon", "results say 'AMD EPYC'"),
        ("<!-- bench:comparison.clients -->1", "not a figure"),
        ("<!-- bench:scale.runs.0.levels.0.holds -->false", "results say True"),
        ("<!-- bench:wer/piper joe 1.0x, clean % -->3.9 %", "results say 2.9"),
        ("<!-- bench:wer/piper joe 1.0x, clean -->2.9 %", "results say 0.0"),
    ],
)
def test_a_figure_not_in_the_results_is_reported(doc: str, reason: str) -> None:
    problems = check(RESULTS_SAMPLE, {"doc": doc})
    assert len(problems) == 1
    assert reason in problems[0]
    assert problems[0].startswith("doc:1: bench:")


def test_markers_of_another_kind_are_checked_against_their_own_results() -> None:
    doc = "<!-- local:ttfa -->0.81 s and <!-- bench:comparison.clients.fast.in_process_p50_us -->58"
    assert check(RESULTS_SAMPLE, {"doc": doc}) == []  # the local figure is not bench's
    assert check({"ttfa": 0.8117}, {"doc": doc}, kind="local") == []
    problems = check({"ttfa": 0.9}, {"doc": doc}, kind="local")
    assert problems == ["doc:1: local:ttfa: doc says 0.81, results say 0.90"]
