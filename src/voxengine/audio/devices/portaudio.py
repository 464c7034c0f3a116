"""Sound cards through the optional ``sounddevice`` package (PortAudio)."""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from typing import Any, Final, Literal, final

from voxengine.audio.devices.base import _check_chunk
from voxengine.audio.devices.handoff import ChunkQueue, PlaybackBuffer
from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.errors import AudioError, ConfigError

__all__ = ["DeviceInfo", "SoundDeviceInput", "SoundDeviceOutput", "list_devices"]


_INSTALL_HINT: Final = "pip install sounddevice (or voxengine[audio])"


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
