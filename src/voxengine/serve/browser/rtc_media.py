"""Audio both ways on a WebRTC call: the paced outbound track and the inbound pump.

:class:`OutboundAudioTrack` is the ``MediaStreamTrack`` aiortc's RTP sender pulls
from. It hands out one 20 ms frame per 20 ms of wall-clock time (silence when the
queue is empty) and counts exactly how many samples of assistant audio it has handed
to the Opus encoder since the last barge-in. That count, delayed by a configurable
allowance for the network and the browser's jitter buffer, is the *played position*
the call reports to the engine, which truncates the assistant item there: audio never
handed to the encoder was certainly not heard.

:class:`InboundAudio` reads the caller's decoded microphone track (48 kHz Opus,
decoded by aiortc into PCM16 frames), downmixes it and converts it to the engine's
input rate with :class:`~voxengine.audio.lowdelay.LowDelayResampler` (no audio held back).

Contract: the track's queue methods are sync and never block; audio of the wrong
shape raises :class:`~voxengine.errors.AudioError`. Any other exception is a bug.
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Final, final

import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from voxengine.audio.format import AudioFormat
from voxengine.audio.lowdelay import LowDelayResampler
from voxengine.audio.pcm16 import downmix_to_mono
from voxengine.errors import AudioError, ConfigError

__all__ = ["FRAME_SECONDS", "InboundAudio", "OutboundAudioTrack", "frame_to_pcm16_mono"]

logger = logging.getLogger("voxengine.serve.webrtc")

FRAME_SECONDS: Final = 0.020
"""Packetisation time: one outbound frame (and one Opus packet) is 20 ms."""

#: Behind the wall clock by more than this, the track restarts its clock instead of
#: sending the backlog of frames in a burst (the event loop stalled).
_MAX_LAG: Final = 0.2


@final
class OutboundAudioTrack(MediaStreamTrack):
    """A paced PCM16 mono audio track fed from a queue (the assistant's voice).

    Played-position accounting follows the call's playback epochs (see
    :mod:`voxengine.serve.output`): :meth:`clear` starts epoch ``n`` and from then on
    the track counts the assistant samples it hands to the encoder. The caller has
    heard what was handed out ``jitter_allowance`` seconds (whole 20 ms frames) ago;
    ``on_played(seconds, epoch)`` is called with that figure whenever it grows.

    Args:
        fmt: the format of the audio given to :meth:`write` (mono; 20 ms must be a
            whole number of samples). 48 kHz spares aiortc's Opus encoder a resampling.
        jitter_allowance: seconds between handing a frame to the encoder and the
            caller hearing it (network and jitter buffer), rounded up to 20 ms frames.
        on_played: called with (seconds heard in this epoch, epoch).
        clock: the monotonic clock, in seconds (the event loop's by default).

    Raises:
        ConfigError: for a multi-channel format, a rate whose 20 ms is not a whole
            number of samples, or a negative allowance.
    """

    kind = "audio"

    def __init__(
        self,
        fmt: AudioFormat,
        *,
        jitter_allowance: float = 0.06,
        on_played: Callable[[float, int], None] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__()
        if fmt.channels != 1:
            raise ConfigError(f"the outbound track is mono, got {fmt.channels} channels")
        samples = fmt.sample_rate * FRAME_SECONDS
        if samples != int(samples):
            raise ConfigError(f"20 ms at {fmt.sample_rate} Hz is not a whole number of samples")
        if not jitter_allowance >= 0:
            raise ConfigError(f"jitter_allowance must be >= 0 seconds, got {jitter_allowance}")
        self._format = fmt
        self._frame_samples = int(samples)
        self._delay_frames = math.ceil(round(jitter_allowance / FRAME_SECONDS, 6))
        self._on_played = on_played
        self._clock = clock
        self._time_base = fractions.Fraction(1, fmt.sample_rate)
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self.epoch = 0
        self._handed = 0  # assistant samples handed to the encoder in this epoch
        self._history: deque[int] = deque()  # _handed after each of the last frames
        self._heard = 0  # samples heard in this epoch (handed _delay_frames frames ago)
        self._start: float | None = None
        self._pts = 0
        self.frames_sent = 0
        self.audio_frames_sent = 0

    @property
    def format(self) -> AudioFormat:
        """The format :meth:`write` takes."""
        return self._format

    @property
    def pending(self) -> float:
        """Seconds queued and not yet handed to the encoder."""
        return self._format.duration(self._queued_bytes)

    @property
    def handed(self) -> float:
        """Seconds of assistant audio handed to the encoder in this epoch."""
        return self._handed / self._format.sample_rate

    @property
    def played(self) -> float:
        """Seconds of this epoch's assistant audio the caller has heard (estimated)."""
        return self._heard / self._format.sample_rate

    def write(self, pcm: bytes) -> None:
        """Queue ``pcm`` (PCM16 mono in :attr:`format`) after what is queued.

        Raises:
            AudioError: if ``pcm`` has an odd byte count.
        """
        if len(pcm) % 2:
            raise AudioError(f"PCM16 audio has an odd byte count ({len(pcm)})")
        if pcm:
            self._queue.append(bytes(pcm))
            self._queued_bytes += len(pcm)

    def clear(self, epoch: int) -> float:
        """Barge-in: drop everything queued and start counting ``epoch`` from zero.

        Frames already handed to the encoder are not recalled (they are on the wire).
        Returns the seconds dropped.
        """
        dropped = self.pending
        self._queue.clear()
        self._queued_bytes = 0
        self.epoch = epoch
        self._handed = self._heard = 0
        self._history.clear()
        if dropped:
            logger.debug("outbound track cleared (epoch %d): dropped %.3f s", epoch, dropped)
        return dropped

    def _take(self, nbytes: int) -> bytes:
        """Up to ``nbytes`` of queued audio."""
        out = bytearray()
        queue = self._queue
        while queue and len(out) < nbytes:
            pcm = queue[0]
            part = pcm[: nbytes - len(out)]
            if len(part) == len(pcm):
                queue.popleft()
            else:
                queue[0] = pcm[len(part) :]
            out += part
        self._queued_bytes -= len(out)
        return bytes(out)

    def _account(self, samples: int) -> None:
        """One frame with ``samples`` of assistant audio went to the encoder."""
        self._handed += samples
        self._history.append(self._handed)
        if len(self._history) <= self._delay_frames:
            return
        heard = self._history.popleft()
        if heard != self._heard:
            self._heard = heard
            if self._on_played is not None:
                self._on_played(self.played, self.epoch)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    async def recv(self) -> AudioFrame:
        """The next 20 ms frame, at its due time (called by aiortc's RTP sender).

        Raises:
            MediaStreamError: once the track is stopped.
        """
        if self.readyState != "live":
            raise MediaStreamError
        now = self._now()
        if self._start is None:
            self._start = now
        else:
            due = self._start + self._pts / self._format.sample_rate
            if now - due > _MAX_LAG:  # a stall: restart the clock, no burst
                self._start = now - self._pts / self._format.sample_rate
            elif due > now:
                await asyncio.sleep(due - now)
        if self.readyState != "live":
            raise MediaStreamError
        nbytes = 2 * self._frame_samples
        pcm = self._take(nbytes)
        self._account(len(pcm) // 2)
        if pcm:
            self.audio_frames_sent += 1
        if len(pcm) < nbytes:
            pcm += bytes(nbytes - len(pcm))
        frame = AudioFrame.from_ndarray(
            np.frombuffer(pcm, dtype="<i2").reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = self._format.sample_rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += self._frame_samples
        self.frames_sent += 1
        return frame


def frame_to_pcm16_mono(frame: AudioFrame) -> bytes:
    """A decoded audio frame as PCM16 mono at the frame's own rate.

    Raises:
        AudioError: for a frame that is not packed signed 16-bit audio.
    """
    if frame.format.name != "s16":
        raise AudioError(f"expected s16 audio frames, got {frame.format.name}")
    channels = len(frame.layout.channels)
    data = frame.to_ndarray()
    pcm = bytes(np.ascontiguousarray(data, dtype="<i2").tobytes())
    return downmix_to_mono(pcm, channels)


@final
class InboundAudio:
    """Pumps the caller's microphone track into ``deliver`` at ``fmt``'s rate.

    Args:
        track: the remote audio track aiortc created for the caller's microphone.
        fmt: the format ``deliver`` wants (the engine's input format, mono).
        deliver: awaited with each chunk of converted PCM16 (about 20 ms).
    """

    def __init__(
        self,
        track: MediaStreamTrack,
        fmt: AudioFormat,
        deliver: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self._track = track
        self._format = fmt
        self._deliver = deliver
        self._resampler: LowDelayResampler | None = None
        self.seconds_received = 0.0

    async def run(self) -> None:
        """Read until the track ends; returns then (cancel it to stop earlier)."""
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, AudioFrame):  # pragma: no cover - aiortc gives audio
                continue
            pcm = frame_to_pcm16_mono(frame)
            rate = frame.sample_rate
            resampler = self._resampler
            if resampler is None or resampler.in_rate != rate:
                resampler = self._resampler = LowDelayResampler(rate, self._format.sample_rate)
            self.seconds_received += len(pcm) / (2 * rate)
            out = resampler.process(pcm)
            if out:
                await self._deliver(out)
