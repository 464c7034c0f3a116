"""PCM16 validation, durations, base64 coding and sample maths. Pure functions.

PCM16 here always means signed 16-bit little-endian samples, channels interleaved.
Float samples use the usual full-scale convention: ``int16 / 32768``, so they lie in
``[-1.0, 1.0)``.
"""

from __future__ import annotations

import binascii
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from voxengine.audio.b64 import b64decode_strict, b64encode_str
from voxengine.audio.format import AudioFormat
from voxengine.errors import AudioError

__all__ = [
    "b64decode_pcm16",
    "b64encode_pcm16",
    "downmix_to_mono",
    "duration_seconds",
    "from_float32",
    "reject_wav_header",
    "rms",
    "silence",
    "to_float32",
    "validate_pcm16",
]

_INT16: Final = np.dtype("<i2")
_FULL_SCALE: Final = 32768.0


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
    reject_wav_header(data)
    return data


def reject_wav_header(data: bytes) -> None:
    """Refuse the bytes of a WAV file (``RIFF....WAVE``) where raw PCM16 is expected.

    A WAV header sent as samples would play as a click and shift every later sample;
    read the file with :func:`voxengine.audio.read_wav` and send its samples instead.

    Raises:
        AudioError: if ``data`` starts with a RIFF/WAVE header.
    """
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        raise AudioError(
            "audio starts with a WAV file header (RIFF....WAVE): send raw PCM16 samples, "
            "e.g. the samples voxengine.audio.read_wav(path) returns, not the file's bytes"
        )


def duration_seconds(audio: bytes, fmt: AudioFormat) -> float:
    """Seconds of sound in ``audio`` of format ``fmt``."""
    return fmt.duration(len(audio))


def b64encode_pcm16(audio: bytes) -> str:
    """Base64 text of ``audio`` as sent in JSON frames (:mod:`voxengine.audio.b64`)."""
    return b64encode_str(audio)


def b64decode_pcm16(text: str) -> bytes:
    """Decode base64 audio from a JSON frame.

    Raises:
        AudioError: if ``text`` is not valid base64 or decodes to an odd byte count.
    """
    try:
        # strict base64 (binascii's strict_mode verdict; pybase64 when installed)
        data = b64decode_strict(text)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise AudioError("audio payload is not valid base64") from exc
    if len(data) % 2:
        raise AudioError(f"decoded audio has an odd byte count ({len(data)})")
    return data


def _samples(pcm: bytes) -> npt.NDArray[np.int16]:
    """A read-only int16 view of ``pcm`` (no copy); AudioError on an odd byte count."""
    if len(pcm) % 2:
        raise AudioError(f"PCM16 audio has an odd byte count ({len(pcm)})")
    return np.frombuffer(pcm, dtype=_INT16)


def to_float32(pcm: bytes) -> npt.NDArray[np.float32]:
    """Convert PCM16 samples to float32 in ``[-1.0, 1.0)`` (``sample / 32768``).

    Channels stay interleaved. The result is a new, writable array.

    Raises:
        AudioError: if ``pcm`` has an odd byte count.
    """
    return _samples(pcm).astype(np.float32) * np.float32(1.0 / _FULL_SCALE)


def from_float32(samples: npt.ArrayLike) -> bytes:
    """Convert float samples (full scale 1.0) to PCM16 bytes, rounding and clipping.

    Values outside ``[-1.0, 1.0)`` are clipped to the int16 range; NaN becomes 0.

    Raises:
        AudioError: if ``samples`` cannot be read as a numeric array.
    """
    try:
        values = np.asarray(samples, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise AudioError("samples must be an array of numbers") from exc
    scaled = np.nan_to_num(values.ravel() * np.float32(_FULL_SCALE))
    return bytes(np.clip(np.rint(scaled), -32768, 32767).astype(_INT16).tobytes())


def downmix_to_mono(pcm: bytes, channels: int) -> bytes:
    """Average the ``channels`` interleaved channels of ``pcm`` into mono PCM16.

    Mono input (``channels == 1``) is returned unchanged (the same object). The
    average is rounded to the nearest integer, so it cannot clip.

    Raises:
        AudioError: if ``channels`` is not positive or ``pcm`` is not a whole number
            of ``2 * channels``-byte frames.
    """
    if channels <= 0:
        raise AudioError(f"channels must be positive, got {channels}")
    if len(pcm) % (2 * channels):
        raise AudioError(
            f"audio length {len(pcm)} bytes is not a whole number of "
            f"{2 * channels}-byte frames ({channels} channels)"
        )
    if channels == 1:
        return pcm
    frames = np.frombuffer(pcm, dtype=_INT16).reshape(-1, channels)
    total = frames.sum(axis=1, dtype=np.int32)
    return bytes(np.rint(total / channels).astype(_INT16).tobytes())


def rms(pcm: bytes) -> float:
    """Root-mean-square level of PCM16 ``pcm``, normalised so full scale is 1.0.

    A full-scale square wave gives 1.0, a full-scale sine about 0.707, digital
    silence and empty input 0.0. All channels count alike.

    Raises:
        AudioError: if ``pcm`` has an odd byte count.
    """
    samples = _samples(pcm)
    if not samples.size:
        return 0.0
    as_float = samples.astype(np.float64)
    return math.sqrt(float(np.dot(as_float, as_float)) / samples.size) / _FULL_SCALE


def silence(seconds: float, fmt: AudioFormat) -> bytes:
    """``seconds`` of digital silence in ``fmt``, rounded to whole frames.

    Raises:
        AudioError: if ``seconds`` is negative or not finite.
    """
    if not math.isfinite(seconds) or seconds < 0:
        raise AudioError(f"seconds must be a finite number >= 0, got {seconds}")
    return bytes(fmt.bytes_for(seconds))
