"""Reliability figures for issue 13, measured against servers on 127.0.0.1.

* **Reconnect attempts per minute** against a server that accepts every handshake and
  drops the connection right after ``session.updated``, with the default
  :class:`~voxengine.config.ReconnectPolicy` (before the fix: ~3.5 connections/s,
  unbounded).
* **disconnect() worst case** (``VoiceEngine``) while a tool call hangs, while an async
  event handler hangs, and while a reconnect waits on a server that never answers.
* **Memory per idle connected session**: RSS growth of this process divided by the
  number of ``OpenAIProvider`` sessions held open against the fake server running in
  its own process (so only client memory is counted).

Run::

    .venv/bin/python -m benchmarks.reliability [--sessions 200] [--window 60] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from benchmarks.fakeserver import FakeServerProcess, ServerSettings
from voxengine import ResponseDone, SessionClosed, VoiceEngine, VoiceEngineConfig, tool
from voxengine.providers import OpenAIConfig, OpenAIProvider

KEY = "sk-bench-reliability"
Handler = Callable[[ServerConnection, int], Awaitable[None]]


async def _handshake(ws: ServerConnection) -> None:
    """openai-realtime.md §15.1, just enough for a client to become ready."""
    session = {"type": "realtime", "id": "sess_b", "model": "gpt-realtime"}
    await ws.send(json.dumps({"type": "session.created", "session": session}))
    while json.loads(await ws.recv()).get("type") != "session.update":
        pass
    await ws.send(json.dumps({"type": "session.updated", "session": session}))


async def _serve(handler: Handler) -> tuple[Any, list[float]]:
    """A raw server running ``handler`` per connection; also returns connection times."""
    times: list[float] = []

    async def handle(ws: ServerConnection) -> None:
        times.append(time.monotonic())
        with contextlib.suppress(ConnectionClosed):
            await handler(ws, len(times) - 1)

    server = await serve(handle, "127.0.0.1", 0)
    return server, times


def _url(server: Any) -> str:
    return f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


async def attempts_per_minute(window: float) -> dict[str, Any]:
    async def accept_then_drop(ws: ServerConnection, index: int) -> None:
        await _handshake(ws)
        ws.transport.abort()

    server, times = await _serve(accept_then_drop)
    provider = OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=_url(server)))
    start = time.monotonic()
    await provider.connect()
    closed: SessionClosed | None = None

    async def until_closed() -> None:
        nonlocal closed
        async for event in provider.events():
            if isinstance(event, SessionClosed):
                closed = event

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(until_closed(), window)
    ended = time.monotonic() - start
    await asyncio.sleep(max(0.0, window - ended))  # count anything later in the window
    await provider.disconnect()
    server.close()
    await server.wait_closed()
    in_window = sum(1 for t in times if t - start < window)
    return {
        "window_seconds": window,
        "connections_in_window": in_window,
        "connections_per_minute": in_window * 60 / window,
        "gave_up_after_seconds": round(ended, 2) if closed is not None else None,
        "close_reason": closed.reason if closed is not None else None,
    }


async def _disconnect_time(scenario: str) -> float:
    started = asyncio.Event()

    async def forever() -> str:
        """Never returns."""
        started.set()
        await asyncio.Event().wait()
        return ""

    async def handler(ws: ServerConnection, index: int) -> None:
        if scenario == "silent server" and index > 0:
            started.set()
            await ws.wait_closed()
            return
        await _handshake(ws)
        if scenario == "silent server":
            ws.transport.abort()
            return
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") != "response.create":
                continue
            rid = f"resp_{index}"
            await ws.send(json.dumps({"type": "response.created", "response": {"id": rid}}))
            if scenario == "hung tool":
                call = {
                    "type": "response.function_call_arguments.done",
                    "response_id": rid,
                    "item_id": "item_f",
                    "call_id": "call_1",
                    "name": "forever",
                    "arguments": "{}",
                }
                await ws.send(json.dumps(call))
            done = {"id": rid, "status": "completed", "output": []}
            await ws.send(json.dumps({"type": "response.done", "response": done}))

    server, _ = await _serve(handler)
    config = VoiceEngineConfig(
        provider="openai",
        api_key=KEY,
        base_url=_url(server),
        vad_enabled=False,
        tools=(tool(forever, timeout=None),),
    )
    engine = VoiceEngine(config)
    if scenario == "hung handler":

        async def stuck(event: ResponseDone) -> None:
            started.set()
            await asyncio.Event().wait()

        engine.events.on(ResponseDone, stuck)
    await engine.connect()
    if scenario != "silent server":
        await engine.create_response()
    await asyncio.wait_for(started.wait(), 60)
    began = time.monotonic()
    await engine.disconnect()
    took = time.monotonic() - began
    server.close()
    await server.wait_closed()
    return took


async def disconnect_worst_case(repeats: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for scenario in ("hung tool", "hung handler", "silent server"):
        times = [await _disconnect_time(scenario) for _ in range(repeats)]
        result[scenario] = {"max_seconds": round(max(times), 3), "runs": len(times)}
    result["worst_seconds"] = max(v["max_seconds"] for v in result.values())
    return result


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def memory_per_session(count: int) -> dict[str, Any]:
    with FakeServerProcess(ServerSettings(stamp_frames=False)) as server:
        warm = OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=server.url))
        await warm.connect()  # imports, first-connection allocations
        await warm.disconnect()
        providers = [
            OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=server.url)) for _ in range(count)
        ]
        gc.collect()
        before = _rss()
        for provider in providers:
            await provider.connect()
        await asyncio.sleep(1.0)  # idle
        gc.collect()
        grown = _rss() - before
        for provider in providers:
            await provider.disconnect()
    return {"sessions": count, "rss_bytes_per_session": round(grown / count)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    report = {
        "reconnects": await attempts_per_minute(args.window),
        "disconnect": await disconnect_worst_case(args.repeats),
        "memory": await memory_per_session(args.sessions),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
