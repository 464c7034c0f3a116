"""Every benchmark figure quoted in README.md and docs/performance.md is in the results.

The docs mark each quoted figure with ``<!-- bench:key -->value`` (see
``benchmarks/claims.py``); this fails when a marked figure is not the one in
``benchmarks/results/latest.json``, or when the docs quote no marked figure at all.
"""

from __future__ import annotations

import json

import pytest
from benchmarks.claims import DOCS, RESULTS, check, claims

RESULTS_SAMPLE = {
    "machine": {"cpu": "AMD EPYC", "load_average_start": [0.29, 0.2]},
    "ratios": {"fast": {"vs_openai_sdk": {"in_process_p50": 0.2324}}},
    "comparison": {"clients": {"fast": {"in_process_p50_us": 57.77}}},
    "scale": {"runs": [{"levels": [{"holds": True}]}]},
}


def test_docs_quote_only_figures_from_the_latest_results() -> None:
    results = json.loads(RESULTS.read_text())
    docs = {path.name: path.read_text() for path in DOCS}
    assert check(results, docs) == []


def test_the_performance_docs_mark_their_figures() -> None:
    for path in DOCS:
        assert claims(path.read_text()), f"{path.name} quotes no marked benchmark figure"


@pytest.mark.parametrize(
    "doc",
    [
        "fast: <!-- bench:comparison.clients.fast.in_process_p50_us -->58 µs",
        "<!-- bench:comparison.clients.fast.in_process_p50_us -->57.8",
        "| <!-- bench:ratios.fast.vs_openai_sdk.in_process_p50 -->0.23\u00d7 |",
        "on <!-- bench:machine.cpu -->AMD EPYC, load <!-- bench:machine.load_average_start.0 -->0.3",
        "<!-- bench:scale.runs.0.levels.0.holds -->true",
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
    ],
)
def test_a_figure_not_in_the_results_is_reported(doc: str, reason: str) -> None:
    problems = check(RESULTS_SAMPLE, {"doc": doc})
    assert len(problems) == 1
    assert reason in problems[0]
    assert problems[0].startswith("doc:1: bench:")
