"""The one audio format type used everywhere in voxengine."""

from __future__ import annotations

import operator
from dataclasses import dataclass

from voxengine.errors import AudioError

__all__ = ["PCM16_16K", "PCM16_24K", "AudioFormat", "validate_sample_rate"]


def validate_sample_rate(value: object, name: str = "sample_rate") -> int:
    """``value`` as a positive ``int`` number of Hz (numpy integers are accepted).

    Raises:
        AudioError: ``value`` is not an integer (a float, a string, a bool) or is not
            positive.
    """
    what = f"{name} must be a positive int{' (Hz)' if 'rate' in name else ''}"
    if isinstance(value, bool):
        raise AudioError(f"{what}, got {value!r}")
    try:
        rate = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise AudioError(f"{what}, got {value!r} ({type(value).__name__})") from None
    if rate <= 0:
        raise AudioError(f"{name} must be positive, got {rate}")
    return rate


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioFormat:
    """Signed 16-bit little-endian PCM at ``sample_rate`` Hz with ``channels`` channels.

    Raises:
        AudioError: if the rate or channel count is not a positive int.
    """

    sample_rate: int
    channels: int = 1

    def __post_init__(self) -> None:
        if type(self.sample_rate) is not int or self.sample_rate <= 0:
            object.__setattr__(self, "sample_rate", validate_sample_rate(self.sample_rate))
        if type(self.channels) is not int or self.channels <= 0:
            object.__setattr__(self, "channels", validate_sample_rate(self.channels, "channels"))

    @property
    def frame_bytes(self) -> int:
        """Bytes per frame (one sample for every channel)."""
        return 2 * self.channels

    @property
    def bytes_per_second(self) -> int:
        """Bytes of audio per second of sound."""
        return self.frame_bytes * self.sample_rate

    def duration(self, nbytes: int) -> float:
        """Seconds of sound in ``nbytes`` bytes of this format."""
        return nbytes / self.bytes_per_second

    def bytes_for(self, seconds: float) -> int:
        """Whole-frame byte count for ``seconds`` of sound."""
        return round(seconds * self.sample_rate) * self.frame_bytes


PCM16_24K = AudioFormat(sample_rate=24_000)
PCM16_16K = AudioFormat(sample_rate=16_000)
