"""Usage totals and latency metrics derived from the event stream."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.events import (
    AudioDelta,
    Event,
    ResponseDone,
    SessionReady,
    SpeechStopped,
    TextDelta,
    TranscriptDelta,
    Usage,
)
from voxengine.pricing import UsageTracker

__all__ = ["MetricsSnapshot", "SessionMetrics"]

logger = logging.getLogger("voxengine.metrics")


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSnapshot:
    """Counters and latencies of a session; latencies are seconds (``None`` = not measured).

    ``time_to_first_audio`` and ``time_to_first_text`` run from the last request
    (``send_text``, ``commit_audio``, ``create_response``, or the end of the user's
    speech as detected by VAD) to the first audio or text
    of its response; ``response_latency`` to its ``ResponseDone``.
    """

    responses: int
    audio_chunks: int
    audio_seconds_in: float
    audio_seconds_out: float
    text_chunks: int
    time_to_first_audio: float | None
    time_to_first_text: float | None
    response_latency: float | None
    usage: Usage


@final
class SessionMetrics:
    """Accumulates :class:`MetricsSnapshot` fields from events; pure bookkeeping."""

    def __init__(self, output_format: AudioFormat, clock: Callable[[], float] = time.perf_counter):
        self._format = output_format
        self._clock = clock
        self._audio_chunks = 0
        self._text_chunks = 0
        self.tracker = UsageTracker()
        #: The model the session reported, for pricing.
        self.model: str | None = None
        self._request_at: float | None = None
        self._first_audio: float | None = None
        self._first_text: float | None = None
        self._latency: float | None = None
        self._audio_seen = False
        self._text_seen = False

    def mark_request(self) -> None:
        """The application just asked for a response: start the latency clocks."""
        self._request_at = self._clock()
        self._audio_seen = self._text_seen = False

    def observe(self, event: Event) -> None:
        """Update counters from one event."""
        match event:
            case SpeechStopped():
                self.mark_request()  # with server VAD, the user's turn ends here
            case SessionReady(model=model):
                self.model = model or None
            case AudioDelta(audio=audio):
                self._audio_chunks += 1
                self.tracker.add_audio_out(self._format.duration(len(audio)))
                if not self._audio_seen and self._request_at is not None:
                    self._first_audio = self._clock() - self._request_at
                self._audio_seen = True
            case TextDelta() | TranscriptDelta():
                if isinstance(event, TranscriptDelta) and event.response_id is None:
                    return  # the user's transcript, not model output
                self._text_chunks += 1
                if not self._text_seen and self._request_at is not None:
                    self._first_text = self._clock() - self._request_at
                self._text_seen = True
            case ResponseDone(usage=usage):
                self._add_usage(usage or Usage())
                if self._request_at is not None:
                    self._latency = self._clock() - self._request_at
                    self._request_at = None
            case _:
                pass

    def _add_usage(self, usage: Usage) -> None:
        try:
            self.tracker.add_response(usage)
        except ValueError:
            # The provider's cached-token split does not add up: keep the totals, drop it.
            logger.warning("inconsistent cached-token counts in usage; split ignored")
            self.tracker.add_response(
                replace(usage, input_cached_text_tokens=0, input_cached_audio_tokens=0)
            )

    def record_audio_in(self, seconds: float) -> None:
        """``seconds`` of user audio were sent to the provider."""
        self.tracker.add_audio_in(seconds)

    @property
    def usage(self) -> Usage:
        """Token usage summed over all responses."""
        return self.tracker.total

    def snapshot(self) -> MetricsSnapshot:
        """The current figures."""
        return MetricsSnapshot(
            responses=self.tracker.responses,
            audio_chunks=self._audio_chunks,
            audio_seconds_in=self.tracker.audio_seconds_in,
            audio_seconds_out=self.tracker.audio_seconds_out,
            text_chunks=self._text_chunks,
            time_to_first_audio=self._first_audio,
            time_to_first_text=self._first_text,
            response_latency=self._latency,
            usage=self.tracker.total,
        )
