"""Instructions per audio frame, layer by layer (receive and send), with callgrind.

:mod:`benchmarks.framecost` counts a frame's whole way; this splits it. One child
process under ``valgrind --tool=callgrind --dump-before=getppid`` opens a fast-mode
engine and a floor client against the fake server, then calls each layer's entry
point ``N`` times with the same pre-built input (the websockets read callback, the
frame hook, the session's push sink, the protocol, the link, the queue, the
strategy, the bus, the legacy callback; on the way out ``send_audio`` at each layer
down to ``websockets``' ``send``). ``os.getppid()`` between two segments makes
callgrind dump its counters, so each segment's instruction count is exact and
deterministic (the cyclic garbage collector is off while counting). A segment's
cost includes everything below it; the difference between two adjacent segments is
what one layer adds. The loop's own cost (an empty call) is subtracted.

``python -m benchmarks.layercost [--frames N]`` prints the table; nothing is written.
Entry points are private attributes: this is a profiling tool, kept in step with the
code it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["main"]


async def _child(url: str, frames: int) -> list[str]:
    from websockets.frames import Frame, Opcode

    from benchmarks.bareclients import HookClient, _append_frame, _dispatch
    from benchmarks.clients import FastClient, Recorder
    from benchmarks.framecost import _collecting, audio_frame
    from voxengine.commands import SendAudio

    names: list[str] = []
    rec = Recorder()
    fast = FastClient(rec)
    with _collecting() as made:
        await fast.connect(url, "gpt-realtime-layercost")
    conn = made[-1]
    floor_rec = Recorder()
    floor = HookClient(floor_rec)
    with _collecting() as made:
        await floor.connect(url, "gpt-realtime-layercost-floor")
    floor_conn = made[-1]
    engine = fast.engine
    assert engine is not None
    provider: Any = engine.provider
    link = provider._link
    session = link.session
    protocol = session._protocol
    queue = link._queue
    strategy = engine._strategy
    bus = engine.events
    wire = audio_frame()
    body = wire[4:] if wire[1] == 126 else wire[2:]
    text = body.decode()
    ws_frame = Frame(Opcode.TEXT, body)
    protocol.receive_message(text)
    event = protocol.events_received()[0]
    audio = event.audio
    pcm = bytes(960)
    append_bytes = _append_frame(pcm)  # what goes out: never a server event
    append_text = append_bytes.decode()
    command = SendAudio(audio=pcm)
    append = protocol
    ws = conn

    def noop() -> None:
        return None

    hot = hasattr(protocol, "receive_audio")  # this tree's hot path (else: before it)
    receive: list[tuple[str, Callable[[], object]]] = [
        ("loop (subtracted)", noop),
        ("fast: data_received", lambda: conn.data_received(wire)),
        ("fast: process_event", lambda: conn.process_event(ws_frame)),
        ("fast: session push sink", lambda: session._pushed(text)),
        (
            "fast: protocol decode",
            (lambda: protocol.receive_audio(text))
            if hot
            else (lambda: (protocol.receive_message(text), protocol.events_received())),
        ),
        ("fast: link", lambda: link._on_event(session, event)),
        ("fast: queue", lambda: queue.put_nowait(event)),
        ("fast: strategy", lambda: strategy._deliver(event)),
        ("fast: bus", lambda: bus.dispatch(event)),
        ("fast: legacy callback", lambda: engine._legacy_audio(event)),
        ("app callback", lambda: rec.on_audio(audio)),
        ("floor: data_received", lambda: floor_conn.data_received(wire)),
        ("floor: process_event", lambda: floor_conn.process_event(ws_frame)),
        ("floor: decode+callback", lambda: _dispatch(floor_rec, body)),
    ]

    async def anoop() -> None:
        return None

    def sync_append() -> Awaitable[None]:
        if hot:
            append.encode_audio(pcm)
        else:
            append.send(command)
            append.data_to_send()
        return anoop()

    voice = engine.voice
    send: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("await loop (subtracted)", anoop),
        ("fast: engine.send_audio", lambda: engine.send_audio(pcm)),
        ("fast: voice.send_audio", lambda: voice.send_audio(pcm, sample_rate=None, channels=1)),
        (
            "fast: provider",
            (lambda: provider.send_audio(pcm)) if hot else lambda: provider.send(command),
        ),
        ("fast: link", (lambda: link.send_audio(pcm)) if hot else lambda: link.send(command)),
        (
            "fast: session",
            (lambda: session.send_audio(pcm)) if hot else lambda: session.send(command),
        ),
        ("fast: protocol encode", sync_append),
        ("fast: ws.send(str)", lambda: ws.send(append_text)),
        ("floor: send_audio", lambda: floor.send_audio(pcm)),
        ("floor: ws.send(bytes)", lambda: floor_conn.send(append_bytes, text=True)),
    ]
    for _, fn in receive:
        for _ in range(20):
            fn()
    for _, afn in send:
        for _ in range(20):
            await afn()
    await asyncio.sleep(0.1)
    gc.collect()
    gc.disable()
    for name, fn in receive:
        await asyncio.sleep(0)
        os.getppid()
        names.append(name)
        for _ in range(frames):
            fn()
    for name, afn in send:
        await asyncio.sleep(0.05)
        os.getppid()
        names.append(name)
        for index in range(frames):
            if index % 50 == 0:
                await asyncio.sleep(0)
            await afn()
    os.getppid()
    gc.enable()
    await fast.close()
    await floor.close()
    return names


_TOTALS = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module docstring)."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        from benchmarks.loops import run

        names = run(_child(argv[1], int(argv[2])))
        print("SEGMENTS=" + "|".join(names), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=1000)
    args = parser.parse_args(argv)
    from benchmarks.fakeserver import ServerSettings, fake_server

    root = Path(__file__).resolve().parent.parent
    with (
        fake_server(ServerSettings(stamp_frames=False)) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        command = [
            "valgrind",
            "--tool=callgrind",
            "--dump-before=getppid",
            f"--callgrind-out-file={tmp}/out",
            sys.executable,
            "-m",
            "benchmarks.layercost",
            "--child",
            server.url,
            str(args.frames),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, capture_output=True, text=True, cwd=root, env=env)
        if done.returncode != 0:
            print(done.stderr[-3000:])
            return 1
        names = next(
            line.removeprefix("SEGMENTS=").split("|")
            for line in done.stdout.splitlines()
            if line.startswith("SEGMENTS=")
        )
        parts = sorted(Path(tmp).glob("out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
        counts = []
        for part in parts:
            match = _TOTALS.search(part.read_text(errors="replace"))
            counts.append(int(match.group(1)) if match else 0)
    # part 1 is everything before the first marker; part k+1 is segment k
    segment = counts[1 : 1 + len(names)]
    receive_loop = segment[0] / args.frames
    send_loop = None
    for name, total in zip(names, segment, strict=True):
        per = total / args.frames
        if name.startswith("await loop"):
            send_loop = per
        base = send_loop if send_loop is not None else receive_loop
        print(f"{name:32s} {per - base:10.0f}  (raw {per:.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
