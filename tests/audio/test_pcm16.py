from __future__ import annotations

import base64
from pathlib import Path

import pytest

from voxengine.audio import AudioFormat, b64decode_pcm16, b64encode_pcm16, validate_pcm16
from voxengine.audio.format import PCM16_16K, PCM16_24K
from voxengine.audio.wav import read_wav, write_wav
from voxengine.errors import AudioError


def test_format_maths() -> None:
    assert PCM16_24K.bytes_per_second == 48_000
    assert PCM16_24K.duration(4800) == pytest.approx(0.1)
    assert PCM16_16K.bytes_for(0.02) == 640
    stereo = AudioFormat(sample_rate=48_000, channels=2)
    assert stereo.frame_bytes == 4
    with pytest.raises(AudioError):
        AudioFormat(sample_rate=0)
    with pytest.raises(AudioError):
        AudioFormat(sample_rate=16_000, channels=0)


@pytest.mark.parametrize("good", [b"\x00\x01", bytearray(b"\x00\x01\x02\x03"), memoryview(b"ab")])
def test_validate_accepts_bytes_like(good: bytes) -> None:
    assert validate_pcm16(good, PCM16_24K) == bytes(good)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("abc", "got str"),
        ([1, 2], "got list"),
        (b"\x00\x01\x02", "whole number"),
        (None, "NoneType"),
    ],
)
def test_validate_rejects_bad_audio_with_a_clear_message(bad: object, match: str) -> None:
    with pytest.raises(AudioError, match=match):
        validate_pcm16(bad, PCM16_24K)


def test_validate_checks_stereo_frames() -> None:
    with pytest.raises(AudioError, match="4-byte"):
        validate_pcm16(b"\x00\x01\x02\x03\x04\x05", AudioFormat(sample_rate=24_000, channels=2))


def test_base64_round_trip_and_errors() -> None:
    pcm = bytes(range(256))
    assert b64decode_pcm16(b64encode_pcm16(pcm)) == pcm
    with pytest.raises(AudioError, match="base64"):
        b64decode_pcm16("***")
    with pytest.raises(AudioError, match="odd"):
        b64decode_pcm16(base64.b64encode(b"abc").decode())


def test_wav_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pcm = bytes(range(100))
    path = tmp_path / "x.wav"
    write_wav(path, pcm, PCM16_24K)
    data, fmt = read_wav(path)
    assert (data, fmt) == (pcm, PCM16_24K)
    (tmp_path / "bad.wav").write_bytes(b"RIFFnope")
    with pytest.raises(AudioError):
        read_wav(tmp_path / "bad.wav")
    with pytest.raises(AudioError):
        write_wav(path, b"\x00", PCM16_24K)


def test_wav_file_bytes_sent_as_pcm_are_refused_naming_the_header(tmp_path: Path) -> None:
    from voxengine.audio.pcm16 import reject_wav_header

    path = tmp_path / "q.wav"
    write_wav(path, bytes(3200), PCM16_16K)
    data = path.read_bytes()
    with pytest.raises(AudioError, match=r"WAV file header \(RIFF....WAVE\)"):
        validate_pcm16(data, PCM16_16K)
    with pytest.raises(AudioError, match="read_wav"):
        reject_wav_header(data)
    reject_wav_header(b"RIFF" + bytes(60))  # RIFF alone is just two samples
    assert validate_pcm16(data[44:], PCM16_16K) == bytes(3200)


async def test_engine_send_audio_refuses_a_wav_file(tmp_path: Path) -> None:
    from voxengine import VoiceEngine, VoiceEngineConfig

    path = tmp_path / "q.wav"
    write_wav(path, bytes(4800), PCM16_24K)
    async with VoiceEngine(VoiceEngineConfig(provider="mock")) as engine:
        with pytest.raises(AudioError, match="WAV file header"):
            await engine.send_audio(path.read_bytes())
