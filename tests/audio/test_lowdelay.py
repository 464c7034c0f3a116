"""LowDelayResampler: nothing held back, a small fixed delay, proper anti-aliasing.

Everything here is deterministic (sample counts and spectra), so it holds on any load.
"""

from __future__ import annotations

import numpy as np
import pytest

from voxengine.audio.lowdelay import LowDelayResampler, design_lowpass
from voxengine.audio.resample import StreamResampler
from voxengine.errors import AudioError, ConfigError

PAIRS = [
    (24_000, 8_000),
    (16_000, 8_000),
    (8_000, 24_000),
    (8_000, 16_000),
    (16_000, 24_000),
    (24_000, 16_000),
    (24_000, 48_000),
    (48_000, 24_000),
    (44_100, 24_000),
    (22_050, 16_000),
]


def tone(hz: float, seconds: float, rate: int, amplitude: float = 10_000.0) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def stream(resampler: LowDelayResampler, pcm: bytes, chunk_seconds: float = 0.02) -> bytes:
    size = 2 * round(chunk_seconds * resampler.in_rate)
    return b"".join(resampler.process(pcm[i : i + size]) for i in range(0, len(pcm), size))


def level_db(pcm: bytes, skip: int) -> float:
    """RMS level (dB re 1) of ``pcm`` after its first ``skip`` samples (the transient)."""
    x = samples(pcm)[skip:]
    return float(20 * np.log10(np.sqrt(np.mean(x**2)) + 1e-9))


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_nothing_is_held_back_at_any_chunk(in_rate: int, out_rate: int) -> None:
    resampler = LowDelayResampler(in_rate, out_rate)
    chunk = 2 * round(0.02 * in_rate)
    total_in = total_out = 0
    for _ in range(25):
        total_in += chunk // 2
        total_out += len(resampler.process(bytes(chunk))) // 2
        # exactly the output samples whose time lies within the input so far
        assert total_out == -(-(total_in * out_rate) // in_rate)


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
def test_the_signal_delay_is_the_filter_group_delay_and_a_few_ms(
    in_rate: int, out_rate: int
) -> None:
    resampler = LowDelayResampler(in_rate, out_rate)
    assert resampler.delay_seconds <= 0.0035
    # a click in the middle of a stream comes out delay_seconds later (to a sample)
    click = np.zeros(in_rate // 10, dtype="<i2")
    at = in_rate // 20
    click[at] = 20_000
    out = samples(stream(resampler, click.tobytes()) + resampler.flush())
    peak = int(np.argmax(np.abs(out)))
    expected = at * out_rate / in_rate + resampler.delay_seconds * out_rate
    assert abs(peak - expected) <= 1.5


def test_chunking_does_not_change_the_output() -> None:
    voice = tone(440, 0.5, 24_000) + tone(3000, 0.5, 24_000)
    whole = LowDelayResampler(24_000, 8_000)
    one = whole.process(voice) + whole.flush()
    for chunk_seconds in (0.001, 0.0073, 0.02, 0.1):
        split = LowDelayResampler(24_000, 8_000)
        assert stream(split, voice, chunk_seconds) + split.flush() == one


def test_flush_returns_the_ring_out_and_starts_afresh() -> None:
    resampler = LowDelayResampler(24_000, 8_000)
    voice = tone(440, 0.2, 24_000)
    body = resampler.process(voice)
    tail = resampler.flush()
    assert len(body) // 2 == 1600
    assert len(tail) // 2 == round(resampler.delay_seconds * 8000)
    # the whole stream holds all of the input: its energy is all there
    total = samples(body + tail)
    assert np.sqrt(np.mean(total**2)) == pytest.approx(
        np.sqrt(np.mean(samples(voice) ** 2)), rel=0.02
    )
    # afresh: the same input gives the same output again
    assert resampler.process(voice) == body
    assert resampler.flush() == tail
    assert resampler.flush() == b""


@pytest.mark.parametrize(("in_rate", "out_rate"), [(24_000, 8_000), (16_000, 8_000)])
def test_downsampling_passes_speech_and_removes_what_would_alias(
    in_rate: int, out_rate: int
) -> None:
    skip = out_rate // 10  # past the start-up transient
    for hz, low, high in ((1000, -1.0, 1.0), (3000, -1.0, 1.0)):
        resampler = LowDelayResampler(in_rate, out_rate)
        gain = level_db(stream(resampler, tone(hz, 0.5, in_rate)), skip) - level_db(
            tone(hz, 0.5, in_rate), in_rate // 10
        )
        assert low <= gain <= high, (hz, gain)
    # above the 4 kHz Nyquist frequency of 8 kHz audio: would alias, must be >= 40 dB down
    for hz in (4400, 5000, 6000, 7000):
        if hz >= in_rate / 2:
            continue
        resampler = LowDelayResampler(in_rate, out_rate)
        gain = level_db(stream(resampler, tone(hz, 0.5, in_rate)), skip) - level_db(
            tone(hz, 0.5, in_rate), in_rate // 10
        )
        assert gain <= -40.0, (hz, gain)


def test_upsampling_leaves_no_images() -> None:
    resampler = LowDelayResampler(8_000, 24_000)
    out = samples(stream(resampler, tone(1000, 1.0, 8_000)))[2400:]
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    freqs = np.fft.rfftfreq(len(out), 1 / 24_000)
    signal = spectrum[(freqs > 900) & (freqs < 1100)].max()
    images = spectrum[freqs > 4000].max()  # 7, 9, 15, 17 kHz images of a 1 kHz tone
    assert 20 * np.log10(images / signal) <= -50.0


def test_soxr_streaming_holds_audio_back_where_this_does_not() -> None:
    """Why this exists: soxr's stream resampler releases 24 -> 8 kHz audio in blocks."""
    pytest.importorskip("soxr")
    soxr = StreamResampler(24_000, 8_000)
    held = []
    total_in = total_out = 0
    for _ in range(25):
        total_in += 480
        total_out += len(soxr.process(bytes(960))) // 2
        held.append(total_in // 3 - total_out)
    assert max(held) >= 160  # at least one 20 ms chunk at 8 kHz held back at some point


def test_equal_rates_pass_through() -> None:
    resampler = LowDelayResampler(16_000, 16_000)
    pcm = tone(440, 0.02, 16_000)
    assert resampler.passthrough
    assert resampler.process(pcm) is pcm
    assert resampler.flush() == b""
    assert resampler.delay_seconds == 0.0


def test_bad_input_and_settings() -> None:
    with pytest.raises(AudioError, match="odd byte count"):
        LowDelayResampler(24_000, 8_000).process(b"\x00")
    for rate in (0, -8000, 8000.0, True):
        with pytest.raises(ConfigError):
            LowDelayResampler(rate, 8000)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="phases"):
        LowDelayResampler(8_000, 44_101)
    with pytest.raises(ConfigError):
        design_lowpass(8000, 3000, 2000, 60)


def test_filter_design_meets_its_specification() -> None:
    h = design_lowpass(24_000, 3400, 4000, 60.0)
    assert len(h) % 2 == 1
    assert np.allclose(h, h[::-1])  # linear phase
    response = np.abs(np.fft.rfft(h, 1 << 16))
    freqs = np.fft.rfftfreq(1 << 16, 1 / 24_000)
    passband = 20 * np.log10(response[freqs <= 3400])
    stopband = 20 * np.log10(response[freqs >= 4000] + 1e-12)
    assert np.max(np.abs(passband)) <= 0.1
    assert np.max(stopband) <= -59.0
