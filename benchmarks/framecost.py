"""Deterministic cost per audio frame: instructions and Python calls, fast mode vs the floor.

Wall-clock latency needs a quiet machine; this does not. Each client opens a real
session against the fake server (a child process, over 127.0.0.1) and then the same
pre-built server frame — a ``response.output_audio.delta`` with 20 ms of 24 kHz PCM16,
shaped like the fake's — is fed ``frames`` times to the client's socket read callback
(``data_received`` of its asyncio protocol: exactly what the event loop calls when the
socket is readable; for a ``BufferedProtocol``, as picows' is, the frame is copied into
the buffer from ``get_buffer`` and ``buffer_updated`` called, as the loop does), until
the application callback has seen each one. The cost of one frame's way from the
socket's bytes to the callback is then counted two ways:

* **Python calls per frame** (``sys.setprofile``: Python and C function calls), in
  process; repeatable to the call.
* **Instructions per frame** (``--instructions``): the same run under
  ``valgrind --tool=callgrind`` twice, with ``frames`` and with ``2 * frames`` frames;
  the difference divided by ``frames`` (5,000 by default: a run's start-up varies by
  about a million instructions, 200 per frame at that count) is what one frame costs,
  startup and handshake cancelling out (with the cyclic garbage collector off while
  counting: its runs land at different moments in different runs). Repeatable to
  about a percent under load.

The send direction (one ``input_audio_buffer.append`` per 20 ms of microphone audio,
the other half of the CPU per audio second) is counted the same way, ``send_audio``
awaited ``frames`` times over the real socket.

``python -m benchmarks.framecost`` prints both and writes ``results/framecost.json``;
``--clients`` picks the clients (default: floor, raw, protocol, fast).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gc
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from websockets.asyncio.connection import Connection
from websockets.frames import Frame, Opcode

__all__ = ["audio_frame", "run_framecost"]

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_CLIENTS = ("floor", "raw", "protocol", "fast")
WARMUP = 50
#: Frames between two turns of the event loop while counting: without them a callgrind
#: run starves the loop for minutes and the server's keepalive closes the connection.
_YIELD_EVERY = 50


def audio_frame(index: int = 0) -> bytes:
    """One unmasked server→client text frame carrying a 20 ms audio delta (as the fake)."""
    pcm = bytes(range(256)) * 3 + bytes(192)  # 960 bytes: 20 ms of 24 kHz PCM16
    message = {
        "type": "response.output_audio.delta",
        "event_id": f"event_{index}",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode("ascii"),
        "bench_sent": 12345.678901,
    }
    payload = json.dumps(message, separators=(",", ":")).encode()
    return Frame(Opcode.TEXT, payload).serialize(mask=False)


@contextlib.contextmanager
def _collecting() -> Iterator[list[Any]]:
    """Every ``websockets`` asyncio connection made in the block (the read callbacks)."""
    made: list[Any] = []
    original = Connection.connection_made

    def connection_made(self: Connection, transport: asyncio.BaseTransport) -> None:
        made.append(self)
        original(self, transport)

    Connection.connection_made = connection_made  # type: ignore[method-assign]
    try:
        yield made
    finally:
        Connection.connection_made = original  # type: ignore[method-assign]


async def _open(name: str, url: str) -> tuple[Any, Any, Callable[[bytes], None]]:
    """Client ``name`` connected to ``url``; returns (client, recorder, read callback)."""
    from benchmarks.clients import CLIENTS, Recorder

    rec = Recorder()
    client = CLIENTS[name](rec)
    with _collecting() as made:
        await client.connect(url, "gpt-realtime-framecost")
    # the client's own asyncio protocol (ProtocolClient, aiohttp, picows), else websockets'
    proto = getattr(client, "_proto", None)
    target = proto if proto is not None else made[-1]
    if isinstance(target, asyncio.BufferedProtocol):
        return client, rec, _buffered_reader(target)
    return client, rec, target.data_received


def _buffered_reader(proto: asyncio.BufferedProtocol) -> Callable[[bytes], None]:
    """Feed a ``BufferedProtocol`` (picows) as the event loop does: the bytes go into
    the buffer it lends (the loop's ``recv_into``), then ``buffer_updated``."""

    def read(data: bytes) -> None:
        size = len(data)
        buffer = memoryview(proto.get_buffer(size))
        if len(buffer) < size:
            raise RuntimeError(f"read buffer of {len(buffer)} bytes for a {size}-byte frame")
        buffer[:size] = data
        proto.buffer_updated(size)

    return read


async def _feed(
    rec: Any, read: Callable[[bytes], None], frame: bytes, count: int, pause: int = 0
) -> None:
    audio = rec.audio
    for index in range(count):
        if pause and index % pause == 0:
            await asyncio.sleep(0)  # let keepalive pings be answered (callgrind is slow)
        expected = len(audio) + 1
        read(frame)
        while len(audio) < expected:  # noqa: ASYNC110 (a reader task: one loop turn each)
            await asyncio.sleep(0)


async def _send(client: Any, count: int, pause: int = 0) -> None:
    pcm = bytes(960)
    for index in range(count):
        if pause and index % pause == 0:
            await asyncio.sleep(0)
        await client.send_audio(pcm)


async def _measure_calls(name: str, url: str, frames: int) -> dict[str, float]:
    client, rec, read = await _open(name, url)
    frame = audio_frame()
    counted = 0

    def profile(frame_: Any, event: str, arg: Any) -> None:
        nonlocal counted
        if event == "call" or event == "c_call":
            counted += 1

    try:
        await _feed(rec, read, frame, WARMUP)
        await _send(client, WARMUP)
        sys.setprofile(profile)
        sys.setprofile(None)
        # the window's own calls: turning it off, and the _feed/_send coroutine itself
        overhead, counted = counted + 1, 0
        sys.setprofile(profile)
        try:
            await _feed(rec, read, frame, frames)
        finally:
            sys.setprofile(None)
        calls, counted = counted - overhead, 0
        sys.setprofile(profile)
        try:
            await _send(client, frames)
        finally:
            sys.setprofile(None)
        sends = counted - overhead
        return {"calls_per_frame": calls / frames, "calls_per_send": sends / frames}
    finally:
        await client.close()


def _child(name: str, url: str, frames: int, sends: int) -> None:
    """Under valgrind: connect, warm up, feed ``frames`` frames and ``sends`` sends."""
    from benchmarks.loops import run

    async def main() -> None:
        client, rec, read = await _open(name, url)
        frame = audio_frame()
        await _feed(rec, read, frame, WARMUP)
        await _send(client, WARMUP)
        # The cyclic collector runs at moments that differ between runs (a full
        # collection is millions of instructions): off while counting, so the counts
        # are the frames' own work (reference counting frees what they allocate).
        gc.collect()
        gc.disable()
        await _feed(rec, read, frame, frames, _YIELD_EVERY)
        await _send(client, sends, _YIELD_EVERY)
        await client.close()

    run(main())


_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _instructions(name: str, url: str, frames: int, sends: int) -> int:
    """Instructions (callgrind ``Ir``) of a child run of :func:`_child`."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={tmp}/out",
            sys.executable,
            "-m",
            "benchmarks.framecost",
            "--child",
            name,
            url,
            str(frames),
            str(sends),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        root = Path(__file__).resolve().parent.parent
        done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)
        match = _COLLECTED.search(done.stderr)
        if done.returncode != 0 or match is None:
            raise RuntimeError(f"callgrind run of {name} failed:\n{done.stderr[-2000:]}")
        return int(match.group(1))


def _instructions_per(name: str, url: str, frames: int) -> dict[str, float]:
    base = _instructions(name, url, frames, frames)
    more_frames = _instructions(name, url, 2 * frames, frames)
    more_sends = _instructions(name, url, frames, 2 * frames)
    return {
        "instructions_per_frame": (more_frames - base) / frames,
        "instructions_per_send": (more_sends - base) / frames,
    }


async def run_framecost(
    clients: tuple[str, ...], frames: int, *, instructions: bool, calls_frames: int = 2000
) -> dict[str, Any]:
    """Per-frame costs of every client (see the module docstring)."""
    from benchmarks.fakeserver import ServerSettings, fake_server

    results: dict[str, Any] = {"frames": frames, "clients": {}}
    with fake_server(ServerSettings(stamp_frames=False)) as server:
        for name in clients:
            entry = await _measure_calls(name, server.url, calls_frames)
            if instructions:
                entry |= await asyncio.to_thread(_instructions_per, name, server.url, frames)
            results["clients"][name] = entry
            print(name, {k: round(v, 1) for k, v in entry.items()}, flush=True)
    floor = results["clients"].get("floor")
    if floor:
        for entry in results["clients"].values():
            for key in list(entry):
                if not key.endswith("_vs_floor") and floor.get(key):
                    entry[f"{key}_vs_floor"] = entry[key] / floor[key]
    return results


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        _, name, url, frames, sends = argv
        _child(name, url, int(frames), int(sends))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", nargs="+", default=list(DEFAULT_CLIENTS))
    parser.add_argument("--frames", type=int, default=5000, help="frames per callgrind run")
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    parser.add_argument("--out", type=Path, default=RESULTS / "framecost.json")
    args = parser.parse_args(argv)
    from benchmarks.loops import run

    results = run(run_framecost(tuple(args.clients), args.frames, instructions=args.instructions))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
