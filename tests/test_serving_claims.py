"""The serving figures docs/performance.md quotes are the ones in
benchmarks/results/serving.json (markers ``<!-- serving:KEY -->value``, checked with
the same rules as the other benchmark figures, see benchmarks/claims.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from benchmarks.claims import check, claims

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "serving.json"
DOC = ROOT / "docs" / "performance.md"


def _serving_markers(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "<!-- serving:" in line)


def test_performance_doc_quotes_the_serving_results() -> None:
    marked = _serving_markers(DOC.read_text())
    assert len([c for c in claims(marked) if c.kind == "serving"]) >= 30
    results = json.loads(RESULTS.read_text())
    assert check(results, {"performance.md": marked}, kind="serving") == []


def test_a_changed_figure_is_caught() -> None:
    marked = _serving_markers(DOC.read_text())
    first = re.search(r"-->(\d+\.\d+) ", marked)  # the first decimal figure, changed
    assert first is not None
    changed = f"-->{float(first[1]) + 10:.2f} "
    marked = marked[: first.start()] + changed + marked[first.end() :]
    assert check(json.loads(RESULTS.read_text()), {"performance.md": marked}, kind="serving")
