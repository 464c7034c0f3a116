"""Deterministic speech-like audio for the fake servers (pure numpy, no I/O).

The fake OpenAI server needs reply audio that is real PCM (so clients can play,
resample and measure it) and that *behaves* like speech: energy bursts per word
separated by short gaps, so an energy VAD fed with it sees speech. Nothing here
is random: the same words always give the same samples.

Wire formats handled (protocol notes §1, §4): PCM16 little-endian mono, and
G.711 µ-law / A-law (8 kHz, one byte per sample).

Contract: every function is pure and raises only ``ValueError`` for bad input.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Iterator, Sequence
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from voxengine.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16

__all__ = [
    "Encoding",
    "decode_to_float",
    "encode_from_int16",
    "silence_pcm16",
    "speech_chunks",
    "synthesize_words",
    "tone_pcm16",
]

Encoding = Literal["pcm16", "ulaw", "alaw"]
"""Sample encodings: PCM16 LE (2 bytes/sample), G.711 µ-law and A-law (1 byte/sample)."""

_TONE_FRACTION: Final = 0.75  # share of each word slot that is voiced; the rest is a gap
_AMPLITUDE: Final = 0.3  # peak amplitude of a word burst, as a fraction of full scale
_RAMP_SECONDS: Final = 0.015  # raised-cosine attack/release, avoids clicks


def _word_pitch(word: str) -> float:
    """A fundamental frequency in 110-290 Hz derived from the word (stable across runs)."""
    return 110.0 + float(zlib.crc32(word.encode("utf-8")) % 181)


def _burst(num_samples: int, pitch: float, sample_rate: int) -> npt.NDArray[np.float64]:
    """One voiced burst: fundamental + two harmonics, slow vibrato, smooth envelope."""
    t = np.arange(num_samples, dtype=np.float64) / sample_rate
    vibrato = 1.0 + 0.02 * np.sin(2.0 * np.pi * 5.0 * t)
    phase = 2.0 * np.pi * pitch * np.cumsum(vibrato) / sample_rate
    wave = 0.6 * np.sin(phase) + 0.3 * np.sin(2.0 * phase) + 0.1 * np.sin(3.0 * phase)
    envelope = np.ones(num_samples, dtype=np.float64)
    ramp = min(int(_RAMP_SECONDS * sample_rate), num_samples // 2)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp))
        envelope[:ramp] = rise
        envelope[num_samples - ramp :] = rise[::-1]
    result: npt.NDArray[np.float64] = _AMPLITUDE * wave * envelope
    return result


@functools.lru_cache(maxsize=512)
def _word_slot(pitch: float, slot: int, sample_rate: int) -> npt.NDArray[np.int16]:
    """One word slot as int16: a burst over the first 75 %, silence after (read-only)."""
    out = np.zeros(slot, dtype=np.float64)
    voiced = round(slot * _TONE_FRACTION)
    out[:voiced] = _burst(voiced, pitch, sample_rate)
    samples = np.round(out * 32767.0).astype(np.int16)
    samples.flags.writeable = False  # shared by the cache
    return samples


def _slot_length(seconds_per_word: float, sample_rate: int) -> int:
    if seconds_per_word <= 0 or sample_rate <= 0:
        raise ValueError("seconds_per_word and sample_rate must be positive")
    return round(seconds_per_word * sample_rate)


def synthesize_words(
    words: Sequence[str], *, seconds_per_word: float, sample_rate: int = 24_000
) -> npt.NDArray[np.int16]:
    """Render one speech-like slot of ``seconds_per_word`` per word.

    Each slot is a tone burst (75 %) followed by silence (25 %), so word ``i``
    starts exactly at ``i * seconds_per_word``. Returns int16 samples.
    """
    slot = _slot_length(seconds_per_word, sample_rate)
    if not words:
        return np.zeros(0, dtype=np.int16)
    return np.concatenate([_word_slot(_word_pitch(w), slot, sample_rate) for w in words])


def speech_chunks(
    words: Sequence[str], *, seconds_per_word: float, sample_rate: int, chunk: int
) -> Iterator[npt.NDArray[np.int16]]:
    """The samples of :func:`synthesize_words`, ``chunk`` samples at a time, made lazily.

    Each word is rendered only when its first chunk is asked for (word slots are
    cached), so a long paced reply costs nothing up front. The last chunk may be
    shorter. Concatenated, the chunks equal ``synthesize_words(words, ...)``.
    """
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    slot = _slot_length(seconds_per_word, sample_rate)
    total = slot * len(words)
    for start in range(0, total, chunk):
        end = min(start + chunk, total)
        first, last = start // slot, (end - 1) // slot
        parts = [
            _word_slot(_word_pitch(words[i]), slot, sample_rate)[
                max(start - i * slot, 0) : min(end - i * slot, slot)
            ]
            for i in range(first, last + 1)
        ]
        yield parts[0] if len(parts) == 1 else np.concatenate(parts)


def tone_pcm16(seconds: float, *, pitch: float = 220.0, sample_rate: int = 24_000) -> bytes:
    """Loud speech-like PCM16 LE bytes (RMS well above any default VAD threshold)."""
    samples = np.round(_burst(round(seconds * sample_rate), pitch, sample_rate) * 32767.0)
    return bytes(samples.astype("<i2").tobytes())


def silence_pcm16(seconds: float, *, sample_rate: int = 24_000) -> bytes:
    """Digital silence as PCM16 LE bytes."""
    return bytes(2 * round(seconds * sample_rate))


# --- G.711 (ITU-T) codecs: μ-law is voxengine.audio.g711's; A-law, vectorised, here ----------


def _alaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    x = samples.astype(np.int32) >> 3  # A-law works on 13-bit magnitudes
    sign = np.where(x >= 0, 0x80, 0x00)
    magnitude = np.minimum(np.where(x >= 0, x, -x - 1), 0x0FFF)
    exponent = np.where(
        magnitude < 32, 0, np.floor(np.log2(np.maximum(magnitude, 1))).astype(np.int32) - 4
    )
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> exponent) & 0x0F
    byte = (sign | (exponent << 4) | mantissa) ^ 0x55
    return bytes(byte.astype(np.uint8).tobytes())


def _alaw_decode(data: bytes) -> npt.NDArray[np.int32]:
    a = np.frombuffer(data, dtype=np.uint8).astype(np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    result: npt.NDArray[np.int32] = np.where(a & 0x80, magnitude, -magnitude)
    return result


def encode_from_int16(samples: npt.NDArray[np.int16], encoding: Encoding) -> bytes:
    """Encode int16 samples into wire bytes of ``encoding``."""
    if encoding == "pcm16":
        return bytes(samples.astype("<i2").tobytes())
    if encoding == "ulaw":
        return pcm16_to_ulaw(samples.astype("<i2").tobytes())
    return _alaw_encode(samples)


def decode_to_float(data: bytes, encoding: Encoding) -> npt.NDArray[np.float64]:
    """Decode wire bytes to float samples in [-1, 1].

    Raises:
        ValueError: PCM16 data with an odd number of bytes.
    """
    if encoding == "pcm16":
        if len(data) % 2:
            raise ValueError("PCM16 data must have an even number of bytes")
        return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0
    if encoding == "ulaw":
        return np.frombuffer(ulaw_to_pcm16(data), dtype="<i2").astype(np.float64) / 32768.0
    return _alaw_decode(data).astype(np.float64) / 32768.0
