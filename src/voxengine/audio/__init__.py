"""Audio formats and pure PCM16 helpers (no I/O, no asyncio)."""

from __future__ import annotations

from voxengine.audio.format import AudioFormat
from voxengine.audio.pcm16 import (
    b64decode_pcm16,
    b64encode_pcm16,
    duration_seconds,
    validate_pcm16,
)

__all__ = [
    "AudioFormat",
    "b64decode_pcm16",
    "b64encode_pcm16",
    "duration_seconds",
    "validate_pcm16",
]
