"""A streaming PCM16 resampler that holds nothing back: :class:`LowDelayResampler`.

soxr's streaming resampler (:class:`~voxengine.audio.resample.StreamResampler`)
filters in blocks, so it returns nothing for some chunks and a burst on a later one:
from 24 to 8 kHz (``"HQ"``) and 20 ms chunks it holds about 60 ms of audio back. On a
call, every held-back millisecond is a millisecond of added latency.

:class:`LowDelayResampler` is a polyphase FIR resampler for any rational ratio
``L/M`` (``out_rate/in_rate`` in lowest terms; 24 -> 8 kHz is an exact 3:1
decimation, 8 -> 24 kHz a 1:3 interpolation). Its filter is a linear-phase,
Kaiser-windowed sinc low-pass designed at construction with numpy:

* passband up to 85 % of the lower rate's Nyquist frequency (3.4 kHz for 8 kHz
  telephone audio), flat within 0.1 dB;
* stopband from that Nyquist frequency on (4 kHz for 8 kHz), at least
  ``stopband_db`` (60 dB by default) down: what would alias (going down) or image
  (going up) is removed.

Contract:

* **Nothing is held back.** After ``n`` input samples in total, the output so far
  holds exactly ``ceil(n * out_rate / in_rate)`` samples, whatever the chunking: a
  20 ms chunk in gives 20 ms out at once.
* **Fixed, small signal delay.** The filter is causal, so the signal comes out
  delayed by its group delay, :attr:`LowDelayResampler.delay_seconds` (3 ms when 8 kHz
  is one side, 1.5 ms between 16 and 24 or 48 kHz, 1 ms between 24 and 48 kHz).
  :meth:`flush` returns that ring-out (``delay_seconds`` of audio) at the end of a
  stream, so nothing is lost.
* **Chunking does not matter.** Any split of a stream gives the same samples as one
  big chunk, bit for bit.
* Equal rates are a passthrough (:meth:`process` returns its argument, no copy).

Everything here is sync and pure apart from the resampler's own state (a few
hundred samples of history). Bad audio raises :class:`~voxengine.errors.AudioError`,
bad settings :class:`~voxengine.errors.ConfigError`.
"""

from __future__ import annotations

import math
from typing import Final, final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from voxengine.audio.resample import _check_rate
from voxengine.errors import AudioError, ConfigError

__all__ = ["LowDelayResampler", "design_lowpass"]

_INT16: Final = np.dtype("<i2")
#: Passband edge as a fraction of the lower rate's Nyquist frequency.
_PASSBAND: Final = 0.85
#: Largest interpolation factor L accepted (44.1 <-> 48 kHz needs 160).
MAX_PHASES: Final = 1024
#: Up to this L x M, outputs are computed as L x M correlations (fast for the 8, 16,
#: 24 and 48 kHz ratios); above it, with one gather over all outputs.
_SPLIT_LIMIT: Final = 16


def design_lowpass(
    rate: float, passband: float, stopband: float, stopband_db: float, *, gain: float = 1.0
) -> np.ndarray:
    """A linear-phase Kaiser-windowed sinc low-pass FIR (odd length, float64).

    Args:
        rate: the rate (Hz) the filter runs at.
        passband: passband edge (Hz).
        stopband: stopband edge (Hz), above ``passband`` and at most ``rate / 2``.
        stopband_db: stopband attenuation (dB, positive).
        gain: DC gain (the interpolation factor for an interpolating filter).

    Raises:
        ConfigError: edges out of order or a non-positive attenuation.
    """
    if not 0 < passband < stopband <= rate / 2 or stopband_db <= 0:
        raise ConfigError(
            f"low-pass needs 0 < passband < stopband <= rate/2 and a positive attenuation, "
            f"got {passband}, {stopband}, {rate}, {stopband_db}"
        )
    width = 2 * math.pi * (stopband - passband) / rate
    taps = math.ceil((stopband_db - 7.95) / (2.285 * width)) + 1
    taps = max(3, taps | 1)  # odd: an integer group delay
    if stopband_db > 50:
        beta = 0.1102 * (stopband_db - 8.7)
    elif stopband_db >= 21:
        beta = 0.5842 * (stopband_db - 21) ** 0.4 + 0.07886 * (stopband_db - 21)
    else:
        beta = 0.0
    cutoff = (passband + stopband) / 2 / rate  # cycles per sample
    k = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * k) * np.kaiser(taps, beta)
    return np.asarray(h * (gain / h.sum()), dtype=np.float64)


