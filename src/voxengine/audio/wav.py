"""WAV file reading and writing for PCM16 audio (stdlib ``wave``)."""

from __future__ import annotations

import wave
from pathlib import Path

from voxengine.audio.format import AudioFormat
from voxengine.audio.pcm16 import validate_pcm16
from voxengine.errors import AudioError

__all__ = ["read_wav", "write_wav"]


def write_wav(path: str | Path, audio: bytes, fmt: AudioFormat) -> None:
    """Write PCM16 ``audio`` of format ``fmt`` to ``path`` as a WAV file.

    Raises:
        AudioError: if ``audio`` is not whole frames of ``fmt``.
    """
    data = validate_pcm16(audio, fmt)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(fmt.channels)
        wav.setsampwidth(2)
        wav.setframerate(fmt.sample_rate)
        wav.writeframes(data)


def read_wav(path: str | Path) -> tuple[bytes, AudioFormat]:
    """Read a PCM16 WAV file; returns its samples and format.

    Raises:
        AudioError: if the file is not a 16-bit PCM WAV file.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2 or wav.getcomptype() != "NONE":
                raise AudioError(f"{path}: only 16-bit PCM WAV files are supported")
            fmt = AudioFormat(sample_rate=wav.getframerate(), channels=wav.getnchannels())
            return wav.readframes(wav.getnframes()), fmt
    except (wave.Error, EOFError, OSError) as exc:
        raise AudioError(f"{path}: not a readable WAV file ({exc})") from exc
