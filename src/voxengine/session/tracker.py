"""The response lifecycle of one connection, as far as interruption and the watchdog
need it: :class:`ResponseTracker`.

Pure bookkeeping (no I/O): the session feeds it every event it delivers and every
command that asks for a response. It knows which response is active, which assistant
item's audio arrived last and how much of it, and when the last output of a response
arrived (on :func:`time.monotonic`'s clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.commands import Command, CreateResponse
from voxengine.events import (
    AudioDelta,
    AudioDone,
    Event,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallDelta,
    TranscriptDelta,
    TranscriptDone,
)

__all__ = ["ResponseTracker"]

_monotonic = time.monotonic

#: The event classes :meth:`ResponseTracker.observe` matches (audio is handled first).
_TRACKED_EVENTS: frozenset[type] = frozenset({ResponseStarted, ProviderErrorEvent, ResponseDone})

#: Output of a response: what the watchdog counts as progress (keep-alive traffic such
#: as rate-limit updates, and anything else, is not). Audio deltas are handled first.
_PROGRESS_EVENTS: frozenset[type] = frozenset(
    {
        ResponseStarted,
        ResponseDone,
        TextDelta,
        TextDone,
        AudioDone,
        TranscriptDelta,
        TranscriptDone,
        ToolCallDelta,
        ToolCall,
    }
)


@final
class ResponseTracker:
    """Follows responses and assistant audio as events pass, for interruption.

    ``active_response_id`` is the response in progress (``None`` between responses);
    ``audio_item_id`` is the assistant item whose audio arrived last and
    ``audio_received`` how many seconds of it arrived. ``progress_at`` is when (on
    :func:`time.monotonic`'s clock, like ``requested_at``) the last output of a
    response arrived: the watchdog measures stalls from it.
    """

    __slots__ = (
        "_format",
        "active_response_id",
        "audio_bytes",
        "audio_item_id",
        "awaiting_response",
        "on_expecting",
        "progress_at",
        "requested_at",
    )

    def __init__(self, output_format: AudioFormat) -> None:
        self._format = output_format
        #: A response was requested and has not started yet.
        self.awaiting_response = False
        #: Monotonic time of the last response request.
        self.requested_at = 0.0
        #: Monotonic time of the last response output (see ``_PROGRESS_EVENTS``).
        self.progress_at = 0.0
        self.active_response_id: str | None = None
        self.audio_item_id: str | None = None
        #: Bytes of audio received for ``audio_item_id``.
        self.audio_bytes = 0
        #: Called when output becomes expected (a response requested or started): the
        #: watchdog arms its timer then, and sleeps between responses.
        self.on_expecting: Callable[[], None] | None = None

    @property
    def expecting_output(self) -> bool:
        """A response is running or has been asked for: silence now means a stall."""
        return self.awaiting_response or self.active_response_id is not None

    def requested(self, command: Command, now: float) -> None:
        """Note a command (sent at monotonic time ``now``) that asks for a response."""
        if isinstance(command, CreateResponse):
            self.awaiting_response = True
            self.requested_at = now
            if self.on_expecting is not None:
                self.on_expecting()

    @property
    def audio_received(self) -> float:
        """Seconds of audio received for ``audio_item_id``."""
        return self._format.duration(self.audio_bytes)

    def audio_arrived(self, item_id: str, size: int, now: float) -> None:
        """``size`` bytes of assistant audio of ``item_id`` arrived at ``now``
        (monotonic): what :meth:`observe` does for an :class:`AudioDelta`."""
        self.progress_at = now
        if item_id != self.audio_item_id:
            self.audio_item_id = item_id
            self.audio_bytes = 0
        self.audio_bytes += size

    def observe(self, event: Event) -> None:
        """Update the state from one event."""
        if type(event) is AudioDelta:  # the hot path: one per 20 ms of audio
            self.audio_arrived(event.item_id, len(event.audio), _monotonic())
            return
        kind = type(event)
        if kind in _PROGRESS_EVENTS:
            self.progress_at = _monotonic()
        if kind not in _TRACKED_EVENTS:
            return
        match event:
            case ResponseStarted(response_id=response_id):
                self.active_response_id = response_id
                self.awaiting_response = False
                if self.on_expecting is not None:
                    self.on_expecting()
            case ProviderErrorEvent():
                self.awaiting_response = False  # e.g. a refused response.create
            case ResponseDone(response_id=response_id):
                if response_id == self.active_response_id or not response_id:
                    self.active_response_id = None
            case _:
                pass
