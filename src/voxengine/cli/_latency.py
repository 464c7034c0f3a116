"""Per-stage latency of one turn, from the engine's events (any provider).

The milestones after the end of the user's turn (``SpeechStopped`` or the commit)
are: the user's words recognised (``TranscriptDone`` of the user), the first text of
the reply, and the first audio of the reply. The stages are the gaps between them:
speech recognition (end of turn to transcript), the language model (transcript, or
end of turn, to first text) and speech synthesis (first text to first audio); the
total is end of turn to first audio. A cascaded pipeline produces them in that order;
a speech-to-speech service may transcribe the user after it starts answering, in
which case the stage it cannot split is ``None`` and only the total is shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import final

__all__ = ["StageLatency", "TurnTimer"]


@dataclass(frozen=True, slots=True)
class StageLatency:
    """Seconds per stage of one turn (``None``: not measured or not separable)."""

    stt: float | None
    llm: float | None
    tts: float | None
    first_audio: float | None

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
    """Collects one turn's milestones; :meth:`result` turns them into stages."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._end: float | None = None
        self._heard: float | None = None
        self._text: float | None = None
        self._audio: float | None = None

    @property
    def started(self) -> bool:
        """True between the end of a user turn and the first audio of its reply."""
        return self._end is not None and self._audio is None

    def turn_ended(self) -> None:
        """The user's turn ended (VAD end of speech, or a commit): start timing."""
        self._end, self._heard, self._text, self._audio = self._clock(), None, None, None

    def heard(self) -> None:
        """The user's words were recognised."""
        if self._end is not None and self._heard is None and self._text is None:
            self._heard = self._clock()

    def first_text(self) -> None:
        """Text (or transcript) of the reply arrived."""
        if self._end is not None and self._text is None:
            self._text = self._clock()

    def first_audio(self) -> None:
        """Audio of the reply arrived."""
        if self._end is not None and self._audio is None:
            self._audio = self._clock()

    def result(self) -> StageLatency | None:
        """The stages of the timed turn, or ``None`` when no turn was timed."""
        end = self._end
        if end is None:
            return None
        heard, text, audio = self._heard, self._text, self._audio
        stt = heard - end if heard is not None else None
        llm = text - (heard if heard is not None else end) if text is not None else None
        tts = audio - text if audio is not None and text is not None and text <= audio else None
        total = audio - end if audio is not None else None
        return StageLatency(stt=stt, llm=llm, tts=tts, first_audio=total)
