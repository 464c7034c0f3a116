"""The serving figures docs/performance.md quotes are the ones in
benchmarks/results/serving.json (markers ``<!-- serving:KEY -->value``, checked with
the same rules as the other benchmark figures, see benchmarks/claims.py)."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks.claims import check, claims

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "serving.json"
DOC = ROOT / "docs" / "performance.md"


def _serving_markers(text: str) -> str:
    lines = [line for line in text.splitlines() if "<!-- serving:" in line]
    return "\n".join(line.replace("<!-- serving:", "<!-- bench:") for line in lines)


def test_performance_doc_quotes_the_serving_results() -> None:
    marked = _serving_markers(DOC.read_text())
    assert len(claims(marked)) >= 30
    assert check(json.loads(RESULTS.read_text()), {"performance.md": marked}) == []


def test_a_changed_figure_is_caught() -> None:
    marked = _serving_markers(DOC.read_text()).replace("-->1.36 ", "-->3.16 ", 1)
    assert check(json.loads(RESULTS.read_text()), {"performance.md": marked})
