"""Inputs and outputs without a sound card: WAV files and silence, paced like a device."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import final

from voxengine.audio.devices.base import Clock, _check_chunk
from voxengine.audio.devices.handoff import PlaybackBuffer
from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.audio.pcm16 import silence
from voxengine.audio.resample import convert
from voxengine.audio.wav import read_wav, write_wav
from voxengine.errors import AudioError, ConfigError

__all__ = ["FileInput", "FileOutput", "NullInput", "NullOutput"]


class _PacedInput:
    """Delivers ``audio`` (or, if None, ``total_bytes`` of silence; None for endless) in
    chunks, optionally at wall-clock pace."""

    def __init__(
        self,
        fmt: AudioFormat,
        *,
        chunk: float,
        realtime: bool,
        audio: bytes | None,
        total_bytes: int | None,
    ) -> None:
        self._fmt = fmt
        self._audio = audio
        self._total = len(audio) if audio is not None else total_bytes
        self._chunk_bytes = _check_chunk(chunk, fmt)
        self._realtime = realtime
        self._loop: asyncio.AbstractEventLoop | None = None
        self._run = 0  # bumped by start() and stop(), so a waiting read() notices either
        self._origin = 0.0
        self._position = 0  # bytes delivered since start()

    @property
    def format(self) -> AudioFormat:
        """Format of the chunks ``read()`` returns."""
        return self._fmt

    @property
    def realtime(self) -> bool:
        """True if chunks are paced at wall-clock rate."""
        return self._realtime

    async def start(self) -> None:
        """Start (or restart) from the beginning; the pacing clock starts now."""
        self._loop = asyncio.get_running_loop()
        self._run += 1
        self._origin = self._loop.time()
        self._position = 0

    async def stop(self) -> None:
        """Stop; a waiting or later ``read()`` raises AudioError. Idempotent."""
        self._loop = None
        self._run += 1

    async def read(self) -> bytes:
        """Return the next chunk once it is "captured"; ``b""`` at the end.

        In realtime mode a chunk is returned when the clock reaches its end time
        (``start() + seconds delivered``), so the pace does not drift.

        Raises:
            AudioError: if not started or stopped, also while waiting.
        """
        loop = self._loop
        if loop is None:
            raise AudioError("audio input is not started (or was stopped)")
        end = self._position + self._chunk_bytes
        if self._total is not None:
            end = min(end, self._total)
        if end <= self._position:
            return b""
        if self._audio is None:
            data = bytes(end - self._position)
        else:
            data = self._audio[self._position : end]
        self._position = end
        if self._realtime:
            run = self._run
            delay = self._origin + self._fmt.duration(end) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._run != run:
                raise AudioError("audio input was stopped")
        return data


@final
class FileInput(_PacedInput):
    """A WAV file as an audio input, followed by ``trailing_silence`` seconds of silence.

    The file is read and converted to ``fmt`` (rate and channels, see
    :func:`~voxengine.audio.resample.convert`) at construction. Chunks hold
    ``chunk`` seconds (the last one may be shorter). ``read()`` returns ``b""`` at
    the end. ``start()`` rewinds.

    Args:
        path: a 16-bit PCM WAV file.
        fmt: format to deliver.
        chunk: seconds per chunk.
        realtime: pace chunks at wall-clock rate (like a microphone); if False,
            return them as fast as they are read.
        trailing_silence: seconds of silence after the file (lets a VAD see the end).

    Raises:
        AudioError: if the file is not a readable PCM16 WAV file.
        ConfigError: for a bad ``chunk`` or ``trailing_silence``.
    """

    def __init__(
        self,
        path: str | Path,
        fmt: AudioFormat = PCM16_24K,
        *,
        chunk: float = 0.02,
        realtime: bool = True,
        trailing_silence: float = 1.0,
    ) -> None:
        if not math.isfinite(trailing_silence) or trailing_silence < 0:
            raise ConfigError(f"trailing_silence must be >= 0 seconds, got {trailing_silence}")
        data, file_fmt = read_wav(path)
        audio = convert(data, file_fmt, fmt) + silence(trailing_silence, fmt)
        super().__init__(fmt, chunk=chunk, realtime=realtime, audio=audio, total_bytes=None)

    @property
    def duration(self) -> float:
        """Seconds of audio delivered in total, trailing silence included."""
        return self._fmt.duration(self._total or 0)


@final
class NullInput(_PacedInput):
    """Digital silence as an audio input.

    Args:
        fmt: format to deliver.
        chunk: seconds per chunk.
        realtime: pace chunks at wall-clock rate; if False, return them at once.
        duration: seconds of silence before ``read()`` returns ``b""``; None for endless.

    Raises:
        ConfigError: for a bad ``chunk`` or ``duration``.
    """

    def __init__(
        self,
        fmt: AudioFormat = PCM16_24K,
        *,
        chunk: float = 0.02,
        realtime: bool = True,
        duration: float | None = None,
    ) -> None:
        if duration is not None and (not math.isfinite(duration) or duration < 0):
            raise ConfigError(f"duration must be >= 0 seconds or None, got {duration}")
        total = None if duration is None else fmt.bytes_for(duration)
        super().__init__(fmt, chunk=chunk, realtime=realtime, audio=None, total_bytes=total)


class _ClockedOutput:
    """An output whose "device" consumes frames at the sample rate of a clock."""

    def __init__(
        self, fmt: AudioFormat, *, realtime: bool, clock: Clock | None, keep_audio: bool
    ) -> None:
        self._buffer = PlaybackBuffer(fmt)
        self._realtime = realtime
        self._clock = clock
        self._running_clock: Clock | None = None
        self._origin = 0.0
        self._device_frames = 0  # frames the virtual device consumed since start()
        self._audio: bytearray | None = bytearray() if keep_audio else None

    @property
    def format(self) -> AudioFormat:
        """Format ``write()`` expects."""
        return self._buffer.format

    @property
    def realtime(self) -> bool:
        """True if audio is consumed at clock rate, False if written audio counts as played."""
        return self._realtime

    @property
    def played(self) -> float:
        """Seconds of written audio consumed since the last ``mark()``."""
        self._advance()
        return self._buffer.played

    @property
    def pending(self) -> float:
        """Seconds written but not yet consumed."""
        self._advance()
        return self._buffer.pending

    async def start(self) -> None:
        """Start consuming audio at clock rate (realtime mode). Idempotent."""
        if self._running_clock is not None:
            return
        clock = self._clock if self._clock is not None else asyncio.get_running_loop().time
        self._running_clock = clock
        self._origin = clock()
        self._device_frames = 0
        self._advance()

    async def stop(self) -> None:
        """Stop consuming; what is pending stays pending. Idempotent."""
        self._advance()
        self._running_clock = None

    def write(self, pcm: bytes) -> None:
        """Queue ``pcm``; in non-realtime mode it counts as played at once.

        Raises:
            AudioError: if ``pcm`` is not whole frames of :attr:`format`.
        """
        self._advance()  # time that passed while idle was silence, not this audio
        self._buffer.write(pcm)
        if not self._realtime:
            self._consume(len(pcm) // self._buffer.format.frame_bytes)

    def clear(self) -> float:
        """Drop the audio not yet consumed; returns the seconds dropped."""
        self._advance()
        return self._buffer.clear()

    def mark(self) -> None:
        """Reset :attr:`played` to zero."""
        self._advance()
        self._buffer.mark()

    def _consume(self, frames: int) -> None:
        data = self._buffer.read(frames)
        if self._audio is not None:
            self._audio += data

    def _advance(self) -> None:
        clock = self._running_clock
        if clock is None or not self._realtime:
            return
        elapsed = max(0.0, clock() - self._origin)
        total = math.floor(elapsed * self._buffer.format.sample_rate + 1e-6)
        if total > self._device_frames:
            self._consume(total - self._device_frames)
            self._device_frames = total


@final
class FileOutput(_ClockedOutput):
    """Collects the audio that was played; :meth:`save` writes it as a WAV file.

    Args:
        fmt: format ``write()`` expects.
        realtime: if True, audio is consumed at ``sample_rate`` frames per second of
            ``clock`` between ``start()`` and ``stop()`` (like a speaker) and
            ``clear()`` drops the unplayed part; if False, written audio counts as
            played immediately (``start()`` is optional).
        clock: monotonic seconds; defaults to the running loop's ``time()``.
    """

    def __init__(
        self, fmt: AudioFormat = PCM16_24K, *, realtime: bool = True, clock: Clock | None = None
    ) -> None:
        super().__init__(fmt, realtime=realtime, clock=clock, keep_audio=True)

    @property
    def audio(self) -> bytes:
        """All audio played so far, back to back (not reset by ``mark()``; no underrun gaps)."""
        self._advance()
        assert self._audio is not None
        return bytes(self._audio)

    def save(self, path: str | Path) -> None:
        """Write :attr:`audio` to ``path`` as a WAV file."""
        write_wav(path, self.audio, self.format)


@final
class NullOutput(_ClockedOutput):
    """Discards audio, with the same timing and accounting as :class:`FileOutput`."""

    def __init__(
        self, fmt: AudioFormat = PCM16_24K, *, realtime: bool = True, clock: Clock | None = None
    ) -> None:
        super().__init__(fmt, realtime=realtime, clock=clock, keep_audio=False)
