from __future__ import annotations

import sys

import numpy as np
import pytest

from voxengine.audio import (
    AudioFormat,
    Resampler,
    StreamResampler,
    convert,
    downmix_to_mono,
    duration_seconds,
    from_float32,
    rms,
    silence,
    to_float32,
)
from voxengine.errors import AudioError, ConfigError

RATES = [8_000, 16_000, 24_000, 48_000]
PCM8K = AudioFormat(sample_rate=8_000)
PCM16K = AudioFormat(sample_rate=16_000)


def sine(freq_hz: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> bytes:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return from_float32(amplitude * np.sin(2 * np.pi * freq_hz * t))


def peak_hz(pcm: bytes, sample_rate: int) -> float:
    x = to_float32(pcm)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sample_rate / len(x))


def stream(resampler: Resampler, pcm: bytes, chunk_bytes: int) -> bytes:
    out = [resampler.process(pcm[i : i + chunk_bytes]) for i in range(0, len(pcm), chunk_bytes)]
    return b"".join(out) + resampler.flush()


# --------------------------------------------------------------------- pcm16 maths


def test_float_round_trip_and_clipping() -> None:
    pcm = np.array([-32768, -1, 0, 1, 32767], dtype="<i2").tobytes()
    x = to_float32(pcm)
    assert x.dtype == np.float32
    assert x[0] == -1.0
    assert x.max() < 1.0
    assert from_float32(x) == pcm
    clipped = np.frombuffer(from_float32([2.0, -2.0, np.nan]), dtype="<i2")
    assert clipped.tolist() == [32767, -32768, 0]
    with pytest.raises(AudioError):
        to_float32(b"\x00")
    with pytest.raises(AudioError):
        from_float32(["a"])


def test_missing_soxr_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "soxr", None)
    assert StreamResampler(8_000, 8_000).passthrough  # passthrough needs no soxr
    with pytest.raises(ConfigError, match="pip install soxr"):
        StreamResampler(8_000, 16_000)
    with pytest.raises(ConfigError, match="pip install soxr"):
        convert(bytes(4), PCM8K, PCM16K)


def test_downmix_rms_and_silence() -> None:
    stereo = np.array([[100, 300], [-5, -6], [32767, 32767]], dtype="<i2").tobytes()
    mono = np.frombuffer(downmix_to_mono(stereo, 2), dtype="<i2")
    assert mono.tolist() == [200, -6, 32767]  # rounded average (-5.5 -> -6), no clipping
    pcm = b"\x01\x02"
    assert downmix_to_mono(pcm, 1) is pcm
    with pytest.raises(AudioError, match="4-byte"):
        downmix_to_mono(b"\x00" * 6, 2)
    with pytest.raises(AudioError):
        downmix_to_mono(b"", 0)
    assert rms(b"") == 0.0
    assert rms(bytes(100)) == 0.0
    assert rms(np.full(10, -32768, dtype="<i2").tobytes()) == 1.0
    assert rms(sine(1000, 0.1, 16_000, amplitude=1.0)) == pytest.approx(2**-0.5, rel=1e-3)
    with pytest.raises(AudioError):
        rms(b"\x00")
    fmt = AudioFormat(sample_rate=16_000, channels=2)
    assert silence(0.01, fmt) == bytes(640)
    assert duration_seconds(bytes(640), fmt) == 0.01
    with pytest.raises(AudioError):
        silence(-1.0, fmt)


# --------------------------------------------------------------------- StreamResampler


