"""The one audio format type used everywhere in voxengine."""

from __future__ import annotations

from dataclasses import dataclass

from voxengine.errors import AudioError

__all__ = ["PCM16_16K", "PCM16_24K", "AudioFormat"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioFormat:
    """Signed 16-bit little-endian PCM at ``sample_rate`` Hz with ``channels`` channels.

    Raises:
        AudioError: if the rate or channel count is not positive.
    """

    sample_rate: int
    channels: int = 1

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise AudioError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.channels <= 0:
            raise AudioError(f"channels must be positive, got {self.channels}")

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
