"""Part 4: what ``import voxengine`` costs: modules loaded and wall time.

Each figure comes from a fresh interpreter (``python -c "import voxengine"``), so no
module is cached from an earlier run in this process:

* ``modules``: the ``voxengine`` modules in ``sys.modules`` after the import, how many
  of them are in ``voxengine.testing`` (the fakes; the target is none), and which of the
  optional heavy dependencies (models, schema validation, the console) were pulled in;
* ``import_seconds_median``: the median wall time of ``repeats`` interpreter runs of the
  import, minus the median of as many bare interpreter runs (``python -c "pass"``);
  ``import_cpu_seconds_median`` is the same with the child's CPU time (user + system),
  which a loaded machine disturbs less than the wall time;
* ``self_us_top``: the slowest modules by their own import time, from
  ``python -X importtime``, to show where the time goes.

Run it alone with ``python -m benchmarks.imports`` (writes ``results/imports.json``), or
as the ``imports`` part of ``python -m benchmarks.run``.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["HEAVY", "loaded_modules", "run_imports"]

#: Optional dependencies that ``import voxengine`` must not import.
HEAVY = (
    "faster_whisper",
    "llama_cpp",
    "piper",
    "onnxruntime",
    "jsonschema",
    "rich",
    "pocketsphinx",
)

_LIST = (
    "import json, sys, voxengine; "
    "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {})))"
)


def loaded_modules(roots: tuple[str, ...] = ("voxengine", *HEAVY)) -> list[str]:
    """The modules under ``roots`` that a fresh ``import voxengine`` leaves in sys.modules."""
    out = subprocess.run(
        [sys.executable, "-c", _LIST.format(set(roots))],
        check=True,
        capture_output=True,
        text=True,
    )
    return list(json.loads(out.stdout))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(code: str, repeats: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``repeats`` fresh interpreters running ``code``."""
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), _cpu()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        wall.append(time.perf_counter() - start)
        cpu.append(_cpu() - start_cpu)
    return wall, cpu


def _importtime(top: int) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import voxengine"],
        check=True,
        capture_output=True,
        text=True,
    )
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|")
        rows.append(
            {
                "module": name.strip(),
                "self_us": int(self_us),
                "cumulative_us": int(cumulative_us),
            }
        )
    rows.sort(key=lambda r: r["self_us"], reverse=True)
    return rows[:top]


def run_imports(repeats: int = 10, top: int = 15) -> dict[str, Any]:
    """Modules loaded by ``import voxengine``, its import time, and the breakdown."""
    modules = loaded_modules()
    ours = [m for m in modules if m.split(".")[0] == "voxengine"]
    bare, bare_cpu = _timed("pass", repeats)
    full, full_cpu = _timed("import voxengine", repeats)
    return {
        "voxengine_modules": len(ours),
        "testing_modules": [m for m in ours if m.startswith("voxengine.testing")],
        "heavy_imported": sorted({m.split(".")[0] for m in modules} - {"voxengine"}),
        "seconds_median": statistics.median(full),
        "interpreter_seconds_median": statistics.median(bare),
        "import_seconds_median": statistics.median(full) - statistics.median(bare),
        "import_cpu_seconds_median": statistics.median(full_cpu) - statistics.median(bare_cpu),
        "repeats": repeats,
        "self_us_top": _importtime(top),
    }


def print_imports(result: dict[str, Any]) -> None:
    """One paragraph of figures."""
    print(
        f"\nimport voxengine: {result['voxengine_modules']} voxengine modules"
        f" ({len(result['testing_modules'])} from voxengine.testing),"
        f" {result['import_seconds_median'] * 1e3:.0f} ms wall"
        f" ({result['import_cpu_seconds_median'] * 1e3:.0f} ms CPU) over a bare interpreter"
        f" (medians of {result['repeats']});"
        f" heavy deps imported: {', '.join(result['heavy_imported']) or 'none'}"
    )
    for row in result["self_us_top"][:8]:
        print(f"  {row['self_us']:7d} µs self  {row['module']}")


def main() -> int:
    """Measure and write ``results/imports.json``."""
    result = run_imports()
    print_imports(result)
    out = Path(__file__).resolve().parent / "results" / "imports.json"
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
