"""Hops: the voxengine Python calls between a microphone frame and the socket, and
between a socket frame and the user's callback, per engine mode (deterministic).

Measured with :func:`sys.setprofile` against the fake OpenAI server over a real
loopback WebSocket:

* ``out``: from ``VoiceIO.send_audio`` (one 20 ms PCM16 frame, already at the
  provider's rate) to ``WebSocketConnection.send`` (or ``write_utf8``, the direct
  audio path's; the chain is the stack under the caller's ``await``, since layers
  that hand on the next coroutine have returned by then);
* ``in``: from the socket's read hook (``process_event``) handing over the frame that
  carries the first ``response.output_audio.delta`` to the application's
  ``AudioDelta`` handler.

For each: ``calls``, every call to a function defined in ``voxengine`` on the way
(both ends included; ``names`` lists them in order), and ``depth``, the frames on the
call stack from one end to the other (``chain``, the path the frame travels). Load does
not change either figure.

Run ``python -m benchmarks.hops`` (prints JSON; ``--out FILE`` writes it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

__all__ = ["measure_hops"]


def _chain(frame: FrameType | None, start: CodeType) -> list[str] | None:
    names: list[str] = []
    while frame is not None:
        names.append(frame.f_code.co_qualname)
        if frame.f_code is start:
            return names[::-1]
        frame = frame.f_back
    return None


async def _measure(mode: str) -> dict[str, Any]:
    import voxengine.transport.websocket as websocket
    from voxengine import VoiceEngine, VoiceEngineConfig
    from voxengine.events import AudioDelta
    from voxengine.testing import run_fake_openai_server
    from voxengine.voice_io import VoiceIO

    connection = websocket.WebSocketConnection
    out_first = VoiceIO.send_audio.__code__
    out_ends = {connection.send.__code__}
    for name in ("send_utf8", "write_utf8"):  # the direct audio path's, older and newer
        if hasattr(connection, name):
            out_ends.add(getattr(connection, name).__code__)

    async def send_once(engine: VoiceEngine) -> None:
        # The chain starts here: the layers that only hand on the next coroutine have
        # returned by the time the frame is written (they are counted, not stacked).
        await engine.voice.send_audio(b"\x00\x00" * 480, sample_rate=None, channels=1)

    out_start = send_once.__code__
    in_start = websocket._PushingConnection.process_event.__code__
    result: dict[str, Any] = {}
    calls: list[str] = []
    direction = "out"

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event != "call" or "voxengine" not in frame.f_code.co_filename:
            return
        if direction == "in" and frame.f_code is in_start:
            calls.clear()  # a new frame from the socket: count from here
        if direction == "out" and frame.f_code is out_first:
            calls.clear()  # count from VoiceIO.send_audio
        calls.append(frame.f_code.co_qualname)
        if direction == "out" and frame.f_code in out_ends and "out" not in result:
            result["out"] = {
                "calls": len(calls),
                "names": list(calls),
                "chain": (_chain(frame, out_start) or [])[1:],  # without send_once
            }

    def on_audio(event: AudioDelta) -> None:
        if "in" not in result:
            chain = _chain(sys._getframe(), in_start)
            names = [*calls, "on_audio"]  # + this handler
            result["in"] = {"calls": len(names), "names": names, "chain": chain}

    async with run_fake_openai_server() as server:
        config = VoiceEngineConfig(api_key="sk-test", mode=mode, base_url=server.url)  # type: ignore[arg-type]
        engine = VoiceEngine(config)
        engine.events.on(AudioDelta, on_audio)
        async with engine:
            sys.setprofile(profile)
            try:
                await send_once(engine)
                direction = "in"
                calls.clear()
                await engine.send_text("hi")
                for _ in range(500):
                    if "in" in result:
                        break
                    await asyncio.sleep(0.01)
            finally:
                sys.setprofile(None)
    for way in ("out", "in"):
        chain = result[way]["chain"]
        result[way]["depth"] = len(chain) if chain else None
    return result


def measure_hops(modes: tuple[str, ...] = ("fast", "provider", "big")) -> dict[str, Any]:
    """``{mode: {"out": {...}, "in": {...}}}``; see the module docstring."""
    return {mode: asyncio.run(_measure(mode)) for mode in modes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the JSON here too")
    args = parser.parse_args()
    figures = measure_hops()
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