@pytest.mark.parametrize("in_rate", RATES)
@pytest.mark.parametrize("out_rate", RATES)
def test_stream_length_and_frequency(in_rate: int, out_rate: int) -> None:
    pcm = sine(1000, 1.0, in_rate)
    resampler = StreamResampler(in_rate, out_rate)
    chunk_bytes = 2 * (in_rate // 50)  # 20 ms
    produced = 0
    for i in range(0, len(pcm), chunk_bytes):
        produced += len(resampler.process(pcm[i : i + chunk_bytes])) // 2
        expected = (i + chunk_bytes) // 2 * out_rate / in_rate
        assert expected - 0.2 * out_rate <= produced <= expected + 2  # lag < 200 ms, never ahead
    tail = resampler.flush()
    produced += len(tail) // 2
    assert abs(produced - out_rate) <= 2
    out = b"".join([resampler.process(pcm), resampler.flush()])  # reusable after flush
    assert abs(len(out) // 2 - out_rate) <= 2
    assert peak_hz(out, out_rate) == pytest.approx(1000, abs=2)


@pytest.mark.parametrize(("in_rate", "out_rate"), [(24_000, 16_000), (16_000, 48_000)])
def test_chunked_equals_one_shot_stream_and_is_close_to_convert(
    in_rate: int, out_rate: int
) -> None:
    pcm = sine(440, 0.5, in_rate) + sine(1500, 0.5, in_rate)
    whole = stream(StreamResampler(in_rate, out_rate), pcm, len(pcm))
    ref = np.frombuffer(whole, dtype="<i2").astype(np.int32)
    for chunk_bytes in (2, 98, 480, 962, 4800):
        chunked = stream(StreamResampler(in_rate, out_rate), pcm, chunk_bytes)
        assert len(chunked) == len(whole)
        got = np.frombuffer(chunked, dtype="<i2").astype(np.int32)
        assert int(np.max(np.abs(got - ref))) <= 2  # rounding only (int16 LSBs)
    one_shot = convert(pcm, AudioFormat(sample_rate=in_rate), AudioFormat(sample_rate=out_rate))
    assert abs(len(one_shot) - len(whole)) <= 4
    n = min(len(one_shot), len(whole)) // 2
    a = to_float32(whole[: 2 * n])
    b = to_float32(one_shot[: 2 * n])
    assert float(np.max(np.abs(a - b))) < 0.01


def test_no_click_at_chunk_borders() -> None:
    pcm = sine(300, 0.5, 24_000)
    out = stream(StreamResampler(24_000, 16_000), pcm, 2 * 37)  # odd-sized 37-sample chunks
    x = to_float32(out)[200:-200]  # skip the filter's ramp-in and ramp-out
    # A 300 Hz sine at amplitude 0.5 moves at most 2*pi*300*0.5/16000 ~ 0.059 per sample.
    assert float(np.max(np.abs(np.diff(x)))) < 0.065


def test_passthrough_returns_the_same_object() -> None:
    resampler = StreamResampler(16_000, 16_000)
    assert resampler.passthrough
    pcm = sine(1000, 0.02, 16_000)
    assert resampler.process(pcm) is pcm
    assert resampler.flush() == b""
    resampler.reset()
    fmt = AudioFormat(sample_rate=16_000)
    assert convert(pcm, fmt, fmt) is pcm


def test_resampler_properties_reset_and_errors() -> None:
    resampler = StreamResampler(24_000, 16_000, quality="LQ")
    assert (resampler.in_rate, resampler.out_rate, resampler.quality) == (24_000, 16_000, "LQ")
    assert not resampler.passthrough
    assert resampler.process(b"") == b""
    resampler.process(sine(1000, 0.1, 24_000))
    resampler.reset()
    assert resampler.flush() == b""  # nothing held after reset
    with pytest.raises(AudioError):
        resampler.process(b"\x00\x00\x00")
    with pytest.raises(ConfigError):
        StreamResampler(0, 16_000)
    with pytest.raises(ConfigError):
        StreamResampler(16_000, True)
    with pytest.raises(ConfigError):
        StreamResampler(16_000, 8_000, quality="best")  # type: ignore[arg-type]


# --------------------------------------------------------------------- convert


def test_convert_stereo_to_mono_downmixes_then_resamples() -> None:
    left = np.frombuffer(sine(1000, 0.2, 48_000, amplitude=0.4), dtype="<i2")
    right = np.zeros_like(left)
    stereo = np.column_stack([left, right]).tobytes()
    out = convert(
        stereo, AudioFormat(sample_rate=48_000, channels=2), AudioFormat(sample_rate=16_000)
    )
    assert abs(len(out) // 2 - 3200) <= 2
    assert rms(out[400:-400]) == pytest.approx(0.2 / 2**0.5, rel=0.02)  # average halves it
    assert peak_hz(out, 16_000) == pytest.approx(1000, abs=6)
    same_rate = convert(
        stereo, AudioFormat(sample_rate=48_000, channels=2), AudioFormat(sample_rate=48_000)
    )
    assert same_rate == downmix_to_mono(stereo, 2)


def test_convert_mono_to_stereo_duplicates_and_multichannel() -> None:
    mono = sine(500, 0.1, 16_000)
    stereo = convert(
        mono, AudioFormat(sample_rate=16_000), AudioFormat(sample_rate=16_000, channels=2)
    )
    frames = np.frombuffer(stereo, dtype="<i2").reshape(-1, 2)
    assert frames[:, 0].tobytes() == mono
    assert np.array_equal(frames[:, 0], frames[:, 1])
    up = convert(mono, AudioFormat(sample_rate=16_000), AudioFormat(sample_rate=24_000, channels=2))
    assert abs(len(up) // 4 - 2400) <= 2
    four = np.tile(np.frombuffer(mono, dtype="<i2")[:, None], (1, 4)).tobytes()
    down = convert(
        four, AudioFormat(sample_rate=16_000, channels=4), AudioFormat(sample_rate=8_000)
    )
    assert abs(len(down) // 2 - 800) <= 2
    kept = convert(
        stereo,
        AudioFormat(sample_rate=16_000, channels=2),
        AudioFormat(sample_rate=8_000, channels=2),
    )
    assert abs(len(kept) // 4 - 800) <= 2
    assert convert(b"", AudioFormat(sample_rate=16_000), AudioFormat(sample_rate=8_000)) == b""


def test_convert_rejects_impossible_changes_and_bad_audio() -> None:
    with pytest.raises(AudioError, match="cannot convert 2 channels to 3"):
        convert(
            bytes(8),
            AudioFormat(sample_rate=8_000, channels=2),
            AudioFormat(sample_rate=8_000, channels=3),
        )
    with pytest.raises(AudioError):
        convert(bytes(3), AudioFormat(sample_rate=8_000), AudioFormat(sample_rate=16_000))
    with pytest.raises(ConfigError):
        convert(bytes(2), PCM8K, PCM16K, quality="x")  # type: ignore[arg-type]
