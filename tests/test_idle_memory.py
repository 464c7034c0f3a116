"""What an idle connected fast-mode session keeps in memory (issue 20: RSS per idle
session at most 1.2x the bare ``websockets`` client's).

RSS moves in pages and is measured by ``benchmarks/memory.py``; here the same idle
sessions are counted with deterministic measures instead: which per-session objects
carry an instance ``__dict__`` (each costs 50 bytes or more over ``__slots__``, and
from thirty attributes on, 1.6 KB), and the bytes ``tracemalloc`` sees allocated per
idle session against the floor client's in the same process. The benchmark's fake
server runs in a child process over a real socket on 127.0.0.1, so only the clients'
allocations are counted.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest
from benchmarks.clients import CLIENTS, BenchClient, FastClient, Recorder
from benchmarks.fakeserver import FakeServerProcess, ServerSettings

from voxengine import VoiceEngine
from voxengine.conversation.injector import ContextInjector
from voxengine.session.driver import RealtimeSession
from voxengine.session.link import SessionLink

pytestmark = pytest.mark.timeout(120)

#: Idle sessions counted per client.
SESSIONS = 20
#: Bytes ``tracemalloc`` sees per idle fast-mode session, at most this many times the
#: floor client's (measured 1.09x: 17.5 KB against 16.1 KB, Python 3.11, websockets 15;
#: 1.46x before the slots, the dropped upgrade headers and the objects made on need).
RATIO_BUDGET = 1.2


async def _allocated_per_session(name: str, url: str, tag: str) -> tuple[float, list[BenchClient]]:
    cls = CLIENTS[name]
    for i in range(2):  # lazy imports and first-use caches out of the count
        warm = cls(Recorder())
        await warm.connect(url, f"gpt-realtime-{tag}-warm-{i}")
        await warm.close()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        clients = [cls(Recorder()) for _ in range(SESSIONS)]
        for i, client in enumerate(clients):
            await client.connect(url, f"gpt-realtime-{tag}-{i}")
        await asyncio.sleep(0.2)  # idle: nothing arrives after session.updated
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return grown / SESSIONS, clients


def _owned(engine: VoiceEngine) -> list[object]:
    """The engine's per-session collaborators of an open fast-mode session."""
    link = engine.provider._link  # type: ignore[attr-defined]
    assert isinstance(link, SessionLink)
    session = link.session
    assert isinstance(session, RealtimeSession)
    injector = engine._injector
    assert isinstance(injector, ContextInjector)
    return [
        engine.events,
        engine.voice,
        engine.tools,
        injector,
        link,
        link.history,
        link._queue,
        link._ledger,
        link._watching,
        session,
        session.tracker,
    ]


async def test_idle_fast_session_objects_have_no_instance_dict() -> None:
    with FakeServerProcess(ServerSettings()) as server:
        client = FastClient(Recorder())
        await client.connect(server.url, "gpt-realtime-slots")
        try:
            assert client.engine is not None
            with_dict = [type(o).__name__ for o in _owned(client.engine) if hasattr(o, "__dict__")]
        finally:
            await client.close()
    assert with_dict == []


async def test_idle_fast_session_allocates_at_most_budget_times_the_floor() -> None:
    with FakeServerProcess(ServerSettings()) as server:
        floor, floor_clients = await _allocated_per_session("floor", server.url, "floor")
        fast, fast_clients = await _allocated_per_session("fast", server.url, "fast")
        for client in [*floor_clients, *fast_clients]:
            await client.close()
    assert floor > 5_000  # the count saw the floor's connections (a socket, websockets' state)
    assert fast <= RATIO_BUDGET * floor, (
        f"fast {fast:.0f} B vs floor {floor:.0f} B per idle session ({fast / floor:.2f}x)"
    )
