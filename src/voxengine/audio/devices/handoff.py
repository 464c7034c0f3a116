"""Handing audio between threads and the event loop: :class:`ChunkQueue` (input, from
an audio thread to a coroutine) and :class:`PlaybackBuffer` (output, the other way)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.audio.pcm16 import validate_pcm16
from voxengine.errors import AudioError, ConfigError

__all__ = ["ChunkQueue", "PlaybackBuffer"]


@final
class ChunkQueue:
    """Bounded, ordered hand-off of audio chunks from any thread to one asyncio loop.

    :meth:`put_threadsafe` may be called from any thread (a PortAudio callback); it
    only schedules the put on the loop with ``loop.call_soon_threadsafe``, so chunks
    arrive on the loop in the order they were put. When the queue already holds
    ``maxsize`` chunks the oldest is dropped and counted in :attr:`dropped_chunks`.

    Args:
        loop: the loop that consumes the chunks.
        maxsize: most chunks held at once (at least 1).

    Raises:
        ConfigError: if ``maxsize`` is less than 1.
    """

    __slots__ = ("_closed", "_dropped", "_loop", "_queue")

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = 50) -> None:
        if maxsize < 1:
            raise ConfigError(f"maxsize must be >= 1, got {maxsize}")
        self._loop = loop
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize)
        self._dropped = 0
        self._closed = False

    @property
    def dropped_chunks(self) -> int:
        """Chunks dropped because the consumer fell behind."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def qsize(self) -> int:
        """Chunks waiting to be read."""
        return self._queue.qsize()

    def put_threadsafe(self, chunk: bytes) -> None:
        """Hand ``chunk`` to the loop; safe from any thread, never blocks.

        Chunks put after :meth:`close`, or after the loop was closed, are discarded.
        """
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody will read any more
            self._loop.call_soon_threadsafe(self._put, chunk)

    def _put(self, chunk: bytes) -> None:
        if self._closed:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self._dropped += 1
        self._queue.put_nowait(chunk)

    async def get(self) -> bytes:
        """Wait for the next chunk (call on the loop).

        Raises:
            AudioError: if the queue is closed, also while waiting.
        """
        if self._closed:
            raise AudioError("audio input is stopped")
        chunk = await self._queue.get()
        if chunk is None:
            self._queue.put_nowait(None)  # wake the next waiter too
            raise AudioError("audio input is stopped")
        return chunk

    def close(self) -> None:
        """Discard queued chunks and wake every waiting :meth:`get` with AudioError."""
        if self._closed:
            return
        self._closed = True
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)


@final
class PlaybackBuffer:
    """Thread-safe queue of PCM16 audio with exact playback accounting.

    The application thread :meth:`write`\\ s; a device thread :meth:`pull`\\ s exactly
    the frames it hands to the device. :attr:`played` advances by the written
    frames pulled (never by underrun silence) and is reset by :meth:`mark`.

    Args:
        fmt: format of the audio written and pulled.
    """

    __slots__ = ("_chunks", "_fmt", "_head", "_lock", "_played_frames", "_queued_bytes")

    def __init__(self, fmt: AudioFormat) -> None:
        self._fmt = fmt
        self._lock = threading.Lock()
        self._chunks: deque[bytes] = deque()
        self._head = 0  # bytes of _chunks[0] already pulled
        self._queued_bytes = 0
        self._played_frames = 0

    @property
    def format(self) -> AudioFormat:
        """Format of the audio."""
        return self._fmt

    @property
    def played(self) -> float:
        """Seconds of written audio pulled since the last :meth:`mark`."""
        return self._played_frames / self._fmt.sample_rate

    @property
    def played_frames(self) -> int:
        """Frames of written audio pulled since the last :meth:`mark`."""
        return self._played_frames

    @property
    def pending(self) -> float:
        """Seconds written but not yet pulled."""
        return self._queued_bytes / self._fmt.bytes_per_second

    def write(self, pcm: bytes) -> None:
        """Append ``pcm`` (whole frames of :attr:`format`).

        Raises:
            AudioError: if ``pcm`` is not bytes-like whole frames.
        """
        data = validate_pcm16(pcm, self._fmt)
        if not data:
            return
        with self._lock:
            self._chunks.append(data)
            self._queued_bytes += len(data)

    def read(self, frames: int) -> bytes:
        """Take up to ``frames`` frames of written audio (fewer on underrun)."""
        wanted = max(0, frames) * self._fmt.frame_bytes
        parts: list[bytes] = []
        with self._lock:
            while wanted and self._chunks:
                head = self._chunks[0]
                take = min(wanted, len(head) - self._head)
                parts.append(head[self._head : self._head + take])
                self._head += take
                wanted -= take
                if self._head == len(head):
                    self._chunks.popleft()
                    self._head = 0
            data = b"".join(parts)
            self._queued_bytes -= len(data)
            self._played_frames += len(data) // self._fmt.frame_bytes
        return data

    def pull(self, frames: int) -> bytes:
        """Take exactly ``frames`` frames, padding with silence on underrun."""
        data = self.read(frames)
        missing = max(0, frames) * self._fmt.frame_bytes - len(data)
        return data + bytes(missing) if missing else data

    def clear(self) -> float:
        """Drop all queued audio; returns the seconds dropped."""
        with self._lock:
            dropped = self._queued_bytes
            self._chunks.clear()
            self._head = 0
            self._queued_bytes = 0
        return dropped / self._fmt.bytes_per_second

    def mark(self) -> None:
        """Reset :attr:`played` to zero."""
        with self._lock:
            self._played_frames = 0
