"""Check that every benchmark figure quoted in the docs is in its results file.

Figures in README.md and docs/*.md are written with a marker naming the results file
(by its kind, see :data:`SOURCES`) and where in it they come from::

    fast mode's latency is <!-- bench:ratios.fast.vs_openai_sdk.in_process_p50 -->0.23 of
    time to first audio <!-- local:turns/ttfa_p50 -->0.81 s, word errors
    <!-- local:wer/conditions/piper joe 1.0x, clean/whisper_wer % -->2.9 %

The key is a dotted path (list items by index, e.g. ``machine.load_average_start.0``),
or a path split on ``/`` when the results' own keys hold dots, commas or spaces. A key
ending in `` %`` names a fraction the doc shows as a percentage (the value times 100).
A number right after the marker must equal the result rounded to as many decimals as
the doc writes (``58`` matches 57.77, ``0.23`` matches 0.2324); anything else right
after the marker (up to the next ``<`` or line end, trimmed) must start with a string
result exactly. :func:`check` lists every marker of one kind that does not hold (an
unknown key, a value that differs, or text where a number is stored); :func:`check_all`
checks every kind against its file. Run as a script (``python -m benchmarks.claims``) it
prints the problems and exits 1 if there are any.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DOCS", "RESULTS", "SOURCES", "Claim", "check", "check_all", "claims", "lookup"]

ROOT = Path(__file__).resolve().parent.parent
_RESULTS_DIR = ROOT / "benchmarks" / "results"
RESULTS = _RESULTS_DIR / "latest.json"
#: Marker kind -> the results file its figures come from.
SOURCES: dict[str, Path] = {
    "bench": RESULTS,
    "serving": _RESULTS_DIR / "serving.json",
    "local": _RESULTS_DIR / "local.json",
    "failover": _RESULTS_DIR / "failover.json",
    "hops": _RESULTS_DIR / "hops.json",
    "framecost": _RESULTS_DIR / "framecost.json",
}
#: Every page that may quote a figure.
DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))

_MARKER = re.compile(
    r"<!--\s*(?P<kind>" + "|".join(SOURCES) + r"):(?P<key>[^>]*?)\s*-->(?P<text>[^<\n]*)"
)
_NUMBER = re.compile(r"-?\d+(?:\.(?P<decimals>\d+))?")
_PERCENT = " %"


@dataclass(frozen=True, slots=True)
class Claim:
    """One marked figure: where it is, the results file's kind and key, the doc's text."""

    source: str
    line: int
    key: str
    text: str
    kind: str = "bench"


def claims(text: str, source: str = "<text>") -> list[Claim]:
    """Every marked figure in ``text`` (Markdown), of every kind."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for match in _MARKER.finditer(line):
            found.append(Claim(source, number, match["key"], match["text"].strip(), match["kind"]))
    return found


def lookup(results: Any, key: str) -> Any:
    """The value at ``key`` (dotted, or ``/``-separated) in ``results``.

    Raises:
        KeyError: no such key.
    """
    value = results
    for part in key.split("/" if "/" in key else "."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise KeyError(key)
    return value


def _problem(claim: Claim, results: Any) -> str | None:
    key, percent = claim.key, claim.key.endswith(_PERCENT)
    if percent:
        key = key.removesuffix(_PERCENT)
    try:
        value = lookup(results, key)
    except KeyError:
        return "no such key in the results"
    if percent and isinstance(value, int | float) and not isinstance(value, bool):
        value = value * 100
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


def check(results: Any, docs: Mapping[str, str], kind: str = "bench") -> list[str]:
    """Problems with the ``kind`` markers of ``docs`` (name -> Markdown) against ``results``."""
    problems = []
    for name, text in docs.items():
        for claim in claims(text, name):
            if claim.kind != kind:
                continue
            problem = _problem(claim, results)
            if problem is not None:
                problems.append(f"{claim.source}:{claim.line}: {kind}:{claim.key}: {problem}")
    return problems


def check_all(docs: Mapping[str, str] | None = None) -> list[str]:
    """Problems with every marker of ``docs`` (default: :data:`DOCS`), each kind against
    its own results file (:data:`SOURCES`)."""
    if docs is None:
        docs = {str(p.relative_to(ROOT)): p.read_text() for p in DOCS}
    problems = []
    for kind, path in SOURCES.items():
        if any(c.kind == kind for text in docs.values() for c in claims(text)):
            problems += check(json.loads(path.read_text()), docs, kind)
    return problems


def main() -> int:
    """Check README.md and docs/*.md against the results files."""
    docs = {str(p.relative_to(ROOT)): p.read_text() for p in DOCS}
    problems = check_all(docs)
    for problem in problems:
        print(problem)
    found = [c for text in docs.values() for c in claims(text)]
    kinds = ", ".join(f"{k} {sum(c.kind == k for c in found)}" for k in SOURCES)
    print(f"{len(found)} marked figures ({kinds}), {len(problems)} not in their results")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
