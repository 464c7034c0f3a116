"""Check that every benchmark figure quoted in the docs is in the latest results file.

Figures in README.md and docs/performance.md are written with a marker naming where
they come from in ``benchmarks/results/latest.json``::

    fast mode's latency is <!-- bench:ratios.fast.vs_openai_sdk.in_process_p50 -->0.23 of

The key is a dotted path (list items by index, e.g. ``machine.load_average_start.0``).
A number right after the marker must equal the result rounded to as many decimals as
the doc writes (``58`` matches 57.77, ``0.23`` matches 0.2324); anything else right
after the marker (up to the next ``<`` or line end, trimmed) must equal a string
result exactly. :func:`check` lists every marker that does not hold (an unknown key,
a value that differs, or text where a number is stored). Run as a script
(``python -m benchmarks.claims``) it prints the problems and exits 1 if there are any.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DOCS", "RESULTS", "Claim", "check", "claims", "lookup"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "latest.json"
DOCS = (ROOT / "README.md", ROOT / "docs" / "performance.md")

_MARKER = re.compile(r"<!--\s*bench:(?P<key>[\w.\-]+)\s*-->(?P<text>[^<\n]*)")
_NUMBER = re.compile(r"-?\d+(?:\.(?P<decimals>\d+))?")


@dataclass(frozen=True, slots=True)
class Claim:
    """One marked figure: where it is, the results key, and the text the doc shows."""

    source: str
    line: int
    key: str
    text: str


def claims(text: str, source: str = "<text>") -> list[Claim]:
    """Every marked figure in ``text`` (Markdown)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in _MARKER.finditer(line):
            found.append(Claim(source, number, match["key"], match["text"].strip()))
    return found


def lookup(results: Any, key: str) -> Any:
    """The value at dotted ``key`` in ``results``.

    Raises:
        KeyError: no such key.
    """
    value = results
    for part in key.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(key)
    return value


def _problem(claim: Claim, results: Any) -> str | None:
    try:
        value = lookup(results, claim.key)
    except KeyError:
        return "no such key in the results"
    if isinstance(value, bool) or value is None:
        return None if claim.text.split()[:1] == [str(value).lower()] else f"results say {value}"
    if isinstance(value, int | float):
        match = _NUMBER.match(claim.text)
        if match is None:
            return f"no number after the marker (results say {value})"
        decimals = len(match["decimals"] or "")
        if not math.isfinite(value) or round(value, decimals) != float(match[0]):
            return f"doc says {match[0]}, results say {value:.{decimals}f}"
        return None
    if isinstance(value, str):
        return (
            None
            if claim.text.startswith(value)
            else f"doc says {claim.text!r}, results say {value!r}"
        )
    return f"the key names a {type(value).__name__}, not a figure"


def check(results: Any, docs: dict[str, str]) -> list[str]:
    """Problems with the marked figures of ``docs`` (name -> Markdown) against ``results``."""
    problems = []
    for name, text in docs.items():
        for claim in claims(text, name):
            problem = _problem(claim, results)
            if problem is not None:
                problems.append(f"{claim.source}:{claim.line}: bench:{claim.key}: {problem}")
    return problems


def main() -> int:
    """Check README.md and docs/performance.md against the latest results."""
    results = json.loads(RESULTS.read_text())
    problems = check(results, {str(p.relative_to(ROOT)): p.read_text() for p in DOCS})
    for problem in problems:
        print(problem)
    count = sum(len(claims(p.read_text())) for p in DOCS)
    print(f"{count} marked figures, {len(problems)} not in {RESULTS.relative_to(ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
