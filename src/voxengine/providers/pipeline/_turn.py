"""The pipeline's user turn: buffered audio, end of turn and early transcription.

:class:`TurnInput` holds the audio of the user's turn in progress. With a VAD
(``SERVER_VAD``) it ends turns by itself and emits ``SpeechStarted`` /
``SpeechStopped``; without one the caller ends them (:meth:`TurnInput.commit`). A
finished turn goes to the provider's ``on_turn`` callback with its audio and, when one
ran, the early transcription that covers it; the provider records and transcribes it
in order. It owns no conversation state.

Speech-to-text runs one call at a time (:meth:`TurnInput.transcribe`), early and
regular transcriptions alike.

With a ``speculate`` callback, an early transcript that is in before the turn ends
starts the turn's reply at once (:mod:`.speculation`); the turn hands it to
``on_turn`` when it ends where that reply expected, and discards it otherwise (voice
resumed, the input was committed or cleared by hand, the session closed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final, final

from voxengine.audio.format import PCM16_16K
from voxengine.audio.vad import VAD, SpeechAudio, SpeechEnd, SpeechStart
from voxengine.config import TurnDetectionConfig
from voxengine.events import Event, InputCleared, ProviderErrorEvent, SpeechStarted, SpeechStopped

from .speculation import Speculation
from .stages import SpeechToText, Transcript

__all__ = [
    "EARLY_TRANSCRIPTION",
    "EARLY_TRANSCRIPTION_AFTER",
    "MAX_TURN_SECONDS",
    "Speculate",
    "TurnEnded",
    "TurnInput",
]

#: Longest user turn buffered, in seconds; older audio is dropped (manual turns).
MAX_TURN_SECONDS: Final = 300.0
#: Seconds of end-of-turn silence after which the turn's audio is transcribed early
#: (and, with speculative replies, answered), while the VAD still waits for the rest of
#: the silence: the default of ``PipelineConfig.early_transcription``.
EARLY_TRANSCRIPTION_AFTER: Final = 0.1
#: Superseded by :data:`EARLY_TRANSCRIPTION_AFTER`: the share of ``silence_duration``
#: after which turns were transcribed early before (0.2 s of the default 0.5 s). Kept
#: importable; the pipeline no longer reads it.
EARLY_TRANSCRIPTION: Final = 0.4

#: ``on_turn(item_id, pcm, respond, early, speculation)``: a turn ended; ``respond`` says
#: whether a reply follows its transcript, ``early`` is the transcription already running
#: for it and ``speculation`` the reply already started for it (the receiver discards it
#: when it does not use it).
TurnEnded = Callable[
    [str, bytes, bool, "asyncio.Task[Transcript] | None", "Speculation | None"], None
]
#: ``speculate(until, text)``: start the reply to early transcript ``text`` of a turn
#: whose voice ended at ``until``, or return None when none can start now.
Speculate = Callable[[float, str], "Speculation | None"]


@final
class TurnInput:
    """The user's turn in progress (see the module docstring).

    Args:
        stt: the speech-to-text stage.
        emit: where speech events go.
        new_id: makes an item id from a prefix.
        on_speech: called with ``interrupt_response`` when the VAD hears speech begin
            (the provider cancels a running reply and reads the prompt meanwhile).
        on_turn: called when a turn ends (see :data:`TurnEnded`).
        speculate: starts a reply to an early transcript (see :data:`Speculate`);
            None: replies start when turns end.
        early_after: seconds of trailing silence (as the VAD counts it) after which
            the turn is transcribed early; none is when it is not shorter than the
            end-of-turn silence.
    """

    def __init__(
        self,
        stt: SpeechToText,
        *,
        emit: Callable[[Event], None],
        new_id: Callable[[str], str],
        on_speech: Callable[[bool], None],
        on_turn: TurnEnded,
        speculate: Speculate | None = None,
        early_after: float = EARLY_TRANSCRIPTION_AFTER,
    ) -> None:
        self._stt = stt
        self._early_after = early_after
        self._emit = emit
        self._new_id = new_id
        self._on_speech = on_speech
        self._on_turn = on_turn
        self._speculate = speculate
        self._speculation: Speculation | None = None  # the reply to the early transcript
        self._lock = asyncio.Lock()
        self._early: tuple[float, asyncio.Task[Transcript]] | None = None
        self._vad: VAD | None = None
        self._buffer = bytearray()
        self._speech_item: str | None = None

    def use_vad(self, vad: VAD | None) -> None:
        """Have ``vad`` end turns (None: the caller does); the buffered audio stays."""
        self._vad = vad
        self._speech_item = None

    async def aclose(self) -> None:
        """Cancel an early transcription and wait for it to end; discard a speculation."""
        task = self.drop_early()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def transcribe(self, pcm: bytes) -> Transcript:
        """Speech-to-text of ``pcm`` (PCM16 16 kHz), one call at a time."""
        async with self._lock:
            return await self._stt.transcribe(pcm, PCM16_16K.sample_rate)

    def take(self, data: bytes, turns: TurnDetectionConfig) -> None:
        """User audio (PCM16 mono, 16 kHz); with a VAD, turns end by themselves."""
        if not data:
            return
        if self._vad is None:
            self._append(data)
            return
        for result in self._vad.process(data):
            match result:
                case SpeechStart(audio=pre, start=start):
                    self._speech_item = self._new_id("item")
                    self._buffer = bytearray(pre)
                    self._emit(SpeechStarted(item_id=self._speech_item, audio_start=start))
                    self._on_speech(turns.interrupt_response)
                case SpeechAudio(audio=chunk):
                    self._append(chunk)
                case SpeechEnd(end=end):
                    item_id = self._speech_item or self._new_id("item")
                    self._speech_item = None
                    self._emit(SpeechStopped(item_id=item_id, audio_end=end))
                    speculation = self._take_speculation(end)
                    early = self.drop_early(keep_for=end)
                    self._on_turn(
                        item_id, self._take_buffer(), turns.create_response, early, speculation
                    )
        self._transcribe_early(turns)

    def commit(self) -> None:
        """End the user's turn now; its audio goes to ``on_turn`` with no reply.

        An empty buffer gives a ``ProviderErrorEvent`` (code
        ``input_audio_buffer_commit_empty``), as the realtime APIs do.
        """
        if self._vad is not None:
            self._vad.reset()
        self.drop_early(keep_for=-1.0)
        item_id = self._speech_item or self._new_id("item")
        self._speech_item = None
        if not self._buffer:
            self._emit(
                ProviderErrorEvent(
                    code="input_audio_buffer_commit_empty",
                    message="cannot commit: no audio was buffered",
                    error_type="invalid_request_error",
                )
            )
            return
        self._on_turn(item_id, self._take_buffer(), False, None, None)

    def clear(self) -> None:
        """Discard the buffered user audio (and any speech in progress)."""
        self._buffer.clear()
        self._speech_item = None
        if self._vad is not None:
            self._vad.reset()
        self.drop_early(keep_for=-1.0)
        self._emit(InputCleared())

    def drop_early(self, keep_for: float | None = None) -> asyncio.Task[Transcript] | None:
        """Forget the early transcription.

        With ``keep_for``: return it if it covers speech ending at ``keep_for`` (the
        turn that just ended), else cancel it and return None. Without: cancel it and
        return it (to be awaited), or None when none ran. Either way a speculation
        still pending is discarded: its turn did not end (or ended elsewhere).
        """
        early, self._early = self._early, None
        if self._speculation is not None:
            self._speculation.discard()
            self._speculation = None
        if early is None:
            return None
        until, task = early
        if keep_for is not None and until == keep_for:
            return task
        task.cancel()
        return None if keep_for is not None else task

    def _transcribe_early(self, turns: TurnDetectionConfig) -> None:
        """Start transcribing the turn once part of the end-of-turn silence has passed.

        The VAD waits ``silence_duration`` before it ends the turn; the words are all in
        the buffer well before that, so speech-to-text starts after ``early_after``
        seconds of it and the transcript is ready when the turn ends. If the user speaks
        again (a pause mid-sentence), the early result is dropped. It only starts
        when speech-to-text is idle, so a dropped one never delays a real one by more
        than its own run. When it is in before the turn ends, the reply starts too
        (:meth:`_start_speculation`); voice resuming drops that reply at once.
        """
        vad = self._vad
        silence = getattr(vad, "trailing_silence", None)
        until = getattr(vad, "voiced_until", None)
        if self._speculation is not None and until != self._speculation.until:
            self._speculation.discard()  # the user speaks again: not the turn's end
            self._speculation = None
        if vad is None or not vad.in_speech or silence is None or until is None:
            return
        if silence < self._early_after or self._lock.locked():
            return
        if self._early is not None and self._early[0] == until:
            return  # already under way for this audio
        self.drop_early()  # speech resumed since that one began: it is stale
        pcm = bytes(self._buffer)
        task = asyncio.create_task(self.transcribe(pcm), name="voxengine-pipeline-early-stt")
        task.add_done_callback(_consume)  # a failure is reported by the turn that awaits it
        if turns.create_response and self._speculate is not None:
            task.add_done_callback(lambda done: self._start_speculation(until, done))
        self._early = (until, task)

    def _start_speculation(self, until: float, early: asyncio.Task[Transcript]) -> None:
        """The early transcript is in and the turn has not ended: have its reply start
        now (``speculate`` declines when something else is under way)."""
        if (
            self._speculate is None
            or self._early is None
            or self._early[1] is not early
            or early.cancelled()
            or early.exception() is not None
            or not early.result().text
            or self._speculation is not None
        ):
            return
        self._speculation = self._speculate(until, early.result().text)

    def _take_speculation(self, end: float) -> Speculation | None:
        """The speculative reply made for a turn ending at ``end``, if any (another one
        is discarded)."""
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation.until == end:
            return speculation
        if speculation is not None:
            speculation.discard()
        return None

    def _append(self, data: bytes) -> None:
        self._buffer += data
        excess = len(self._buffer) - PCM16_16K.bytes_for(MAX_TURN_SECONDS)
        if excess > 0:
            del self._buffer[:excess]

    def _take_buffer(self) -> bytes:
        pcm = bytes(self._buffer)
        self._buffer.clear()
        return pcm


def _consume(task: asyncio.Task[Transcript]) -> None:
    """Retrieve an early transcription's outcome, so one that fails and is dropped (or
    never awaited, at disconnect) logs no "exception was never retrieved"."""
    if not task.cancelled():
        task.exception()
