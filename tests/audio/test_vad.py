from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from voxengine.audio import (
    VAD,
    EnergyVAD,
    SpeechAudio,
    SpeechEnd,
    SpeechStart,
    VADConfig,
    VADEvent,
    WebRTCVAD,
    from_float32,
    make_vad,
    rms,
)
from voxengine.errors import AudioError, ConfigError

RATE = 24_000
FRAME = 0.02
FRAME_BYTES = 2 * int(RATE * FRAME)
HAS_WEBRTC = importlib.util.find_spec("webrtcvad") is not None


def noise(seconds: float, level: float, seed: int, sample_rate: int = RATE) -> np.ndarray:
    """Gaussian noise with RMS ``level`` (full scale 1.0)."""
    return np.random.default_rng(seed).normal(0.0, level, round(seconds * sample_rate))


def voice(seconds: float, sample_rate: int = RATE, level: float = 0.1) -> np.ndarray:
    """Speech-like sound: a 140 Hz harmonic series with a 4 Hz syllable envelope."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    tone = sum(np.sin(2 * np.pi * 140 * k * t + k) / k for k in range(1, 12))
    envelope = 0.6 + 0.4 * np.abs(np.sin(2 * np.pi * 4 * t))
    x: np.ndarray = tone * envelope
    return x * (level / float(np.sqrt(np.mean(x**2))))


def scene(sample_rate: int = RATE) -> bytes:
    """1 s quiet noise, 1 s of speech, 1.5 s quiet noise (speech from 1.0 s to 2.0 s)."""
    x = noise(3.5, 0.0005, seed=1, sample_rate=sample_rate)
    a, b = sample_rate, 2 * sample_rate
    x[a:b] += voice(1.0, sample_rate)
    return from_float32(x)


def feed(vad: VAD, pcm: bytes, sizes: list[int]) -> list[VADEvent]:
    events: list[VADEvent] = []
    pos = 0
    i = 0
    while pos < len(pcm):
        size = sizes[i % len(sizes)]
        events += vad.process(pcm[pos : pos + size])
        pos += size
        i += 1
    return events


def boundaries(events: list[VADEvent]) -> list[VADEvent]:
    return [e for e in events if not isinstance(e, SpeechAudio)]


# --------------------------------------------------------------------- config


def test_threshold_maps_to_a_db_scale() -> None:
    assert VADConfig(threshold=0.0).start_level_dbfs == -60.0
    assert VADConfig().start_level_dbfs == -40.0
    assert VADConfig(threshold=1.0).start_level == pytest.approx(0.1)
    cfg = VADConfig()
    assert cfg.start_level == pytest.approx(0.01)
    assert cfg.hold_level == pytest.approx(0.01 / 10 ** (6 / 20))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": -0.1},
        {"threshold": 1.5},
        {"threshold": True},
        {"threshold": "0.5"},
        {"speech_start": -0.1},
        {"speech_end": 0.0},
        {"speech_end": float("inf")},
        {"pre_roll": -1.0},
        {"pre_roll": float("nan")},
        {"frame": 0.0},
        {"frame": 0.5},
    ],
)
def test_config_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        VADConfig(**kwargs)  # type: ignore[arg-type]


def test_bad_sample_rate_kind_and_audio() -> None:
    with pytest.raises(ConfigError):
        EnergyVAD(VADConfig(), 0)
    with pytest.raises(ConfigError, match="shorter than one sample"):
        EnergyVAD(VADConfig(frame=0.00001), 8_000)
    with pytest.raises(ConfigError, match="known"):
        make_vad("silero", VADConfig(), RATE)  # type: ignore[arg-type]
    with pytest.raises(AudioError):
        EnergyVAD().process(b"\x00\x00\x00")


# --------------------------------------------------------------------- EnergyVAD


def test_start_and_end_timings_within_one_frame() -> None:
    vad = EnergyVAD(VADConfig(), RATE)
    pcm = scene()
    start_call = end_call = -1
    events: list[VADEvent] = []
    for call, i in enumerate(range(0, len(pcm), FRAME_BYTES)):
        got = vad.process(pcm[i : i + FRAME_BYTES])
        events += got
        if any(isinstance(e, SpeechStart) for e in got):
            start_call = call
            assert vad.in_speech
        if any(isinstance(e, SpeechEnd) for e in got):
            end_call = call
            assert not vad.in_speech
    start, end = boundaries(events)
    assert isinstance(start, SpeechStart)
    assert isinstance(end, SpeechEnd)
    assert start.start == pytest.approx(1.0, abs=FRAME)
    assert end.end == pytest.approx(2.0, abs=FRAME)
    assert end.duration == pytest.approx(end.end - start.start)
    # Reported after speech_start of speech / speech_end of silence.
    assert (start_call + 1) * FRAME == pytest.approx(1.0 + 0.2, abs=FRAME)
    assert (end_call + 1) * FRAME == pytest.approx(2.0 + 0.5, abs=FRAME)


def test_pre_roll_and_audio_are_contiguous() -> None:
    pcm = scene()
    events = EnergyVAD(VADConfig(pre_roll=0.3), RATE).process(pcm)
    start = events[0]
    assert isinstance(start, SpeechStart)
    onset = round(start.start / FRAME)  # first voiced frame
    first = onset - 15  # 0.3 s of pre-roll
    assert start.audio == pcm[first * FRAME_BYTES : (onset + 10) * FRAME_BYTES]
    assert isinstance(events[-1], SpeechEnd)
    speech = b"".join(e.audio for e in events if isinstance(e, SpeechStart | SpeechAudio))
    last = round((events[-1].end + 0.5) / FRAME)  # the frame that ended speech, inclusive
    assert speech == pcm[first * FRAME_BYTES : last * FRAME_BYTES]
    assert all(len(e.audio) == FRAME_BYTES for e in events if isinstance(e, SpeechAudio))


def test_pre_roll_is_truncated_at_stream_start() -> None:
    pcm = from_float32(voice(0.5))
    (start, *_) = EnergyVAD(VADConfig(pre_roll=1.0), RATE).process(pcm)
    assert isinstance(start, SpeechStart)
    assert start.start == 0.0
    assert start.audio == pcm[: 10 * FRAME_BYTES]


def test_no_false_start_on_low_noise_or_clicks() -> None:
    x = noise(5.0, 0.005, seed=2)  # -46 dBFS, below the -40 dBFS start level
    x[RATE : RATE + 720] += 0.5  # a 30 ms click: shorter than speech_start
    vad = EnergyVAD(VADConfig(), RATE)
    assert vad.process(from_float32(x)) == []
    assert not vad.in_speech
    assert vad.level == pytest.approx(0.005, rel=0.2)


def test_hysteresis_keeps_speech_between_hold_and_start_levels() -> None:
    cfg = VADConfig(speech_start=0.1, speech_end=0.2)
    between = (cfg.start_level + cfg.hold_level) / 2
    vad = EnergyVAD(cfg, RATE)
    # A level between the two never starts speech ...
    assert vad.process(from_float32(noise(1.0, between, seed=3))) == []
    # ... but keeps it going once it has started.
    events = vad.process(from_float32(voice(0.2, level=0.05)))
    assert isinstance(events[0], SpeechStart)
    assert not boundaries(vad.process(from_float32(noise(1.0, between, seed=4)))[1:])
    assert vad.in_speech
    end = boundaries(vad.process(bytes(RATE)))
    assert len(end) == 1
    assert isinstance(end[0], SpeechEnd)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_events_do_not_depend_on_chunk_sizes(seed: int) -> None:
    pcm = scene() + scene()
    reference = EnergyVAD(VADConfig(), RATE).process(pcm)
    assert [type(e) for e in boundaries(reference)] == [SpeechStart, SpeechEnd] * 2
    sizes = [2 * int(n) for n in np.random.default_rng(seed).integers(1, 3000, 50)]
    assert feed(EnergyVAD(VADConfig(), RATE), pcm, sizes) == reference
    by_sample = feed(EnergyVAD(VADConfig(), RATE), pcm[: 3 * RATE], [2])  # first 1.5 s
    assert isinstance(by_sample[0], SpeechStart)
    assert by_sample == reference[: len(by_sample)]


def test_reset_and_level() -> None:
    vad = EnergyVAD(VADConfig(), RATE)
    assert vad.level == 0.0
    assert vad.process(b"\x00" * 100) == []  # partial frame: buffered
    pcm = from_float32(voice(0.5))
    vad.process(pcm)
    assert vad.in_speech
    stream = bytes(100) + pcm
    last = len(stream) // FRAME_BYTES - 1
    assert vad.level == pytest.approx(rms(stream[last * FRAME_BYTES : (last + 1) * FRAME_BYTES]))
    assert all(
        type(e.audio) is bytes
        for e in EnergyVAD().process(bytearray(pcm))
        if isinstance(e, SpeechStart | SpeechAudio)
    )
    vad.reset()
    assert not vad.in_speech
    assert vad.level == 0.0
    (start, *_) = vad.process(pcm)
    assert isinstance(start, SpeechStart)
    assert start.start == 0.0  # stream position restarted
    assert start.audio == pcm[: 10 * FRAME_BYTES]  # the 100 buffered bytes were dropped


def test_properties_and_factory() -> None:
    vad = make_vad("energy", VADConfig(frame=0.01), 16_000)
    assert isinstance(vad, EnergyVAD)
    assert vad.sample_rate == 16_000
    assert vad.frame_seconds == 0.01
    assert vad.config == VADConfig(frame=0.01)
    assert "audio" not in repr(SpeechAudio(audio=b"xx"))


# --------------------------------------------------------------------- WebRTCVAD


def test_webrtc_missing_module_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "webrtcvad", None)
    with pytest.raises(ConfigError, match="pip install webrtcvad-wheels"):
        WebRTCVAD(VADConfig(), RATE)


@pytest.mark.skipif(not HAS_WEBRTC, reason="webrtcvad-wheels is not installed")
@pytest.mark.parametrize("sample_rate", [16_000, 24_000])
def test_webrtc_detects_speech_like_bursts(sample_rate: int) -> None:
    pcm = scene(sample_rate)
    vad = make_vad("webrtc", VADConfig(), sample_rate)
    assert isinstance(vad, WebRTCVAD)
    assert vad.aggressiveness == 2
    events = vad.process(pcm)
    start, end = boundaries(events)
    assert isinstance(start, SpeechStart)
    assert isinstance(end, SpeechEnd)
    # webrtcvad smooths its decisions (a few frames of hangover), so allow more slack.
    assert start.start == pytest.approx(1.0, abs=0.1)
    assert end.end == pytest.approx(2.0, abs=0.2)
    assert not vad.in_speech
    frame_bytes = 2 * round(sample_rate * FRAME)
    sizes = [frame_bytes * 3 + 2, 1234, 2]
    vad.reset()
    assert feed(vad, pcm, sizes) == events


@pytest.mark.skipif(not HAS_WEBRTC, reason="webrtcvad-wheels is not installed")
def test_webrtc_config_limits() -> None:
    with pytest.raises(ConfigError, match=r"0\.01, 0\.02 or 0\.03"):
        WebRTCVAD(VADConfig(frame=0.025), 16_000)
    assert WebRTCVAD(VADConfig(threshold=0.0), 8_000).aggressiveness == 0
    assert WebRTCVAD(VADConfig(threshold=1.0), 48_000).aggressiveness == 3
    vad = WebRTCVAD(VADConfig(frame=0.01), 16_000)
    assert vad.process(bytes(16_000)) == []
    assert vad.level == 0.0
