"""Deterministic cost of the scale test's lean server per session step (callgrind).

Is the server side of the scale test cheap enough not to be what it measures? Wall-clock
CPU needs a quiet machine; this does not. The lean server process
(:mod:`benchmarks.leanserver`, either front end) runs under
``valgrind --tool=callgrind`` (multiprocessing's spawn executable is pointed at a
wrapper), ``sessions`` sessions of the ``protocol`` client each stream 20 ms input chunks
in real time while the server streams a reply of ``words`` words, and the server
process's instructions are counted. Twice, with a short and a long reply: the difference
divided by the extra audio deltas sent is the server's work per **session step** (one
20 ms audio delta framed, stamped and written, about one 20 ms input chunk read and
dropped, a transcript delta every 15 steps), start-up and handshakes cancelling out.

User-space instructions only: the kernel's share (one ``send`` per reply frame, one
``recv`` per readable socket) is the same for every front end and is not counted.
Few sessions (4 by default) keep the slowed-down server (about 50x under callgrind) from
falling behind, which would batch its reads and undercount.

``python -m benchmarks.servercost [--engines picows protocol] [--loop uvloop]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing.spawn
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.compare import input_chunk, prompt, stream_audio
from benchmarks.fakeserver import AUDIO, FakeServerProcess, ServerSettings

__all__ = ["run_servercost"]

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


@contextlib.contextmanager
def _under_callgrind(log: Path) -> Iterator[None]:
    """Spawned children run under callgrind; each one's summary goes to ``log`` % pid."""
    resource_tracker.ensure_running()  # a spawned helper too: started first, not counted
    folder = Path(tempfile.mkdtemp(prefix="servercost-"))
    wrapper = folder / "python"
    wrapper.write_text(
        "#!/bin/sh\n"
        "export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1\n"  # no idle BLAS threads counted
        f"exec valgrind --tool=callgrind --callgrind-out-file={log}.%p.out"
        f' --log-file={log}.%p {sys.executable} "$@"\n'
    )
    wrapper.chmod(0o755)
    before = multiprocessing.spawn.get_executable()
    multiprocessing.spawn.set_executable(str(wrapper))
    try:
        yield
    finally:
        multiprocessing.spawn.set_executable(before)
        shutil.rmtree(folder, ignore_errors=True)


async def _session(url: str, model: str, words: int) -> None:
    from benchmarks.clients import CLIENTS, Recorder

    rec = Recorder()
    client = CLIENTS["protocol"](rec)
    await client.connect(url, model)
    stop = asyncio.Event()
    streaming = asyncio.create_task(stream_audio(client.send_audio, stop, chunk=input_chunk()))
    await client.send_text(prompt(words))
    await asyncio.wait_for(rec.done.wait(), 600)
    stop.set()
    await streaming
    await client.close()


def _count(
    engine: str, loop: str, sessions: int, words: int, keep: Path | None = None
) -> tuple[int, int]:
    """(server instructions, audio deltas sent) for one run; ``keep``: its callgrind files."""
    with tempfile.TemporaryDirectory() as folder:
        log = (keep or Path(folder)) / f"callgrind-{engine}-{words}.log"
        settings = ServerSettings(lean=True, lean_engine=engine, loop=loop, watch_health=False)
        models = [f"gpt-realtime-cost-{engine}-{words}-{i}" for i in range(sessions)]
        server = FakeServerProcess(settings, start_timeout=300, stop_timeout=300)
        with _under_callgrind(log), server:
            asyncio.run(_all(server.url, models, words))
            logs = server.logs(models)
        sent = sum(len(entry.sent[AUDIO]) for entry in logs.values())
        summary = Path(f"{log}.{server.pid}").read_text()
        match = _COLLECTED.search(summary)
        if match is None:
            raise RuntimeError(f"no callgrind summary for the server: {summary[-500:]}")
        return int(match.group(1)), sent


async def _all(url: str, models: list[str], words: int) -> None:
    await asyncio.gather(*(_session(url, model, words) for model in models))


def run_servercost(
    engines: tuple[str, ...] = ("picows", "protocol"),
    loop: str = "uvloop",
    sessions: int = 4,
    words: tuple[int, int] = (5, 25),
    keep: Path | None = None,
) -> dict[str, Any]:
    """Server instructions per session step, per front end (see the module docstring)."""
    out: dict[str, Any] = {"sessions": sessions, "loop": loop, "words": list(words)}
    for engine in engines:
        (few, few_sent), (more, more_sent) = (
            _count(engine, loop, sessions, w, keep) for w in words
        )
        out[engine] = {
            "instructions_per_session_step": (more - few) / (more_sent - few_sent),
            "audio_deltas": [few_sent, more_sent],
            "instructions": [few, more],
        }
        print(
            f"  {engine}: {out[engine]['instructions_per_session_step']:.0f} instructions"
            " per session step (server, user space)"
        )
    return out


def main() -> int:
    """Parse arguments, count, print (and save with ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engines", nargs="+", default=["picows", "protocol"])
    parser.add_argument("--loop", default="uvloop", choices=("asyncio", "uvloop"))
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this folder")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        parser.error("needs valgrind (apt-get install valgrind)")
    result = run_servercost(tuple(args.engines), args.loop, args.sessions, keep=args.keep)
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
