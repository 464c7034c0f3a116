"""When each audio frame left the socket layer: the start of the in-process delay.

Every client under test reads its socket through ``websockets``' asyncio ``Connection``
(the raw floor, voxengine, the ``openai`` package and Pipecat alike), whose
``data_received`` feeds the bytes read from the socket to the sans-I/O
``websockets.protocol.Protocol`` and then takes the parsed frames from its
``events_received``. :func:`installed` wraps ``Protocol.events_received`` and stamps
every audio-delta text frame it returns with ``time.perf_counter()``: the moment
``websockets`` has read and parsed the frame, before it hands the frame to the
connection (``process_event``: a queue for a reader task, or voxengine's push sink).
The same wrapper runs for every client, so its small cost (a prefix compare and a list
append per frame) is the same for all.

*In-process delay* = application callback stamp - socket-read stamp, n-th audio frame
against n-th audio callback (one session runs at a time in the comparison). It excludes
the server's write, the loopback and the kernel's wake-up of the client process, which
are the same for every client and are most of the noise on a shared VM.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from websockets.frames import Frame, Opcode
from websockets.protocol import Event, Protocol

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
    original = Protocol.events_received
    prefix, size = AUDIO_PREFIX, len(AUDIO_PREFIX)
    perf_counter = time.perf_counter

    def events_received(self: Protocol) -> list[Event]:
        events = original(self)
        now = perf_counter()
        for event in events:
            if type(event) is Frame and event.opcode is Opcode.TEXT and event.data[:size] == prefix:
                stamps.audio.append(now)
        return events

    Protocol.events_received = events_received  # type: ignore[method-assign]
    try:
        yield stamps
    finally:
        Protocol.events_received = original  # type: ignore[method-assign]