@final
class LowDelayResampler:
    """Streaming PCM16 mono resampler from ``in_rate`` to ``out_rate`` that holds
    nothing back (see the module docstring for the contract).

    Args:
        in_rate: input sample rate in Hz.
        out_rate: output sample rate in Hz.
        stopband_db: attenuation of what would alias or image (dB).

    Raises:
        ConfigError: a rate that is not a positive int, an attenuation that is not
            positive, or a ratio whose interpolation factor exceeds
            :data:`MAX_PHASES` (e.g. 8000 -> 44101 Hz).
    """

    __slots__ = (
        "_bank",
        "_delay_out",
        "_down",
        "_history",
        "_in_rate",
        "_n_in",
        "_n_out",
        "_out_rate",
        "_split",
        "_taps",
        "_up",
    )

    def __init__(self, in_rate: int, out_rate: int, *, stopband_db: float = 60.0) -> None:
        _check_rate("in_rate", in_rate)
        _check_rate("out_rate", out_rate)
        self._in_rate = in_rate
        self._out_rate = out_rate
        common = math.gcd(in_rate, out_rate)
        self._up = up = out_rate // common
        self._down = down = in_rate // common
        if up > MAX_PHASES:
            raise ConfigError(
                f"{in_rate} -> {out_rate} Hz needs {up} filter phases (at most {MAX_PHASES})"
            )
        nyquist = min(in_rate, out_rate) / 2
        if in_rate == out_rate:
            bank = np.ones((1, 1))
            delay = 0
        else:
            h = design_lowpass(
                in_rate * up, _PASSBAND * nyquist, nyquist, stopband_db, gain=float(up)
            )
            delay = (len(h) - 1) // 2  # in samples at in_rate * up
            per_phase = -(-len(h) // up)
            padded = np.zeros(per_phase * up)
            padded[: len(h)] = h
            # bank[p, m] multiplies x[i0 - (per_phase - 1 - m)]: phase p's taps, reversed
            bank = padded.reshape(per_phase, up).T[:, ::-1].copy()
        self._bank: np.ndarray = bank
        self._taps = bank.shape[1]
        #: per phase, its taps split M ways (see _by_phase); empty for large L x M
        self._split: list[list[np.ndarray]] = []
        if up * down <= _SPLIT_LIMIT and in_rate != out_rate:
            self._split = [
                [np.ascontiguousarray(bank[p, v::down]) for v in range(down)] for p in range(up)
            ]
        #: the ring-out at the end of a stream, in output samples
        self._delay_out = -(-delay // down)
        self._history = np.zeros(self._taps - 1)
        self._n_in = 0
        self._n_out = 0

    @property
    def in_rate(self) -> int:
        """Input sample rate in Hz."""
        return self._in_rate

    @property
    def out_rate(self) -> int:
        """Output sample rate in Hz."""
        return self._out_rate

    @property
    def passthrough(self) -> bool:
        """True when the rates are equal and audio passes through untouched."""
        return self._in_rate == self._out_rate

    @property
    def delay_seconds(self) -> float:
        """The filter's group delay: how much later the signal comes out (seconds)."""
        return self._delay_out / self._out_rate

    @property
    def taps_per_phase(self) -> int:
        """Multiply-adds per output sample (the filter's cost)."""
        return self._taps

    def process(self, pcm: bytes) -> bytes:
        """Resample the next chunk of PCM16 mono audio at ``in_rate``.

        Returns:
            Every output sample whose time lies within the input so far (see the
            contract); ``pcm`` itself in passthrough mode.

        Raises:
            AudioError: if ``pcm`` has an odd byte count.
        """
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio has an odd byte count ({len(pcm)})")
        if self._in_rate == self._out_rate or not pcm:
            return pcm if self._in_rate == self._out_rate else b""
        return self._run(np.frombuffer(pcm, dtype=_INT16))

    def _run(self, x: np.ndarray, limit: int | None = None) -> bytes:
        up, down, taps = self._up, self._down, self._taps
        n_in = self._n_in
        total = n_in + len(x)
        start = self._n_out
        end = -(-(total * up) // down)  # ceil(total * L / M)
        if limit is not None:
            end = min(end, limit)
        keep = taps - 1
        buffer = np.empty(keep + len(x))
        buffer[:keep] = self._history
        buffer[keep:] = x
        self._history = buffer[len(buffer) - keep :].copy()
        self._n_in = total
        if end <= start:
            return b""
        self._n_out = end
        # buffer[i - n_in : i - n_in + taps] ends at input sample i (absolute index)
        if self._split:
            y = self._by_phase(buffer, start, end, n_in)
        else:
            positions = np.arange(start, end, dtype=np.int64) * down
            windows = sliding_window_view(buffer, taps)[positions // up - n_in]
            y = np.einsum("ij,ij->i", windows, self._bank[positions % up])
        np.rint(y, out=y)
        np.maximum(y, -32768.0, out=y)  # (np.clip costs more than the two ufuncs)
        np.minimum(y, 32767.0, out=y)
        return y.astype(_INT16).tobytes()

    def _by_phase(self, buffer: np.ndarray, start: int, end: int, n_in: int) -> np.ndarray:
        """Outputs ``start..end`` as L x M correlations (numpy's C loops, no waste).

        Every L-th output shares a filter phase and advances M input samples, so each
        output class is a correlation of the input with that phase, taken at every
        M-th position: split both the input and the phase's taps M ways and it is the
        sum of M plain correlations (the polyphase identity).
        """
        up, down = self._up, self._down
        y = np.zeros(end - start)
        for j in range(min(up, end - start)):
            first = start + j
            count = -(-(end - first) // up)
            base = (first * down) // up - n_in  # window start in the buffer
            out = y[j::up]
            for v, taps in enumerate(self._split[(first * down) % up]):
                span = base + v
                stop = span + down * (count + len(taps) - 1)
                out += np.correlate(buffer[span:stop:down], taps)
        return y

    def flush(self) -> bytes:
        """End the stream: return the filter's ring-out (:attr:`delay_seconds` of
        audio) and start afresh for a new, unrelated stream."""
        if self._in_rate == self._out_rate:
            return b""
        if self._n_in == 0:
            return b""
        target = self._n_out + self._delay_out
        zeros = np.zeros(-(-((self._delay_out + 1) * self._down) // self._up) + 1)
        tail = self._run(zeros, limit=target)
        self.reset()
        return tail

    def reset(self) -> None:
        """Drop the filter state (e.g. after a barge-in); the next chunk starts a stream."""
        self._history = np.zeros(self._taps - 1)
        self._n_in = 0
        self._n_out = 0
