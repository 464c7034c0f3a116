"""G.711 μ-law (ITU-T G.711, the North American telephone codec) to and from PCM16.

Telephone carriers (Twilio Media Streams, Telnyx, Plivo) stream 8 kHz μ-law: one
byte per sample. The conversion here is table driven: both tables are computed once
at import with numpy (256 decoded values, 65536 encoded bytes, 64 KiB), and each
call is one numpy indexing operation, so a 20 ms frame costs a few microseconds.

The tables follow the classic Sun reference implementation that CPython's
``audioop.lin2ulaw`` / ``audioop.ulaw2lin`` used (16-bit input truncated to 14 bits,
bias 33, clip at 8159): the output is byte-for-byte what ``audioop`` produced, which
the tests check on every one of the 65536 PCM16 values (``audioop`` left the
standard library in Python 3.13).

Contract: pure sync functions, no state. Bad audio raises
:class:`~voxengine.errors.AudioError`; any other exception is a bug.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from voxengine.errors import AudioError

__all__ = ["pcm16_to_ulaw", "ulaw_to_pcm16"]

_BIAS: Final = 0x84
_CLIP_14: Final = 8159
_SEGMENT_ENDS_14: Final = np.array(
    [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32
)
_INT16: Final = np.dtype("<i2")


def _decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _BIAS - t, t - _BIAS).astype(_INT16)


def _encode_table() -> npt.NDArray[np.uint8]:
    # index i is the uint16 view of the int16 sample: 0..32767 then -32768..-1
    samples = np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16)
    value = samples.astype(np.int32) >> 2  # 14-bit linear, arithmetic shift
    mask = np.where(value < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(value), _CLIP_14) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS_14, magnitude, side="left").astype(np.int32)
    mantissa = (magnitude >> (np.minimum(segment, 7) + 1)) & 0x0F
    byte = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa) ^ mask
    return byte.astype(np.uint8)


_ULAW_TO_PCM16: Final = _decode_table()
_PCM16_TO_ULAW: Final = _encode_table()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """Decode μ-law bytes (one per sample) to PCM16 little-endian samples.

    Every byte value is a valid μ-law sample, so this never fails for ``bytes``.

    Raises:
        AudioError: ``data`` is not bytes-like.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise AudioError(f"μ-law audio must be bytes, got {type(data).__name__}")
    codes = np.frombuffer(data, dtype=np.uint8)
    return bytes(_ULAW_TO_PCM16[codes].tobytes())


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """Encode PCM16 little-endian samples to μ-law bytes (one per sample).

    Raises:
        AudioError: ``pcm`` is not bytes-like or has an odd byte count.
    """
    if not isinstance(pcm, bytes | bytearray | memoryview):
        raise AudioError(f"PCM16 audio must be bytes, got {type(pcm).__name__}")
    if len(pcm) % 2:
        raise AudioError(f"PCM16 audio has an odd byte count ({len(pcm)})")
    index = np.frombuffer(pcm, dtype="<u2")
    return bytes(_PCM16_TO_ULAW[index].tobytes())
