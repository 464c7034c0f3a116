"""Memory per idle connected session, as resident set size (RSS), one fresh process per client.

A child process (``spawn``: nothing inherited from the benchmark's own heap) imports the
client, opens and closes ``warmup`` sessions (lazy imports, first-use caches), collects
garbage and reads its RSS (``VmRSS`` in ``/proc/self/status``); then it opens ``count``
sessions that stay connected and idle, waits for them to settle, collects garbage and
reads RSS again. Figure = RSS growth / ``count``: what each extra connected session costs
the operating system, with every allocator's overhead included (``tracemalloc`` sees only
Python objects). Every client is measured the same way, so the ratios compare like with
like; RSS moves in pages, so ``count`` should be large (100 in the full run).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

__all__ = ["rss_bytes", "rss_per_session"]


def rss_bytes() -> int:
    """This process's resident set size in bytes (Linux ``/proc``; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def _measure(name: str, urls: list[str], models: list[str], warmup: int) -> float:
    from benchmarks.clients import CLIENTS, Recorder

    cls = CLIENTS[name]
    for i in range(warmup):
        client = cls(Recorder())
        await client.connect(urls[i % len(urls)], models[i])
        await client.close()
    await asyncio.sleep(0.1)
    gc.collect()
    before = rss_bytes()
    idle = models[warmup:]
    clients = [cls(Recorder()) for _ in idle]
    for i, (client, model) in enumerate(zip(clients, idle, strict=True)):
        await client.connect(urls[i % len(urls)], model)
    await asyncio.sleep(0.5)
    gc.collect()
    grown = rss_bytes() - before
    for client in clients:
        await client.close()
    return grown / len(idle)


def _child(name: str, urls: list[str], models: list[str], warmup: int, loop: str) -> float:
    from benchmarks.loops import run

    return run(_measure(name, urls, models, warmup), loop)


async def rss_per_session(
    name: str, urls: list[str], models: list[str], *, warmup: int = 2, loop: str = "asyncio"
) -> float:
    """RSS growth per idle session (bytes) of client ``name`` in a fresh child process.

    ``models`` names the connections (``warmup`` of them for the warm-up sessions, the
    rest stay connected while measured); the caller drops their server logs afterwards.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        future = pool.submit(_child, name, urls, models, warmup, loop)
        return await asyncio.wrap_future(future)
