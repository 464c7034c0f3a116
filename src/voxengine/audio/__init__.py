"""Audio formats, PCM16 maths, G.711 μ-law, resampling (soxr, and the low-delay FIR
resampler the serving paths use), VAD, WAV files (pure sync, no asyncio).

Device and file I/O backends live in :mod:`voxengine.audio.devices`, which uses
asyncio and is therefore not imported here.
"""

from __future__ import annotations

from voxengine.audio.format import PCM16_16K, PCM16_24K, AudioFormat
from voxengine.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from voxengine.audio.lowdelay import LowDelayResampler
from voxengine.audio.pcm16 import (
    b64decode_pcm16,
    b64encode_pcm16,
    downmix_to_mono,
    duration_seconds,
    from_float32,
    reject_wav_header,
    rms,
    silence,
    to_float32,
    validate_pcm16,
)
from voxengine.audio.resample import Quality, Resampler, StreamResampler, convert
from voxengine.audio.vad import (
    VAD,
    EnergyVAD,
    SpeechAudio,
    SpeechEnd,
    SpeechStart,
    VADConfig,
    VADEvent,
    WebRTCVAD,
    make_vad,
)
from voxengine.audio.wav import read_wav, write_wav

__all__ = [
    "AudioFormat",
    "EnergyVAD",
    "LowDelayResampler",
    "PCM16_16K",
    "PCM16_24K",
    "Quality",
    "Resampler",
    "SpeechAudio",
    "SpeechEnd",
    "SpeechStart",
    "StreamResampler",
    "VAD",
    "VADConfig",
    "VADEvent",
    "WebRTCVAD",
    "b64decode_pcm16",
    "b64encode_pcm16",
    "convert",
    "downmix_to_mono",
    "duration_seconds",
    "from_float32",
    "make_vad",
    "pcm16_to_ulaw",
    "read_wav",
    "reject_wav_header",
    "rms",
    "silence",
    "to_float32",
    "ulaw_to_pcm16",
    "validate_pcm16",
    "write_wav",
]
