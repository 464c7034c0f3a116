"""Per-stage latency of one turn, from the engine's events (any provider).

The one latency helper of the CLI: the console shows :meth:`StageLatency.describe`
after every turn, the demo prints :meth:`TurnTimer.report` for its spoken turn.

The milestones after the end of the user's turn (``SpeechStopped`` or the commit)
are: the user's words recognised (``TranscriptDone`` of the user), the first text of
the reply, its first complete sentence (what a cascaded pipeline hands to TTS first;
known when the text comes through :meth:`TurnTimer.observe` or
:meth:`TurnTimer.first_text` with the delta), and the first audio of the reply. The
stages are the gaps between them: speech recognition (end of turn to transcript), the
language model (transcript, or end of turn, to first text; then to the first
sentence) and speech synthesis (first sentence, else first text, to first audio); the
total is end of turn to first audio. A cascaded pipeline produces them in that order;
a speech-to-speech service may transcribe the user after it starts answering, in
which case the stage it cannot split is ``None`` and only the total is shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

from voxengine.events import (
    AudioDelta,
    Event,
    Role,
    SpeechStopped,
    TextDelta,
    TranscriptDelta,
    TranscriptDone,
)
from voxengine.providers.pipeline.sentence import SentenceSplitter

__all__ = ["StageLatency", "TurnTimer"]


@dataclass(frozen=True, slots=True)
class StageLatency:
    """Seconds per stage of one turn (``None``: not measured or not separable).

    ``sentence`` is the language model's first token to its first complete sentence
    (``None`` unless the reply text was given); ``tts`` then starts at that sentence.
    """

    stt: float | None
    llm: float | None
    tts: float | None
    first_audio: float | None
    sentence: float | None = None

    def describe(self) -> str:
        """``STT 210 ms | LLM 35 ms | TTS 120 ms | first audio 365 ms`` (unknowns as -)."""

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.0f} ms"

        return (
            f"STT {ms(self.stt)} | LLM {ms(self.llm)} | TTS {ms(self.tts)} | "
            f"first audio {ms(self.first_audio)}"
        )


@final
class TurnTimer:
    """Collects one turn's milestones; :meth:`result` turns them into stages.

    Feed it events (:meth:`observe`) or call the milestone methods yourself.
    ``clock`` gives seconds (default :func:`time.perf_counter`).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        #: The first moment of each milestone since the end of the user's turn.
        self._marks: dict[str, float] = {}
        #: The same in a cascade's order: the reply counts once the user was heard.
        self._cascade: dict[str, float] = {}
        self._splitter = SentenceSplitter()

    @property
    def started(self) -> bool:
        """True between the end of a user turn and the first audio of its reply."""
        return "end" in self._marks and "audio" not in self._marks

    @property
    def timed(self) -> bool:
        """True once a user turn has ended: the events since belong to its reply."""
        return "end" in self._marks

    def observe(self, event: Event) -> None:
        """Record the milestone ``event`` marks, if any (the engine's event order)."""
        if isinstance(event, SpeechStopped):
            self.turn_ended()
        elif isinstance(event, TranscriptDone):
            if event.role is Role.USER:
                self.heard()
        elif isinstance(event, TextDelta) or (
            isinstance(event, TranscriptDelta) and event.role is Role.ASSISTANT
        ):
            self.first_text(event.delta)
        elif isinstance(event, AudioDelta):
            self.first_audio()

    def _mark(self, name: str, now: float) -> None:
        self._marks.setdefault(name, now)
        if "heard" in self._cascade:
            self._cascade.setdefault(name, now)

    def turn_ended(self) -> None:
        """The user's turn ended (VAD end of speech, or a commit): start timing."""
        now = self._clock()
        self._marks = {"end": now}
        self._cascade = {"end": now}
        self._splitter = SentenceSplitter()

    def heard(self) -> None:
        """The user's words were recognised."""
        if "end" not in self._marks:
            return
        now = self._clock()
        self._cascade.setdefault("heard", now)
        if "text" not in self._marks:
            self._marks.setdefault("heard", now)

    def first_text(self, delta: str = "") -> None:
        """Text (or transcript) of the reply arrived; ``delta`` is that text."""
        if "end" not in self._marks:
            return
        now = self._clock()
        self._mark("text", now)
        if delta and "sentence" not in self._marks and self._splitter.push(delta):
            self._mark("sentence", now)

    def first_audio(self) -> None:
        """Audio of the reply arrived."""
        if "end" in self._marks:
            self._mark("audio", self._clock())

    def result(self) -> StageLatency | None:
        """The stages of the timed turn, or ``None`` when no turn was timed."""
        marks = self._marks
        if "end" not in marks:
            return None
        end = marks["end"]
        heard, text = marks.get("heard"), marks.get("text")
        sentence, audio = marks.get("sentence"), marks.get("audio")
        if sentence is not None and audio is not None and sentence > audio:
            sentence = None  # the audio did not wait for it
        if heard is not None and audio is not None and heard > audio:
            heard = None  # recognised after the reply began: not a stage before it
        stt = heard - end if heard is not None else None
        llm = text - (heard if heard is not None else end) if text is not None else None
        spoken = sentence if sentence is not None else text
        tts = None
        if audio is not None and spoken is not None and spoken <= audio:
            tts = audio - spoken
        first_sentence = sentence - text if sentence is not None and text is not None else None
        total = audio - end if audio is not None else None
        return StageLatency(stt=stt, llm=llm, tts=tts, first_audio=total, sentence=first_sentence)

    def report(self) -> list[str]:
        """The timed turn's stages as lines, each from the one before, in a cascade's
        order (the reply counted from when the user was heard), none after the first
        audio, so no step is negative; empty unless the user was heard and the reply
        had audio."""
        marks = self._cascade
        if "heard" not in marks or "audio" not in marks:
            return []
        steps = [
            ("speech-to-text", "heard"),
            ("LLM first token", "text"),
            ("LLM first sentence", "sentence"),
            ("TTS first audio", "audio"),
        ]
        lines: list[str] = []
        previous = marks["end"]
        for label, key in steps:
            # a milestone after the first audio (a first sentence the audio did not
            # wait for: the pipeline spoke a clause) is not a step towards it
            if key in marks and marks[key] <= marks["audio"]:
                lines.append(f"  {label:<20} +{(marks[key] - previous) * 1000:6.0f} ms")
                previous = marks[key]
        total = (marks["audio"] - marks["end"]) * 1000
        lines.append(
            f"  {'time to first audio':<20} {total:7.0f} ms (end of speech to first audio)"
        )
        return lines
