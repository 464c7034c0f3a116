"""The caller as the engine's speaker: :class:`CallerOutput`.

A call's engine has no sound card: its :class:`~voxengine.voice_io.VoiceIO` writes
the assistant's audio into a :class:`CallerOutput`, an
:class:`~voxengine.audio.devices.AudioOutput` whose "device" is the remote caller.
``write()`` queues audio for the call's sender; ``played`` is what the *caller*
reported as actually played. So the engine's own barge-in machinery (the
:class:`~voxengine.playback.PlaybackTracker`, ``locate(output.played)``, ``clear()``,
``mark()``) truncates the assistant item at what the caller heard, as it does with a
local speaker.

Playback epochs: every ``clear()`` starts a new epoch (0, 1, 2, ...). The caller is
told (``clear_playback(epoch)``), drops what it had queued, and from then on reports
seconds played *since that clear*. Reports for an older epoch are ignored, so a
report in flight when the clear was sent cannot move the play head.

Accounting (all in seconds of the current epoch): ``written`` (queued to the
caller), ``reported`` (played, per the caller; never above ``written``), ``mark``
(the ``reported`` value at the last ``mark()``). ``played = reported - mark``,
``pending = written - reported``. The truncation point is therefore at most one
report interval behind what was heard, never ahead of it.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.audio.pcm16 import validate_pcm16

__all__ = ["CallerOutput", "Outbound"]


@dataclass(frozen=True, slots=True)
class Outbound:
    """One item for the caller, in order: ``kind`` is ``"audio"`` (``pcm``), ``"clear"``
    (``epoch``) or ``"event"`` (``message``)."""

    kind: str
    pcm: bytes = b""
    epoch: int = 0
    message: dict[str, object] | None = None


@final
class CallerOutput:
    """An :class:`~voxengine.audio.devices.AudioOutput` played by a remote caller.

    Args:
        fmt: the caller's playback format (PCM16 mono at its rate).
    """

    def __init__(self, fmt: AudioFormat) -> None:
        self._format = fmt
        self._queue: deque[Outbound] = deque()
        self._ready = asyncio.Event()
        self.epoch = 0
        self._written = 0.0
        self._reported = 0.0
        self._mark = 0.0
        self.sent_seconds = 0.0  # total over the call, for metrics
        self.heard_seconds = 0.0  # total the caller reported played, over the call

    # -- AudioOutput ----------------------------------------------------------------

    @property
    def format(self) -> AudioFormat:
        """The caller's playback format."""
        return self._format

    @property
    def played(self) -> float:
        """Seconds the caller reported played since the last :meth:`mark`."""
        return max(0.0, self._reported - self._mark)

    @property
    def pending(self) -> float:
        """Seconds queued to the caller and not yet reported played."""
        return max(0.0, self._written - self._reported)

    async def start(self) -> None:
        """Nothing to start: the caller plays as audio arrives."""

    async def stop(self) -> None:
        """Nothing to stop; queued items stay until the sender ends."""

    def write(self, pcm: bytes) -> None:
        """Queue ``pcm`` for the caller.

        Raises:
            AudioError: not whole PCM16 frames.
        """
        pcm = validate_pcm16(pcm, self._format)
        if not pcm:
            return
        seconds = self._format.duration(len(pcm))
        self._written += seconds
        self.sent_seconds += seconds
        self._put(Outbound("audio", pcm=pcm))

    def clear(self) -> float:
        """Drop the audio not yet sent, tell the caller to drop what it queued, start a
        new epoch; returns the seconds dropped (not heard). :attr:`played` still counts
        from the last :meth:`mark` (the barge-in reads it after clearing)."""
        dropped = self.pending
        heard = self.played  # :attr:`played` keeps counting from the last mark, not the clear
        kept = [item for item in self._queue if item.kind != "audio"]
        self._queue.clear()
        self._queue.extend(kept)
        self.epoch += 1
        self._written = self._reported = 0.0
        self._mark = -heard
        self._put(Outbound("clear", epoch=self.epoch))
        return dropped

    def mark(self) -> None:
        """Measure :attr:`played` from here."""
        self._mark = min(self._reported, self._written)

    # -- the caller's side ----------------------------------------------------------------

    def report_played(self, seconds: float, epoch: int | None = None) -> None:
        """The caller played ``seconds`` of assistant audio since clear ``epoch`` (default:
        the current one). Stale epochs and values going backwards are ignored."""
        if epoch is not None and epoch != self.epoch:
            return
        reported = max(self._reported, min(float(seconds), self._written))
        self.heard_seconds += reported - self._reported
        self._reported = reported

    def send_event(self, message: dict[str, object]) -> None:
        """Queue a control message, in order with the audio."""
        self._put(Outbound("event", message=message))

    def _put(self, item: Outbound) -> None:
        self._queue.append(item)
        self._ready.set()

    async def next_outbound(self) -> Outbound:
        """The next item to send to the caller (waits for one)."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def drain_nowait(self) -> list[Outbound]:
        """Everything queued, now (at hang-up: the last messages)."""
        items = list(self._queue)
        self._queue.clear()
        return items
