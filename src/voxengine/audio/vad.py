"""Local voice activity detection: small, sync, pure state machines.

A VAD is fed PCM16 mono audio in chunks of any (even) size and returns what
happened, as audio-layer results (not :mod:`voxengine.events` classes)::

    SpeechStart(audio, start)   pre-roll + the frames that confirmed speech
    SpeechAudio(audio)          one frame of audio while in speech (silent tail included)
    SpeechEnd(duration, end)    speech is over

Every frame of audio from the pre-roll until the end of speech is returned exactly
once, in order, so ``SpeechStart.audio`` followed by each ``SpeechAudio.audio`` is
contiguous. Events depend only on the audio, never on how it was split into chunks.

Detection (both detectors): the audio is cut into ``config.frame``-second frames
and each frame is classified voiced or not. ``speech_start`` seconds of consecutive
voiced frames start speech; ``speech_end`` seconds of consecutive unvoiced frames
end it. ``start`` and ``end`` are stream positions in seconds since construction or
``reset()``: the start of the first voiced frame and the end of the last one.

Contract: bad settings raise :class:`~voxengine.errors.ConfigError`, an odd byte
count :class:`~voxengine.errors.AudioError`; any other exception is a bug.
"""

from __future__ import annotations

import importlib
import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, TypeAlias, final

import numpy as np

from voxengine.audio.resample import StreamResampler
from voxengine.errors import AudioError, ConfigError

__all__ = [
    "EnergyVAD",
    "SpeechAudio",
    "SpeechEnd",
    "SpeechStart",
    "VAD",
    "VADConfig",
    "VADEvent",
    "WebRTCVAD",
    "make_vad",
]

MIN_LEVEL_DBFS: Final = -60.0
"""Start level at ``threshold == 0`` in dB relative to full scale."""
MAX_LEVEL_DBFS: Final = -20.0
"""Start level at ``threshold == 1`` in dB relative to full scale."""
HYSTERESIS_DB: Final = 6.0
"""Once a run of voiced frames has begun, frames this much quieter still count as voiced."""

_INT16: Final = np.dtype("<i2")
_WEBRTC_RATES: Final = (8_000, 16_000, 32_000, 48_000)
_WEBRTC_FRAMES: Final = (0.01, 0.02, 0.03)


