"""Audio input and output backends with one interface, usable from asyncio.

This is the only module of :mod:`voxengine.audio` that uses asyncio, and it is not
re-exported by the package: import it as ``voxengine.audio.devices``.

Inputs (:class:`AudioInput`) deliver PCM16 chunks through ``await read()``:

* :class:`SoundDeviceInput`: a microphone via ``sounddevice`` (PortAudio).
* :class:`FileInput`: a WAV file, paced like a microphone, then trailing silence.
* :class:`NullInput`: silence, paced like a microphone.

End of stream: ``read()`` returns ``b""`` once a finite input is exhausted (and on
every later call); it never returns ``b""`` before that. ``read()`` raises
:class:`~voxengine.errors.AudioError` when the input is not started or is stopped,
including when ``stop()`` is called while a ``read()`` is waiting.

Outputs (:class:`AudioOutput`) take PCM16 through the non-blocking ``write()`` and
account for playback exactly, because barge-in truncation (``audio_end_ms``) is
computed from it:

* ``played``: seconds of *written* audio consumed by the device (or its clock)
  since the last ``mark()``; underrun silence is not counted.
* ``pending``: seconds written but not yet consumed.
* ``clear()``: drops the pending audio and returns its length in seconds; ``played``
  is unchanged.

Backends: :class:`SoundDeviceOutput` (speakers), :class:`FileOutput` (collects what
was played; WAV via ``save()``), :class:`NullOutput` (discards). With
``realtime=True`` the file and null outputs consume audio at ``sample_rate`` frames
per second of the loop clock (or an injected clock), from ``start()`` until
``stop()``, like a speaker that plays silence when it has nothing; with
``realtime=False`` everything written counts as played at once.

Threads: PortAudio calls the device callbacks on its own thread. Input chunks reach
the loop only via ``loop.call_soon_threadsafe`` into a bounded queue
(:class:`ChunkQueue`, oldest dropped when full); output callbacks pull from a
lock-protected :class:`PlaybackBuffer`. Both helpers are public so that other
backends (and tests) can reuse the exact hand-off and accounting logic.

Errors: a missing optional package raises :class:`~voxengine.errors.ConfigError`
with an install hint; a missing or failing device raises
:class:`~voxengine.errors.AudioError`. Any other exception is a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol, final

from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.audio.pcm16 import silence, validate_pcm16
from voxengine.audio.resample import convert
from voxengine.audio.wav import read_wav, write_wav
from voxengine.errors import AudioError, ConfigError

__all__ = [
    "AudioInput",
    "AudioOutput",
    "ChunkQueue",
    "DeviceInfo",
    "FileInput",
    "FileOutput",
    "NullInput",
    "NullOutput",
    "PlaybackBuffer",
    "SoundDeviceInput",
    "SoundDeviceOutput",
    "list_devices",
]

logger = logging.getLogger("voxengine.audio.devices")

Clock = Callable[[], float]
"""A monotonic clock in seconds, such as ``loop.time``."""

_INSTALL_HINT: Final = "pip install sounddevice (or voxengine[audio])"


# --------------------------------------------------------------------------- interfaces


class AudioInput(Protocol):
    """A source of PCM16 chunks in :attr:`format` (see the module docstring)."""

    @property
    def format(self) -> AudioFormat:
        """Format of the chunks ``read()`` returns."""
        ...

    async def start(self) -> None:
        """Start capturing; chunks captured before this are not delivered."""
        ...

    async def stop(self) -> None:
        """Stop capturing and wake any waiting ``read()`` with AudioError. Idempotent."""
        ...

    async def read(self) -> bytes:
        """Wait for the next chunk; ``b""`` at the end of a finite input.

        Raises:
            AudioError: if the input is not started or was stopped.
        """
        ...


class AudioOutput(Protocol):
    """A sink for PCM16 in :attr:`format` that accounts for playback exactly."""

    @property
    def format(self) -> AudioFormat:
        """Format ``write()`` expects."""
        ...

    @property
    def played(self) -> float:
        """Seconds of written audio consumed by the device since the last ``mark()``."""
        ...

    @property
    def pending(self) -> float:
        """Seconds written but not yet consumed."""
        ...

    async def start(self) -> None:
        """Start playback."""
        ...

    async def stop(self) -> None:
        """Stop playback; pending audio stays queued. Idempotent."""
        ...

    def write(self, pcm: bytes) -> None:
        """Queue ``pcm`` for playback without blocking.

        Raises:
            AudioError: if ``pcm`` is not whole frames of :attr:`format`.
        """
        ...

    def clear(self) -> float:
        """Drop everything queued; returns the seconds dropped."""
        ...

    def mark(self) -> None:
        """Reset :attr:`played` to zero (e.g. when a new reply item starts)."""
        ...


# --------------------------------------------------------------------------- hand-off helpers


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


# --------------------------------------------------------------------------- file and null


def _check_chunk(chunk: float, fmt: AudioFormat) -> int:
    if not math.isfinite(chunk) or chunk <= 0 or fmt.bytes_for(chunk) == 0:
        raise ConfigError(f"chunk must be a positive number of seconds (>= 1 frame), got {chunk}")
    return fmt.bytes_for(chunk)


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


# --------------------------------------------------------------------------- sounddevice


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceInfo:
    """One PortAudio device, as reported by :func:`list_devices`."""

    index: int
    name: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float


def _import_sounddevice() -> Any:
    """The ``sounddevice`` module.

    Raises:
        ConfigError: if the module or the PortAudio library is missing.
    """
    try:
        return importlib.import_module("sounddevice")
    except ImportError as exc:
        raise ConfigError(f"audio devices need the 'sounddevice' package: {_INSTALL_HINT}") from exc
    except OSError as exc:  # sounddevice raises OSError when libportaudio is missing
        raise ConfigError(
            f"sounddevice cannot load the PortAudio library ({exc}); install it, "
            "e.g. 'apt install libportaudio2' or 'brew install portaudio'"
        ) from exc


def _query(sd: Any) -> list[DeviceInfo]:
    try:
        raw = list(sd.query_devices())
    except sd.PortAudioError as exc:
        raise AudioError(f"cannot list audio devices: {exc}") from exc
    return [
        DeviceInfo(
            index=i,
            name=str(d["name"]),
            max_input_channels=int(d["max_input_channels"]),
            max_output_channels=int(d["max_output_channels"]),
            default_sample_rate=float(d["default_samplerate"]),
        )
        for i, d in enumerate(raw)
    ]


def list_devices() -> list[DeviceInfo]:
    """All audio devices PortAudio knows (empty on a machine without sound hardware).

    Raises:
        ConfigError: if ``sounddevice`` or PortAudio is not installed.
        AudioError: if PortAudio fails.
    """
    return _query(_import_sounddevice())


def _resolve_device(sd: Any, wanted: int | str | None, kind: Literal["input", "output"]) -> int:
    """The index of the device to open; AudioError if there is no suitable one."""
    devices = _query(sd)
    if kind == "input":
        usable = [d for d in devices if d.max_input_channels > 0]
    else:
        usable = [d for d in devices if d.max_output_channels > 0]
    if not usable:
        raise AudioError(f"no audio {kind} device found (is there a sound card?)")
    names = ", ".join(f"{d.index}: {d.name!r}" for d in usable)
    if wanted is None:
        try:
            default = int(sd.default.device[0 if kind == "input" else 1])
        except (TypeError, ValueError, IndexError):
            default = -1
        return default if any(d.index == default for d in usable) else usable[0].index
    if isinstance(wanted, int):
        if any(d.index == wanted for d in usable):
            return wanted
        raise AudioError(f"no {kind} device with index {wanted}; {kind} devices: {names}")
    exact = [d for d in usable if d.name == wanted]
    partial = [d for d in usable if wanted.lower() in d.name.lower()]
    if exact or partial:
        return (exact or partial)[0].index
    raise AudioError(f"no {kind} device named {wanted!r}; {kind} devices: {names}")


@final
class SoundDeviceInput:
    """A microphone via ``sounddevice``; chunks of ``chunk`` seconds in ``fmt``.

    The PortAudio callback copies each block and hands it to the loop with
    ``loop.call_soon_threadsafe`` into a :class:`ChunkQueue` of ``max_queued_chunks``;
    when the application falls behind the oldest chunks are dropped
    (:attr:`dropped_chunks`). The device is opened at ``fmt.sample_rate``.

    Args:
        fmt: format to capture.
        input_device: device index or (part of) its name; None for the default.
        chunk: seconds per chunk (the PortAudio block size).
        max_queued_chunks: most chunks held while the application is not reading.

    Raises:
        ConfigError: if ``sounddevice`` or PortAudio is missing, or for bad settings.
    """

    def __init__(
        self,
        fmt: AudioFormat = PCM16_24K,
        *,
        input_device: int | str | None = None,
        chunk: float = 0.02,
        max_queued_chunks: int = 50,
    ) -> None:
        if max_queued_chunks < 1:
            raise ConfigError(f"max_queued_chunks must be >= 1, got {max_queued_chunks}")
        self._sd = _import_sounddevice()
        self._fmt = fmt
        self._frames = _check_chunk(chunk, fmt) // fmt.frame_bytes
        self._device = input_device
        self._max_queued = max_queued_chunks
        self._queue: ChunkQueue | None = None
        self._stream: Any = None
        self._status_errors = 0

    @property
    def format(self) -> AudioFormat:
        """Format of the chunks ``read()`` returns."""
        return self._fmt

    @property
    def dropped_chunks(self) -> int:
        """Chunks dropped since ``start()`` because the application fell behind."""
        return 0 if self._queue is None else self._queue.dropped_chunks

    @property
    def status_errors(self) -> int:
        """PortAudio callbacks that reported a problem (e.g. input overflow)."""
        return self._status_errors

    async def start(self) -> None:
        """Open the device and start capturing. Idempotent.

        Raises:
            AudioError: if there is no such input device or PortAudio refuses it.
        """
        if self._stream is not None:
            return
        sd = self._sd
        device = _resolve_device(sd, self._device, "input")
        queue = self._queue = ChunkQueue(asyncio.get_running_loop(), self._max_queued)

        def callback(indata: Any, frames: int, time_info: Any, status: Any) -> None:
            """PortAudio thread: copy the block (PortAudio reuses it), hand it over."""
            if status:
                self._status_errors += 1
            queue.put_threadsafe(bytes(indata))

        def open_stream() -> Any:
            stream = sd.RawInputStream(
                samplerate=self._fmt.sample_rate,
                channels=self._fmt.channels,
                dtype="int16",
                blocksize=self._frames,
                device=device,
                callback=callback,
            )
            stream.start()
            return stream

        try:
            self._stream = await asyncio.to_thread(open_stream)
        except (sd.PortAudioError, ValueError) as exc:
            queue.close()
            raise AudioError(f"cannot open audio input device {device}: {exc}") from exc

    async def read(self) -> bytes:
        """Wait for the next captured chunk.

        Raises:
            AudioError: if not started or stopped, also while waiting.
        """
        if self._queue is None:
            raise AudioError("audio input is not started")
        return await self._queue.get()

    async def stop(self) -> None:
        """Stop capturing, close the device and wake waiting readers. Idempotent."""
        stream, self._stream = self._stream, None
        if self._queue is not None:
            self._queue.close()
        if stream is not None:
            await _close_stream(self._sd, stream)


@final
class SoundDeviceOutput:
    """Speakers via ``sounddevice``, fed from a :class:`PlaybackBuffer`.

    The PortAudio callback pulls exactly the frames the device asks for, padding
    with silence on underrun; :attr:`played` counts the written frames handed to
    PortAudio (sound leaves the speaker a device latency later).

    Args:
        fmt: format ``write()`` expects; the device is opened at this rate.
        output_device: device index or (part of) its name; None for the default.
        chunk: seconds per PortAudio block.

    Raises:
        ConfigError: if ``sounddevice`` or PortAudio is missing, or for bad settings.
    """

    def __init__(
        self,
        fmt: AudioFormat = PCM16_24K,
        *,
        output_device: int | str | None = None,
        chunk: float = 0.02,
    ) -> None:
        self._sd = _import_sounddevice()
        self._buffer = PlaybackBuffer(fmt)
        self._frames = _check_chunk(chunk, fmt) // fmt.frame_bytes
        self._device = output_device
        self._stream: Any = None
        self._status_errors = 0

    @property
    def format(self) -> AudioFormat:
        """Format ``write()`` expects."""
        return self._buffer.format

    @property
    def played(self) -> float:
        """Seconds of written audio handed to the device since the last ``mark()``."""
        return self._buffer.played

    @property
    def pending(self) -> float:
        """Seconds written but not yet handed to the device."""
        return self._buffer.pending

    @property
    def status_errors(self) -> int:
        """PortAudio callbacks that reported a problem (e.g. output underflow)."""
        return self._status_errors

    def write(self, pcm: bytes) -> None:
        """Queue ``pcm`` for playback without blocking.

        Raises:
            AudioError: if ``pcm`` is not whole frames of :attr:`format`.
        """
        self._buffer.write(pcm)

    def clear(self) -> float:
        """Drop everything queued; returns the seconds dropped."""
        return self._buffer.clear()

    def mark(self) -> None:
        """Reset :attr:`played` to zero."""
        self._buffer.mark()

    async def start(self) -> None:
        """Open the device and start playback. Idempotent.

        Raises:
            AudioError: if there is no such output device or PortAudio refuses it.
        """
        if self._stream is not None:
            return
        sd = self._sd
        device = _resolve_device(sd, self._device, "output")
        fmt = self._buffer.format

        def open_stream() -> Any:
            stream = sd.RawOutputStream(
                samplerate=fmt.sample_rate,
                channels=fmt.channels,
                dtype="int16",
                blocksize=self._frames,
                device=device,
                callback=self._callback,
            )
            stream.start()
            return stream

        try:
            self._stream = await asyncio.to_thread(open_stream)
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioError(f"cannot open audio output device {device}: {exc}") from exc

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio thread: fill ``outdata`` with the next ``frames`` frames."""
        if status:
            self._status_errors += 1
        outdata[:] = self._buffer.pull(frames)

    async def stop(self) -> None:
        """Stop playback and close the device; pending audio stays queued. Idempotent."""
        stream, self._stream = self._stream, None
        if stream is not None:
            await _close_stream(self._sd, stream)


async def _close_stream(sd: Any, stream: Any) -> None:
    """Stop and close a PortAudio stream off the loop thread.

    Raises:
        AudioError: if PortAudio fails.
    """

    def close() -> None:
        try:
            stream.stop()
        finally:
            stream.close()

    try:
        await asyncio.to_thread(close)
    except sd.PortAudioError as exc:
        raise AudioError(f"cannot close audio device: {exc}") from exc
