"""Where the time of a spoken turn goes: per-stage latencies from the engine's events.

:class:`TurnClock` watches one spoken turn of a pipeline and splits the time from the
end of the user's speech (``SpeechStopped``: the VAD ended the turn) to the first reply
audio into the stages:

* speech-to-text: until the user's ``TranscriptDone``;
* LLM first token: until the first assistant ``TranscriptDelta``/``TextDelta``;
* LLM first sentence: until the reply text holds a complete sentence (what the
  pipeline hands to TTS first);
* TTS first audio: until the first ``AudioDelta``.

The stages overlap with nothing before them in one turn, so the parts add up to the
total (the last part includes the event hops).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from voxengine.events import AudioDelta, Event, Role, SpeechStopped, TextDelta, TranscriptDelta
from voxengine.events import TranscriptDone as _TranscriptDone
from voxengine.providers.pipeline import SentenceSplitter

__all__ = ["TurnClock"]


@dataclass(slots=True)
class TurnClock:
    """Timestamps (``time.perf_counter``) of one spoken turn; feed it every event."""

    marks: dict[str, float] = field(default_factory=dict)
    _splitter: SentenceSplitter = field(default_factory=SentenceSplitter)

    def observe(self, event: Event) -> None:
        """Record the moment ``event`` arrived, if it marks a stage boundary."""
        now = time.perf_counter()
        marks = self.marks
        if isinstance(event, SpeechStopped):
            marks.clear()
            self._splitter = SentenceSplitter()
            marks["end_of_speech"] = now
        elif "end_of_speech" not in marks:
            return
        elif isinstance(event, _TranscriptDone) and event.role is Role.USER:
            marks.setdefault("transcript", now)
        elif isinstance(event, TranscriptDelta | TextDelta) and "transcript" in marks:
            if isinstance(event, TranscriptDelta) and event.role is not Role.ASSISTANT:
                return
            marks.setdefault("first_token", now)
            if self._splitter.push(event.delta):
                marks.setdefault("first_sentence", now)
        elif isinstance(event, AudioDelta) and "transcript" in marks:
            marks.setdefault("first_audio", now)

    def report(self) -> list[str]:
        """Lines describing the stages (empty before the turn produced audio)."""
        marks = self.marks
        if "first_audio" not in marks or "transcript" not in marks:
            return []
        start = marks["end_of_speech"]
        steps = [
            ("speech-to-text", "transcript"),
            ("LLM first token", "first_token"),
            ("LLM first sentence", "first_sentence"),
            ("TTS first audio", "first_audio"),
        ]
        lines: list[str] = []
        previous = start
        for label, key in steps:
            if key not in marks:
                continue
            moment = marks[key]
            lines.append(f"  {label:<20} +{(moment - previous) * 1000:6.0f} ms")
            previous = moment
        total = (marks["first_audio"] - start) * 1000
        lines.append(
            f"  {'time to first audio':<20} {total:7.0f} ms (end of speech to first audio)"
        )
        return lines
