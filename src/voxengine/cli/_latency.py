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

    def lines(self) -> list[str]:
        """One line per measured stage and the total, for a cascaded turn (empty unless
        the user was recognised before the reply and the reply had audio)."""
        if self.stt is None or self.first_audio is None:
            return []
        stages = [
            ("speech-to-text", self.stt),
            ("LLM first token", self.llm),
            ("LLM first sentence", self.sentence),
            ("TTS first audio", self.tts),
        ]
        lines = [
            f"  {label:<20} +{value * 1000:6.0f} ms" for label, value in stages if value is not None
        ]
        total = self.first_audio * 1000
        lines.append(
            f"  {'time to first audio':<20} {total:7.0f} ms (end of speech to first audio)"
        )
        return lines


@final
class TurnTimer:
    """Collects one turn's milestones; :meth:`result` turns them into stages.

    Feed it events (:meth:`observe`) or call the milestone methods yourself.
    ``clock`` gives seconds (default :func:`time.perf_counter`).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._end: float | None = None
        self._heard: float | None = None
        self._text: float | None = None
        self._sentence: float | None = None
        self._audio: float | None = None
        self._splitter = SentenceSplitter()

    @property
    def started(self) -> bool:
        """True between the end of a user turn and the first audio of its reply."""
        return self._end is not None and self._audio is None

    @property
    def timed(self) -> bool:
        """True once a user turn has ended: the events since belong to its reply."""
        return self._end is not None

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

    def turn_ended(self) -> None:
        """The user's turn ended (VAD end of speech, or a commit): start timing."""
        self._end, self._heard, self._text, self._sentence, self._audio = (
            self._clock(),
            None,
            None,
            None,
            None,
        )
        self._splitter = SentenceSplitter()

    def heard(self) -> None:
        """The user's words were recognised."""
        if self._end is not None and self._heard is None and self._text is None:
            self._heard = self._clock()

    def first_text(self, delta: str = "") -> None:
        """Text (or transcript) of the reply arrived; ``delta`` is that text."""
        if self._end is None:
            return
        now = self._clock()
        if self._text is None:
            self._text = now
        if delta and self._sentence is None and self._splitter.push(delta):
            self._sentence = now

    def first_audio(self) -> None:
        """Audio of the reply arrived."""
        if self._end is not None and self._audio is None:
            self._audio = self._clock()

    def result(self) -> StageLatency | None:
        """The stages of the timed turn, or ``None`` when no turn was timed."""
        end = self._end
        if end is None:
            return None
        heard, text, sentence, audio = self._heard, self._text, self._sentence, self._audio
        if sentence is not None and audio is not None and sentence > audio:
            sentence = None  # the audio did not wait for it
        if heard is not None and audio is not None and heard > audio:
            heard = None  # recognised after the reply began: not a stage before it
        stt = heard - end if heard is not None else None
        llm = text - (heard if heard is not None else end) if text is not None else None
        spoken = sentence if sentence is not None else text
        tts = (
            audio - spoken if audio is not None and spoken is not None and spoken <= audio else None
        )
        first_sentence = sentence - text if sentence is not None and text is not None else None
        total = audio - end if audio is not None else None
        return StageLatency(stt=stt, llm=llm, tts=tts, first_audio=total, sentence=first_sentence)

    def report(self) -> list[str]:
        """The timed turn's stages as lines (:meth:`StageLatency.lines`)."""
        stages = self.result()
        return stages.lines() if stages is not None else []
