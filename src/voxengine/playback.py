"""Which assistant item the speaker is playing, and how far into it.

The output device reports one number: seconds played since it was last marked. The
:class:`PlaybackTracker` remembers how many seconds of each assistant item were
queued, in order, so that number can be turned into (item, seconds into that item) —
the ``audio_end`` a barge-in truncation must carry: what the user actually heard,
not what arrived.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

__all__ = ["PlaybackPosition", "PlaybackTracker"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackPosition:
    """The play head: ``played`` seconds into assistant item ``item_id``."""

    item_id: str
    played: float
    queued: float  # seconds of this item queued so far

    @property
    def finished(self) -> bool:
        """Whether everything queued for this item has been heard."""
        return self.played >= self.queued - 1e-9


@dataclass(slots=True)
class _Segment:
    item_id: str
    seconds: float


@final
class PlaybackTracker:
    """Queued seconds per assistant item, in play order, since the last :meth:`reset`."""

    def __init__(self) -> None:
        self._segments: list[_Segment] = []  # a few items; an empty deque is 760 bytes
        self._total = 0.0

    @property
    def queued(self) -> float:
        """Seconds queued since the last reset."""
        return self._total

    def written(self, item_id: str, seconds: float) -> None:
        """``seconds`` of ``item_id`` were queued for playback."""
        if seconds <= 0:
            return
        if self._segments and self._segments[-1].item_id == item_id:
            self._segments[-1].seconds += seconds
        else:
            self._segments.append(_Segment(item_id, seconds))
        self._total += seconds

    def locate(self, played: float) -> PlaybackPosition | None:
        """Where ``played`` seconds (since the last reset) put the play head.

        Returns ``None`` when nothing was queued. Past the end, the position is the end
        of the last item.
        """
        remaining = max(0.0, played)
        position: PlaybackPosition | None = None
        for segment in self._segments:
            heard = min(remaining, segment.seconds)
            position = PlaybackPosition(
                item_id=segment.item_id, played=heard, queued=segment.seconds
            )
            if remaining < segment.seconds:
                return position
            remaining -= segment.seconds
        return position

    def reset(self) -> None:
        """Forget everything (call together with the output's ``mark()``)."""
        self._segments.clear()
        self._total = 0.0
