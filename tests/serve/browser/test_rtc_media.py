"""The outbound track's pacing and exact played-position accounting, on a fake clock,
and the conversion of decoded frames (no network here: see test_webrtc_peer.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from av import AudioFrame

from voxengine.audio.format import AudioFormat
from voxengine.errors import AudioError, ConfigError
from voxengine.serve.browser.rtc_media import OutboundAudioTrack, frame_to_pcm16_mono

FMT = AudioFormat(sample_rate=48_000)
FRAME = FMT.bytes_for(0.02)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """A clock that advances only by the track's own sleeps (recorded)."""
    fake = Clock()
    real_sleep = asyncio.sleep

    async def sleep(seconds: float, result: Any = None) -> Any:
        fake.sleeps.append(seconds)
        fake.now += seconds
        return await real_sleep(0, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    return fake


def _tone(seconds: float, value: int = 1000) -> bytes:
    return np.full(round(seconds * FMT.sample_rate), value, dtype="<i2").tobytes()


async def test_frames_are_paced_20_ms_apart_and_silent_when_idle(clock: Clock) -> None:
    track = OutboundAudioTrack(FMT, clock=clock)
    frames = [await track.recv() for _ in range(5)]
    assert clock.sleeps == pytest.approx([0.02] * 4)
    assert [f.pts for f in frames] == [0, 960, 1920, 2880, 3840]
    assert {(f.sample_rate, f.samples, f.format.name, f.layout.name) for f in frames} == {
        (48_000, 960, "s16", "mono")
    }
    assert not any(f.to_ndarray().any() for f in frames)
    assert track.frames_sent == 5
    assert track.audio_frames_sent == 0
    track.stop()


async def test_a_stall_restarts_the_clock_instead_of_bursting(clock: Clock) -> None:
    track = OutboundAudioTrack(FMT, clock=clock)
    await track.recv()
    clock.now += 1.0  # the event loop stalled for a second
    await track.recv()  # late: sent at once
    await track.recv()  # ...and the next one is due 20 ms later, not in the past
    assert clock.sleeps == pytest.approx([0.02])
    track.stop()


async def test_played_position_counts_exactly_what_was_handed_out(clock: Clock) -> None:
    reports: list[tuple[float, int]] = []
    track = OutboundAudioTrack(
        FMT, jitter_allowance=0.06, clock=clock, on_played=lambda s, e: reports.append((s, e))
    )
    track.write(_tone(0.5))
    track.write(_tone(0.01))  # a partial frame: padded with silence
    for _ in range(10):
        await track.recv()
    assert track.handed == pytest.approx(0.2)
    assert track.played == pytest.approx(0.2 - 0.06)  # three frames behind
    assert track.pending == pytest.approx(0.31)
    for _ in range(20):
        await track.recv()
    assert track.handed == pytest.approx(0.51)
    assert track.played == pytest.approx(0.51)  # the allowance has passed
    assert track.audio_frames_sent == 26
    assert [e for _, e in reports] == [0] * len(reports)
    assert reports[-1][0] == pytest.approx(0.51)
    assert [s for s, _ in reports] == sorted({s for s, _ in reports})  # grows, no repeats
    track.stop()


async def test_clear_drops_the_queue_and_starts_a_new_epoch(clock: Clock) -> None:
    reports: list[tuple[float, int]] = []
    track = OutboundAudioTrack(
        FMT, jitter_allowance=0.0, clock=clock, on_played=lambda s, e: reports.append((s, e))
    )
    track.write(_tone(1.0))
    for _ in range(10):
        await track.recv()
    assert track.clear(1) == pytest.approx(0.8)
    assert (track.pending, track.handed, track.played, track.epoch) == (0, 0, 0, 1)
    frame = await track.recv()
    assert not frame.to_ndarray().any()  # nothing left of the old reply
    track.write(_tone(0.04))
    await track.recv()
    assert reports[-1] == (pytest.approx(0.02), 1)
    track.stop()


async def test_a_stopped_track_ends(clock: Clock) -> None:
    from aiortc.mediastreams import MediaStreamError

    track = OutboundAudioTrack(FMT, clock=clock)
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


def test_bad_audio_and_settings_are_refused() -> None:
    track = OutboundAudioTrack(FMT)
    with pytest.raises(AudioError):
        track.write(b"\x00")
    track.write(b"")
    assert track.pending == 0
    with pytest.raises(ConfigError):
        OutboundAudioTrack(AudioFormat(sample_rate=48_000, channels=2))
    with pytest.raises(ConfigError):
        OutboundAudioTrack(AudioFormat(sample_rate=11_025))  # 20 ms = 220.5 samples
    with pytest.raises(ConfigError):
        OutboundAudioTrack(FMT, jitter_allowance=-0.1)


def test_decoded_stereo_frames_become_mono_pcm16() -> None:
    stereo = np.array([[100, 300, -50, -150]], dtype="<i2")  # L R L R, packed
    frame = AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
    frame.sample_rate = 48_000
    assert np.frombuffer(frame_to_pcm16_mono(frame), dtype="<i2").tolist() == [200, -100]
    planar = AudioFrame.from_ndarray(
        np.zeros((1, 4), dtype=np.float32), format="flt", layout="mono"
    )
    with pytest.raises(AudioError):
        frame_to_pcm16_mono(planar)
