"""What every audio input and output offers (the protocols the engine drives), and the
checks they share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

from voxengine.audio.format import AudioFormat
from voxengine.errors import ConfigError

__all__ = ["AudioInput", "AudioOutput", "Clock"]


Clock = Callable[[], float]
"""A monotonic clock in seconds, such as ``loop.time``."""


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


def _check_chunk(chunk: float, fmt: AudioFormat) -> int:
    if not math.isfinite(chunk) or chunk <= 0 or fmt.bytes_for(chunk) == 0:
        raise ConfigError(f"chunk must be a positive number of seconds (>= 1 frame), got {chunk}")
    return fmt.bytes_for(chunk)
