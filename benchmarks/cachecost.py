"""Cache misses and branch mispredictions per audio frame, fast mode vs the floor.

:mod:`benchmarks.framecost` counts instructions; on a real machine a frame's time also
depends on how much code and data it touches, because between two 20 ms frames the
process sleeps and other work (the server, other processes) evicts the caches. This
counts, under ``valgrind --tool=callgrind --cache-sim=yes --branch-sim=yes`` (a
simulated machine: deterministic, unaffected by load), per frame fed to a client's
socket read callback as :mod:`benchmarks.framecost` feeds it:

* **warm**: frames back to back (the best case: caches hold the previous frame's lines);
* **cold**: between two frames, work that evicts the simulated caches (compiling a
  small module, which runs much of the interpreter's parser and compiler, and
  copying a buffer twice the last-level cache's size). A frame's cold
  misses are about the distinct cache lines of code (``I1mr``) and data (``D1mr`` +
  ``D1mw``) it touches; ``LL`` misses are those from memory.

One child process per client runs two segments (callgrind dumps its counters at
``os.getppid()`` markers, as :mod:`benchmarks.layercost` does; the cyclic garbage
collector is off): ``N`` times (eviction, frame), then ``N`` frames back to back.
Callgrind simulates the caches all along but counts only inside the call that feeds
one frame (``--toggle-collect`` on ``functools.partial``'s C call, which nothing on a
frame's way uses), so the figures are the frame's own, per frame.
The simulated caches: 32 KiB 8-way L1 instruction and data, a 1 MiB 16-way
last-level cache (a core's L2; callgrind simulates two levels), 64-byte lines.

``python -m benchmarks.cachecost [--clients floor fast] [--frames N] [--keep DIR]``
prints the figures and their ratios to the floor's and writes ``--out`` (default
``results/cachecost.json``); ``--keep`` saves callgrind's dumps of each segment for
``callgrind_annotate`` (which functions the misses are in).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["run_cachecost"]

RESULTS = Path(__file__).resolve().parent / "results"
_LL_BYTES = 1 << 20
_CACHES = [
    "--I1=32768,8,64",
    "--D1=32768,8,64",
    f"--LL={_LL_BYTES},16,64",
]
#: A module whose compilation runs much of the interpreter's parser and compiler.
_EVICT_SOURCE = "\n".join(
    f"def f{i}(a, b=({i}, 'x{i}'), *c, **d):\n"
    f"    for k in range(a):\n"
    f"        yield {{k: [b, c, d, k * {i} % 7, f'{{k}}-{i}']}}\n"
    f"class C{i}:\n"
    f"    z = lambda self, q: q if q else [w for w in self if w] if self else None\n"
    for i in range(4)
)


def _evict(buffer: bytearray) -> None:
    compile(_EVICT_SOURCE, "<evict>", "exec")
    bytes(buffer)


#: The child's segments, in order (each ends at the next ``os.getppid()`` marker).
_SEGMENTS = ("cold", "warm")
#: The C function that runs one frame (a ``functools.partial`` of the read callback):
#: callgrind counts only inside it, the frame's own work and nothing else.
_COUNTED = "partial_vectorcall"


def _child(name: str, url: str, frames: int) -> None:
    """Under valgrind: connect, warm up, then two segments (``_SEGMENTS``): ``frames``
    times (eviction, frame), then ``frames`` frames back to back."""
    from benchmarks.framecost import WARMUP, _feed, _open, audio_frame
    from benchmarks.loops import run

    buffer = bytearray(2 * _LL_BYTES)

    async def main() -> None:
        client, rec, read = await _open(name, url)
        audio = rec.audio
        one_frame = functools.partial(read, audio_frame())  # the counted call
        await _feed(rec, read, audio_frame(), WARMUP)

        async def feed(evict: bool) -> None:
            for index in range(frames):
                if index % 25 == 0:
                    await asyncio.sleep(0)  # keepalive pings (callgrind is slow)
                if evict:
                    _evict(buffer)
                expected = len(audio) + 1
                one_frame()
                while len(audio) < expected:  # noqa: ASYNC110 (a reader task's turn)
                    await asyncio.sleep(0)

        gc.collect()
        gc.disable()
        os.getppid()  # callgrind dumps here: the segments start
        await feed(evict=True)
        os.getppid()
        await feed(evict=False)
        os.getppid()
        gc.enable()
        await client.close()

    run(main())


def _segments(
    name: str, url: str, frames: int, keep: Path | None = None
) -> dict[str, dict[str, int]]:
    """Event counts (callgrind's names) of each of the child's segments (``keep``: copy
    callgrind's dumps there, ``<name>.<segment>``, for ``callgrind_annotate``)."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "valgrind",
            "--tool=callgrind",
            "--cache-sim=yes",
            "--branch-sim=yes",
            "--dump-before=getppid",
            "--collect-atstart=no",
            f"--toggle-collect={_COUNTED}",
            *_CACHES,
            f"--callgrind-out-file={tmp}/out",
            sys.executable,
            "-m",
            "benchmarks.cachecost",
            "--child",
            name,
            url,
            str(frames),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        root = Path(__file__).resolve().parent.parent
        done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)
        if done.returncode != 0:
            raise RuntimeError(f"callgrind run of {name} failed:\n{done.stderr[-2000:]}")
        parts = sorted(Path(tmp).glob("out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        counts = []
        for part in parts:
            text = part.read_text(errors="replace")
            events = re.search(r"^events:\s*([\w ]+)$", text, re.MULTILINE)
            totals = re.search(r"^(?:summary|totals):\s*([\d ]+)$", text, re.MULTILINE)
            if events is None or totals is None:
                raise RuntimeError(f"no counts in callgrind's {part.name}")
            counts.append(
                dict(zip(events.group(1).split(), map(int, totals.group(1).split()), strict=True))
            )
            if keep is not None and 1 <= len(counts) - 1 <= len(_SEGMENTS):
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"{name}.{_SEGMENTS[len(counts) - 2]}").write_text(text)
    # part 1 is everything before the first marker; part k + 1 is segment k
    return dict(zip(_SEGMENTS, counts[1 : 1 + len(_SEGMENTS)], strict=True))


def _per_frame(counts: dict[str, int], frames: int) -> dict[str, float]:
    def get(*keys: str) -> float:
        return sum(counts.get(key, 0) for key in keys) / frames

    return {
        "instructions": get("Ir"),
        "I1_misses": get("I1mr"),
        "D1_misses": get("D1mr", "D1mw"),
        "LL_misses": get("ILmr", "DLmr", "DLmw"),
        "LL_code_misses": get("ILmr"),
        "LL_data_misses": get("DLmr", "DLmw"),
        "branches": get("Bc", "Bi"),
        "mispredicts": get("Bcm", "Bim"),
    }


def _measure(name: str, url: str, frames: int, keep: Path | None) -> dict[str, dict[str, float]]:
    seg = _segments(name, url, frames, keep)
    return {kind: _per_frame(counts, frames) for kind, counts in seg.items()}


async def run_cachecost(
    clients: tuple[str, ...], frames: int, keep: Path | None = None
) -> dict[str, Any]:
    """Per-frame cache and branch figures of every client (see the module docstring)."""
    from benchmarks.fakeserver import ServerSettings, fake_server

    results: dict[str, Any] = {"frames": frames, "caches": _CACHES, "clients": {}}
    with fake_server(ServerSettings(stamp_frames=False)) as server:
        for name in clients:
            entry = await asyncio.to_thread(_measure, name, server.url, frames, keep)
            results["clients"][name] = entry
            for kind, figures in entry.items():
                shown = {key: round(value, 1) for key, value in figures.items()}
                print(name, kind, shown, flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _, name, url, frames = argv
        _child(name, url, int(frames))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", nargs="+", default=["floor", "fast"])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS / "cachecost.json")
    parser.add_argument("--keep", type=Path, help="keep callgrind's dumps in this folder")
    args = parser.parse_args(argv)
    from benchmarks.loops import run

    results = run(run_cachecost(tuple(args.clients), args.frames, args.keep))
    floor = results["clients"].get("floor")
    if floor:
        for name, entry in results["clients"].items():
            for kind, figures in entry.items():
                ratios = {
                    key: round(value / floor[kind][key], 2)
                    for key, value in figures.items()
                    if floor[kind][key] > 0
                }
                print(name, kind, "vs floor", ratios)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
