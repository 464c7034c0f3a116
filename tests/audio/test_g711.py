"""G.711 μ-law: byte-exact against CPython's audioop (3.12 and older), known values, round trip."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from voxengine.audio import pcm16_to_ulaw, ulaw_to_pcm16
from voxengine.errors import AudioError

ALL_PCM16 = np.arange(-32768, 32768, dtype="<i2").tobytes()
ALL_ULAW = bytes(range(256))


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="audioop left the stdlib in 3.13")
def test_every_pcm16_value_encodes_as_audioop_does() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    assert pcm16_to_ulaw(ALL_PCM16) == audioop.lin2ulaw(ALL_PCM16, 2)
    assert ulaw_to_pcm16(ALL_ULAW) == audioop.ulaw2lin(ALL_ULAW, 2)


def test_known_reference_values() -> None:
    # ITU-T G.711 table: 0xFF and 0x7F are the two zeros, 0x00 / 0x80 the extremes
    decoded = np.frombuffer(ulaw_to_pcm16(bytes([0xFF, 0x7F, 0x00, 0x80, 0xF0])), "<i2")
    assert decoded.tolist() == [0, 0, -32124, 32124, 120]
    encoded = pcm16_to_ulaw(np.array([0, -1, 32767, -32768, 120], "<i2").tobytes())
    assert list(encoded) == [0xFF, 0x7E, 0x80, 0x00, 0xF0]


def test_round_trip_error_stays_within_one_quantisation_step() -> None:
    pcm = np.frombuffer(ALL_PCM16, "<i2").astype(np.int64)
    back = np.frombuffer(ulaw_to_pcm16(pcm16_to_ulaw(ALL_PCM16)), "<i2").astype(np.int64)
    error = np.abs(back - pcm)
    # μ-law steps grow with the magnitude: 8 near zero, 1024 at the top segment
    assert int(error[np.abs(pcm) < 100].max()) <= 8
    assert int(error.max()) <= 1024 + 256  # the clipped tail above 32124
    # decoding is an exact inverse on the codes themselves
    assert pcm16_to_ulaw(ulaw_to_pcm16(ALL_ULAW)) == bytes(
        b if b != 0x7F else 0xFF for b in ALL_ULAW
    )


def test_lengths_and_empty_input() -> None:
    assert ulaw_to_pcm16(b"") == b""
    assert pcm16_to_ulaw(b"") == b""
    assert len(ulaw_to_pcm16(bytes(160))) == 320
    assert len(pcm16_to_ulaw(bytes(320))) == 160
    assert ulaw_to_pcm16(bytearray(b"\xff")) == b"\x00\x00"


def test_bad_audio_raises_audio_error() -> None:
    with pytest.raises(AudioError, match="odd byte count"):
        pcm16_to_ulaw(b"\x00\x00\x00")
    with pytest.raises(AudioError, match="must be bytes"):
        pcm16_to_ulaw("abcd")  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="must be bytes"):
        ulaw_to_pcm16([1, 2])  # type: ignore[arg-type]
