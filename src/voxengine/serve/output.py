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

Backlog bound: what waits here for the caller's connection (audio bytes, and
:data:`EVENT_BYTES` per control message) is capped at ``max_backlog_bytes``. A
caller who stops reading blocks the sender, so the backlog grows with the reply;
past the cap nothing more is queued, :attr:`CallerOutput.overflowed` turns true and
``on_overflow`` is called once (the call then ends with ``slow_caller``). Server
memory per call is therefore bounded whatever the caller does.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, final

from voxengine.audio.format import AudioFormat
from voxengine.audio.pcm16 import validate_pcm16

__all__ = ["EVENT_BYTES", "CallerOutput", "Outbound"]

#: What one queued control message counts against the backlog cap (bytes).
EVENT_BYTES: Final = 512


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
        max_backlog_bytes: cap of what may wait for the caller (``None``: no cap).
        on_overflow: called once when a write or message would pass the cap.
    """

    def __init__(
        self,
        fmt: AudioFormat,
        *,
        max_backlog_bytes: int | None = None,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self._format = fmt
        self._max_backlog = max_backlog_bytes
        self.on_overflow = on_overflow
        self.overflowed = False
        self.backlog_bytes = 0  # queued for the caller, not yet handed to the sender
        self._queue: deque[Outbound] = deque()
        self._ready = asyncio.Event()
        self.epoch = 0
        self._written = 0.0
        self._reported = 0.0
        self._mark = 0.0
        self.sent_seconds = 0.0  # total over the call, for metrics
        self.heard_seconds = 0.0  # total the caller reported played, over the call

    @property
    def max_backlog_bytes(self) -> int | None:
        """The backlog cap (``None``: none)."""
        return self._max_backlog

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
        self.backlog_bytes = EVENT_BYTES * len(kept)
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
        size = _size(item)
        limit = self._max_backlog
        if limit is not None and item.kind != "clear" and self.backlog_bytes + size > limit:
            if not self.overflowed:
                self.overflowed = True
                if self.on_overflow is not None:
                    self.on_overflow()
            return
        self.backlog_bytes += size
        self._queue.append(item)
        self._ready.set()

    async def next_outbound(self) -> Outbound:
        """The next item to send to the caller (waits for one)."""
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        item = self._queue.popleft()
        self.backlog_bytes = max(0, self.backlog_bytes - _size(item))
        return item

    def drain_nowait(self) -> list[Outbound]:
        """Everything queued, now (at hang-up: the last messages)."""
        items = list(self._queue)
        self._queue.clear()
        self.backlog_bytes = 0
        return items


def _size(item: Outbound) -> int:
    return len(item.pcm) if item.kind == "audio" else EVENT_BYTES
