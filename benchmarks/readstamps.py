"""When each audio frame left the socket layer: the start of the in-process delay.

Every client under test reads its socket through ``websockets``' asyncio
``Connection`` (the raw floor, voxengine, the ``openai`` package and Pipecat alike).
:func:`installed` wraps ``Connection.process_event``, the point where ``websockets`` has
read and parsed a frame from the socket and hands it to the waiting reader, and stamps
every audio-delta text frame with ``time.perf_counter()``. The same wrapper runs for
every client, so its small cost (a prefix compare and a list append) is the same for all.

*In-process delay* = application callback stamp - socket-read stamp, n-th audio frame
against n-th audio callback (one session runs at a time in the comparison). It excludes
the server's write, the loopback and the kernel's wake-up of the client process, which
are the same for every client and are most of the noise on a shared VM.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.frames import Frame, Opcode

__all__ = ["AUDIO_PREFIX", "ReadStamps", "installed"]

#: Start of every audio delta frame the bundled fake sends (compact JSON, type first).
AUDIO_PREFIX = b'{"type":"response.output_audio.delta"'


class ReadStamps:
    """Socket-read stamps of audio frames, in arrival order, for the running session."""

    def __init__(self) -> None:
        self.audio: list[float] = []

    def clear(self) -> None:
        """Start a new session."""
        self.audio = []


@contextlib.contextmanager
def installed() -> Iterator[ReadStamps]:
    """Stamp audio frames in every ``websockets`` connection while the block runs."""
    stamps = ReadStamps()
    original = Connection.process_event
    prefix, size = AUDIO_PREFIX, len(AUDIO_PREFIX)
    perf_counter = time.perf_counter

    def process_event(self: Connection, event: Any) -> None:
        if type(event) is Frame and event.opcode is Opcode.TEXT and event.data[:size] == prefix:
            stamps.audio.append(perf_counter())
        original(self, event)

    Connection.process_event = process_event  # type: ignore[method-assign]
    try:
        yield stamps
    finally:
        Connection.process_event = original  # type: ignore[method-assign]
