"""PCM16 validation, durations and base64 coding. Pure functions."""

from __future__ import annotations

import base64
import binascii

from voxengine.audio.format import AudioFormat
from voxengine.errors import AudioError

__all__ = ["b64decode_pcm16", "b64encode_pcm16", "duration_seconds", "validate_pcm16"]


def validate_pcm16(audio: object, fmt: AudioFormat) -> bytes:
    """Return ``audio`` as ``bytes`` after checking it is whole frames of ``fmt``.

    Accepts ``bytes``, ``bytearray`` and ``memoryview`` (C-contiguous).

    Raises:
        AudioError: if ``audio`` is not bytes-like, or its length is not a whole
            number of frames (an odd byte count for mono PCM16).
    """
    if isinstance(audio, bytes):
        data = audio
    elif isinstance(audio, bytearray | memoryview):
        data = bytes(audio)
    else:
        raise AudioError(
            f"audio must be bytes of PCM16 little-endian samples, got {type(audio).__name__}"
        )
    if len(data) % fmt.frame_bytes:
        raise AudioError(
            f"audio length {len(data)} bytes is not a whole number of "
            f"{fmt.frame_bytes}-byte PCM16 frames ({fmt.channels} channel(s))"
        )
    return data


def duration_seconds(audio: bytes, fmt: AudioFormat) -> float:
    """Seconds of sound in ``audio`` of format ``fmt``."""
    return fmt.duration(len(audio))


def b64encode_pcm16(audio: bytes) -> str:
    """Base64 text of ``audio`` as sent in JSON frames."""
    return base64.b64encode(audio).decode("ascii")


def b64decode_pcm16(text: str) -> bytes:
    """Decode base64 audio from a JSON frame.

    Raises:
        AudioError: if ``text`` is not valid base64 or decodes to an odd byte count.
    """
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioError("audio payload is not valid base64") from exc
    if len(data) % 2:
        raise AudioError(f"decoded audio has an odd byte count ({len(data)})")
    return data
