"""Sample-rate and channel conversion of PCM16 audio, built on ``soxr``.

:class:`StreamResampler` converts a stream chunk by chunk and keeps the filter
state between chunks, so chunk borders produce no clicks and the output of many
small chunks equals the output of one big chunk (up to int16 rounding).
:func:`convert` is the one-shot helper for whole buffers (files, tests) and also
changes the channel count.

``soxr`` is imported on first use, so importing :mod:`voxengine.audio` never needs it.

Contract: every function here is sync and pure apart from the resampler's own state.
Bad audio raises :class:`~voxengine.errors.AudioError`, bad settings
:class:`~voxengine.errors.ConfigError`; any other exception is a bug.
"""

from __future__ import annotations

import importlib
from typing import Any, Final, Literal, Protocol, final, get_args

import numpy as np

from voxengine.audio.format import AudioFormat
from voxengine.audio.pcm16 import downmix_to_mono, validate_pcm16
from voxengine.errors import AudioError, ConfigError

__all__ = ["Quality", "Resampler", "StreamResampler", "convert"]

Quality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]
"""soxr quality presets, quickest to best. ``"HQ"`` is the default everywhere."""

_QUALITIES: Final = frozenset(get_args(Quality))
_INT16: Final = np.dtype("<i2")


def _soxr() -> Any:
    """The ``soxr`` module, imported lazily.

    Raises:
        ConfigError: if ``soxr`` is not installed.
    """
    try:
        return importlib.import_module("soxr")
    except ImportError as exc:
        raise ConfigError(
            "resampling needs the 'soxr' package: pip install soxr (or voxengine[audio])"
        ) from exc


def _check_rate(name: str, sample_rate: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ConfigError(f"{name} must be a positive int (Hz), got {sample_rate!r}")


def _check_quality(quality: str) -> None:
    if quality not in _QUALITIES:
        raise ConfigError(f"quality must be one of {sorted(_QUALITIES)}, got {quality!r}")


class Resampler(Protocol):
    """A stateful PCM16 mono sample-rate converter (the extension point).

    ``process`` may return less (or more) audio than the exact rate ratio because
    of filter delay; ``flush`` returns the held-back tail at the end of a stream.
    """

    def process(self, pcm: bytes) -> bytes:
        """Convert the next chunk of the stream; returns the audio ready so far."""
        ...

    def flush(self) -> bytes:
        """End the stream: return the remaining output and start afresh."""
        ...


@final
class StreamResampler:
    """Streaming PCM16 mono resampler from ``in_rate`` Hz to ``out_rate`` Hz.

    Filter state is kept between :meth:`process` calls. The output lags the input
    (filter delay plus soxr's block processing; with ``"HQ"`` and 20 ms chunks at
    most about 40 ms between 16, 24 and 48 kHz, and up to about 170 ms from or to
    8 kHz); :meth:`flush` returns the tail. Over a whole stream the output holds
    ``round(n_in * out_rate / in_rate)`` samples, give or take one, and equals the
    output of one big chunk up to int16 rounding (a sample or two).

    When the rates are equal this is a passthrough: :meth:`process` returns its
    argument itself (no copy) and :meth:`flush` returns ``b""``.

    Args:
        in_rate: input sample rate in Hz.
        out_rate: output sample rate in Hz.
        quality: soxr quality preset.

    Raises:
        ConfigError: for a non-positive rate, an unknown quality, or a missing
            ``soxr`` package (only needed when the rates differ).
    """

    __slots__ = ("_in_rate", "_out_rate", "_quality", "_stream")

    def __init__(self, in_rate: int, out_rate: int, *, quality: Quality = "HQ") -> None:
        _check_rate("in_rate", in_rate)
        _check_rate("out_rate", out_rate)
        _check_quality(quality)
        self._in_rate = in_rate
        self._out_rate = out_rate
        self._quality: Quality = quality
        self._stream: Any = None
        if in_rate != out_rate:
            self._stream = _soxr().ResampleStream(
                in_rate, out_rate, 1, dtype="int16", quality=quality
            )

    @property
    def in_rate(self) -> int:
        """Input sample rate in Hz."""
        return self._in_rate

    @property
    def out_rate(self) -> int:
        """Output sample rate in Hz."""
        return self._out_rate

    @property
    def quality(self) -> Quality:
        """The soxr quality preset in use."""
        return self._quality

    @property
    def passthrough(self) -> bool:
        """True when the rates are equal and audio passes through untouched."""
        return self._stream is None

    def process(self, pcm: bytes) -> bytes:
        """Resample the next chunk of PCM16 mono audio.

        Args:
            pcm: whole PCM16 samples at ``in_rate``; any length, including empty.

        Returns:
            The output that is ready, at ``out_rate`` (possibly empty at first,
            because of the filter delay). In passthrough mode, ``pcm`` itself.

        Raises:
            AudioError: if ``pcm`` has an odd byte count.
        """
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio has an odd byte count ({len(pcm)})")
        if self._stream is None:
            return pcm
        if not pcm:
            return b""
        out = self._stream.resample_chunk(np.frombuffer(pcm, dtype=_INT16))
        return bytes(out.astype(_INT16, copy=False).tobytes())

    def flush(self) -> bytes:
        """End the stream: return the audio held in the filter and reset the state.

        The resampler is ready for a new, unrelated stream afterwards.
        """
        if self._stream is None:
            return b""
        out = self._stream.resample_chunk(np.zeros(0, dtype=_INT16), last=True)
        self._stream.clear()
        return bytes(out.astype(_INT16, copy=False).tobytes())

    def reset(self) -> None:
        """Drop the held-back audio and filter state (e.g. after a barge-in)."""
        if self._stream is not None:
            self._stream.clear()


def convert(pcm: bytes, src: AudioFormat, dst: AudioFormat, *, quality: Quality = "HQ") -> bytes:
    """Convert a whole PCM16 buffer from format ``src`` to format ``dst`` in one go.

    Channel changes: N -> N is kept; N -> 1 averages the channels (stereo
    downmix); 1 -> N duplicates the mono channel. Other changes (e.g. 2 -> 3) are
    rejected. Resampling runs on the smaller channel count. For streams use
    :class:`StreamResampler`, which keeps state between chunks.

    Returns:
        The converted audio; ``pcm`` itself when ``src == dst``.

    Raises:
        AudioError: if ``pcm`` is not whole frames of ``src`` or the channel change
            is unsupported.
        ConfigError: for an unknown quality or a missing ``soxr`` package.
    """
    _check_quality(quality)
    data = validate_pcm16(pcm, src)
    if src == dst:
        return pcm
    channels = src.channels
    if channels != dst.channels:
        if dst.channels == 1:
            data = downmix_to_mono(data, channels)
            channels = 1
        elif channels != 1:
            raise AudioError(
                f"cannot convert {channels} channels to {dst.channels}: only N->N, N->1 "
                "and 1->N are supported"
            )
    if src.sample_rate != dst.sample_rate and data:
        samples = np.frombuffer(data, dtype=_INT16).reshape(-1, channels)
        if channels == 1:
            samples = samples[:, 0]
        out = _soxr().resample(samples, src.sample_rate, dst.sample_rate, quality=quality)
        data = bytes(np.ascontiguousarray(out, dtype=_INT16).tobytes())
    if channels != dst.channels:  # 1 -> N
        mono = np.frombuffer(data, dtype=_INT16)
        data = np.repeat(mono, dst.channels).tobytes()
    return data