def _check_seconds(name: str, value: object, *, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"VADConfig.{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"VADConfig.{name} must be {bound} seconds, got {value!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class VADConfig:
    """Settings shared by every VAD.

    Attributes:
        threshold: sensitivity in ``[0, 1]``; higher needs louder audio. For
            :class:`EnergyVAD` it maps linearly on a dB scale to the RMS level a
            frame needs to count as voiced: ``level_dbfs = -60 + 40 * threshold``
            (0.0 -> -60 dBFS, 0.5 -> -40 dBFS, 1.0 -> -20 dBFS), see
            :attr:`start_level`. For :class:`WebRTCVAD` it picks the aggressiveness
            ``min(3, int(4 * threshold))``.
        speech_start: seconds of consecutive voiced frames needed to start speech
            (at least one frame).
        speech_end: seconds of consecutive unvoiced frames that end speech.
        pre_roll: seconds of audio before the first voiced frame that
            :class:`SpeechStart` carries, so no leading sound is lost.
        frame: analysis frame length in seconds, ``0 < frame <= 0.1``.

    Raises:
        ConfigError: if a value is out of range or not a number.
    """

    threshold: float = 0.5
    speech_start: float = 0.2
    speech_end: float = 0.5
    pre_roll: float = 0.3
    frame: float = 0.02

    def __post_init__(self) -> None:
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int | float) or not 0.0 <= t <= 1.0:
            raise ConfigError(f"VADConfig.threshold must be a number in [0, 1], got {t!r}")
        _check_seconds("speech_start", self.speech_start, positive=False)
        _check_seconds("speech_end", self.speech_end, positive=True)
        _check_seconds("pre_roll", self.pre_roll, positive=False)
        _check_seconds("frame", self.frame, positive=True)
        if self.frame > 0.1:
            raise ConfigError(f"VADConfig.frame must be <= 0.1 seconds, got {self.frame!r}")

    @property
    def start_level_dbfs(self) -> float:
        """RMS level in dBFS a frame needs to start a run of voiced frames."""
        return MIN_LEVEL_DBFS + (MAX_LEVEL_DBFS - MIN_LEVEL_DBFS) * self.threshold

    @property
    def start_level(self) -> float:
        """:attr:`start_level_dbfs` as a normalised RMS level (full scale = 1.0)."""
        return float(10.0 ** (self.start_level_dbfs / 20.0))

    @property
    def hold_level(self) -> float:
        """Normalised RMS level that keeps a run voiced (:data:`HYSTERESIS_DB` lower)."""
        return float(10.0 ** ((self.start_level_dbfs - HYSTERESIS_DB) / 20.0))


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStart:
    """Speech has started.

    Attributes:
        audio: the pre-roll followed by the frames that confirmed speech (PCM16).
        start: stream position in seconds of the first voiced frame.
    """

    audio: bytes = field(repr=False)
    start: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechAudio:
    """One frame of audio while in speech (PCM16), including the silent tail."""

    audio: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechEnd:
    """Speech has ended.

    Attributes:
        duration: seconds from the start of the first voiced frame to the end of the
            last voiced frame (the silent tail is not counted).
        end: stream position in seconds of the end of the last voiced frame.
    """

    duration: float
    end: float


VADEvent: TypeAlias = SpeechStart | SpeechAudio | SpeechEnd
"""What a :class:`VAD` returns from ``process``."""


class VAD(Protocol):
    """A voice activity detector (the extension point); see the module docstring."""

    @property
    def in_speech(self) -> bool:
        """True between :class:`SpeechStart` and :class:`SpeechEnd`."""
        ...

    @property
    def level(self) -> float:
        """Normalised RMS level (0..1) of the last complete frame."""
        ...

    def process(self, pcm: bytes) -> list[VADEvent]:
        """Feed PCM16 mono audio of any even length; returns the events it caused."""
        ...

    def reset(self) -> None:
        """Forget all state, including buffered audio and the stream position."""
        ...


def _check_sample_rate(sample_rate: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ConfigError(f"sample_rate must be a positive int (Hz), got {sample_rate!r}")


def _frames_for(seconds: float, frame_seconds: float) -> int:
    """Whole frames covering ``seconds`` (tolerating float noise such as 0.2 / 0.02)."""
    return math.ceil(seconds / frame_seconds - 1e-6)


class _FrameVAD:
    """Frame cutting, RMS levels, the energy rule and the start/end state machine."""

    __slots__ = (
        "_config",
        "_end_frames",
        "_frame_bytes",
        "_frame_samples",
        "_frame_seconds",
        "_history",
        "_hold_level",
        "_in_speech",
        "_index",
        "_last_voiced",
        "_level",
        "_onset",
        "_pending",
        "_run",
        "_sample_rate",
        "_silent_run",
        "_start_frames",
        "_start_level",
    )

    def __init__(self, config: VADConfig, sample_rate: int) -> None:
        _check_sample_rate(sample_rate)
        frame_samples = round(config.frame * sample_rate)
        if frame_samples < 1:
            raise ConfigError(
                f"VADConfig.frame={config.frame} s is shorter than one sample at {sample_rate} Hz"
            )
        self._config = config
        self._sample_rate = sample_rate
        self._start_level = config.start_level
        self._hold_level = config.hold_level
        self._frame_samples = frame_samples
        self._frame_bytes = 2 * frame_samples
        self._frame_seconds = frame_samples / sample_rate
        self._start_frames = max(1, _frames_for(config.speech_start, self._frame_seconds))
        self._end_frames = max(1, _frames_for(config.speech_end, self._frame_seconds))
        pre_roll_frames = max(0, _frames_for(config.pre_roll, self._frame_seconds))
        self._history: deque[bytes] = deque(maxlen=pre_roll_frames + self._start_frames)
        self._pending = b""
        self._level = 0.0
        self._index = 0
        self._run = 0
        self._onset = 0
        self._silent_run = 0
        self._last_voiced = 0
        self._in_speech = False

    @property
    def config(self) -> VADConfig:
        """The settings in use."""
        return self._config

    @property
    def sample_rate(self) -> int:
        """Sample rate of the audio fed to :meth:`process`, in Hz."""
        return self._sample_rate

    @property
    def frame_seconds(self) -> float:
        """Actual frame length in seconds (``config.frame`` rounded to whole samples)."""
        return self._frame_seconds

    @property
    def in_speech(self) -> bool:
        """True between :class:`SpeechStart` and :class:`SpeechEnd`."""
        return self._in_speech

    @property
    def level(self) -> float:
        """Normalised RMS level (0..1) of the last complete frame; 0.0 before any."""
        return self._level

    @property
    def trailing_silence(self) -> float:
        """Seconds of unvoiced frames since the last voiced one while in speech (0.0
        outside speech): speech ends when this reaches ``config.speech_end``."""
        return self._silent_run * self._frame_seconds if self._in_speech else 0.0

    @property
    def voiced_until(self) -> float:
        """Stream position in seconds of the end of the last voiced frame of the speech
        under way; the ``end`` its :class:`SpeechEnd` will carry unless voice resumes."""
        return (self._last_voiced + 1) * self._frame_seconds

    def reset(self) -> None:
        """Forget all state, including buffered audio and the stream position."""
        self._history.clear()
        self._pending = b""
        self._level = 0.0
        self._index = 0
        self._run = 0
        self._onset = 0
        self._silent_run = 0
        self._last_voiced = 0
        self._in_speech = False

    def process(self, pcm: bytes) -> list[VADEvent]:
        """Feed PCM16 mono audio of any even length; returns the events it caused.

        Partial frames are kept until the next call, so the events do not depend on
        how the stream is split into chunks.

        Raises:
            AudioError: if ``pcm`` has an odd byte count.
        """
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio has an odd byte count ({len(pcm)})")
        if not isinstance(pcm, bytes):  # bytearray/memoryview: events must hold immutable bytes
            pcm = bytes(pcm)
        data = self._pending + pcm if self._pending else pcm
        fb = self._frame_bytes
        count = len(data) // fb
        self._pending = data[count * fb :]
        if not count:
            return []
        samples = np.frombuffer(data, dtype=_INT16, count=count * self._frame_samples)
        frames = samples.astype(np.float64).reshape(count, self._frame_samples)
        levels = np.sqrt(np.einsum("ij,ij->i", frames, frames) / self._frame_samples) / 32768.0
        events: list[VADEvent] = []
        for i, level in enumerate(levels.tolist()):
            frame = data[i * fb : (i + 1) * fb]
            self._level = level
            self._step(frame, self._voiced(frame, level), events)
        return events

    def _voiced(self, frame: bytes, level: float) -> bool:
        """The energy rule (see :class:`EnergyVAD`); other detectors override it."""
        active = self._in_speech or self._run > 0
        return level >= (self._hold_level if active else self._start_level)

    def _step(self, frame: bytes, voiced: bool, events: list[VADEvent]) -> None:
        index = self._index
        self._index += 1
        if not self._in_speech:
            self._history.append(frame)
            if not voiced:
                self._run = 0
                return
            if not self._run:
                self._onset = index
            self._run += 1
            if self._run >= self._start_frames:
                self._in_speech = True
                self._last_voiced = index
                self._silent_run = 0
                audio = b"".join(self._history)
                self._history.clear()
                events.append(SpeechStart(audio=audio, start=self._onset * self._frame_seconds))
            return
        events.append(SpeechAudio(audio=frame))
        if voiced:
            self._last_voiced = index
            self._silent_run = 0
            return
        self._silent_run += 1
        if self._silent_run >= self._end_frames:
            end = (self._last_voiced + 1) * self._frame_seconds
            start = self._onset * self._frame_seconds
            events.append(SpeechEnd(duration=end - start, end=end))
            self._in_speech = False
            self._run = 0


@final
class EnergyVAD(_FrameVAD):
    """Energy (RMS) voice activity detector.

    A frame is voiced if its RMS level reaches ``config.start_level``, or, while a
    run of voiced frames or speech is under way, ``config.hold_level`` (6 dB lower),
    so speech does not flicker on and off around the threshold. Cheap (a few
    microseconds per frame) and language-agnostic, but any loud noise is "speech".

    Args:
        config: detection settings.
        sample_rate: sample rate of the PCM16 mono audio in Hz.

    Raises:
        ConfigError: if ``sample_rate`` is not a positive int or a frame is shorter
            than one sample.
    """

    __slots__ = ()

    def __init__(self, config: VADConfig | None = None, sample_rate: int = 24_000) -> None:
        super().__init__(config if config is not None else VADConfig(), sample_rate)


def _import_webrtcvad() -> Any:
    try:
        return importlib.import_module("webrtcvad")
    except ImportError as exc:
        raise ConfigError(
            "WebRTCVAD needs the optional 'webrtcvad' module: pip install webrtcvad-wheels"
        ) from exc


@final
class WebRTCVAD(_FrameVAD):
    """Voice activity detector using Google's WebRTC GMM classifier (``webrtcvad``).

    Same events and state machine as :class:`EnergyVAD`; only the per-frame
    classification differs. ``webrtcvad`` accepts 8, 16, 32 or 48 kHz, so other
    rates are resampled to 16 kHz internally; its decisions then lag the audio by
    the resampler delay (about 12 ms from 24 kHz), which the returned audio does not.
    ``level`` is still the RMS of the original frame.

    Args:
        config: detection settings; ``config.frame`` must be 0.01, 0.02 or 0.03 s,
            ``config.threshold`` sets the aggressiveness ``min(3, int(4 * threshold))``.
        sample_rate: sample rate of the PCM16 mono audio in Hz.

    Raises:
        ConfigError: if ``webrtcvad`` is not installed, the frame length is not
            supported, or ``sample_rate`` is invalid.
    """

    __slots__ = ("_buffer", "_resampler", "_vad", "_vad_frame_bytes", "_vad_rate", "_voice")

    def __init__(self, config: VADConfig | None = None, sample_rate: int = 24_000) -> None:
        config = config if config is not None else VADConfig()
        module = _import_webrtcvad()
        if not any(math.isclose(config.frame, ok) for ok in _WEBRTC_FRAMES):
            raise ConfigError(
                f"WebRTCVAD needs VADConfig.frame of 0.01, 0.02 or 0.03 s, got {config.frame}"
            )
        super().__init__(config, sample_rate)
        self._vad_rate = sample_rate if sample_rate in _WEBRTC_RATES else 16_000
        self._resampler = StreamResampler(sample_rate, self._vad_rate)
        self._vad_frame_bytes = 2 * round(config.frame * self._vad_rate)
        self._vad: Any = module.Vad(self.aggressiveness)
        self._buffer = bytearray()
        self._voice = False

    @property
    def aggressiveness(self) -> int:
        """The webrtcvad mode, 0 (least) to 3 (most aggressive at rejecting non-speech)."""
        return min(3, int(4 * self._config.threshold))

    def reset(self) -> None:
        """Forget all state, including buffered audio and the stream position."""
        super().reset()
        self._resampler.reset()
        self._buffer.clear()
        self._voice = False

    def _voiced(self, frame: bytes, level: float) -> bool:
        self._buffer += self._resampler.process(frame)
        size = self._vad_frame_bytes
        while len(self._buffer) >= size:
            self._voice = bool(self._vad.is_speech(bytes(self._buffer[:size]), self._vad_rate))
            del self._buffer[:size]
        return self._voice


def make_vad(
    kind: Literal["energy", "webrtc"], config: VADConfig | None = None, sample_rate: int = 24_000
) -> VAD:
    """Build a VAD by name: ``"energy"`` (:class:`EnergyVAD`) or ``"webrtc"`` (:class:`WebRTCVAD`).

    Raises:
        ConfigError: for an unknown ``kind`` or invalid settings.
    """
    if kind == "energy":
        return EnergyVAD(config, sample_rate)
    if kind == "webrtc":
        return WebRTCVAD(config, sample_rate)
    raise ConfigError(f"unknown VAD kind {kind!r}; known: 'energy', 'webrtc'")
