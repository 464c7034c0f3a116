"""The two turns a Gemini Live connection reports: the model's and the user's.

:class:`ModelTurn` assembles the model turn in progress (gemini-live.md §4.1) into
voxengine events under synthetic, stable ids (``<prefix>-resp-N``, ``<prefix>-item-N``):
``ResponseStarted`` at its first content, audio/text/transcript deltas, ``AudioDone`` /
``TextDone`` at ``generationComplete``, ``TranscriptDone`` / ``ItemDone`` /
``ResponseDone`` when it ends. A turn the client discarded (there is no cancel message,
§5) keeps running on the server; its deltas are dropped here.

:class:`UserTurn` reports what the server reveals of the user's turn: input
transcription (``<prefix>-user-N``) and voice activity (§5).

Both are sans-I/O and own no connection state; :mod:`.protocol` drives them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, final

from voxengine.config import Modality
from voxengine.events import (
    AudioDelta,
    AudioDone,
    ConversationItem,
    Event,
    ItemAdded,
    ItemKind,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    ToolCall,
    TranscriptDelta,
    TranscriptDone,
    Usage,
    assistant_message_end,
)
from voxengine.protocols.gemini._decode import (
    AudioPart,
    FunctionCall,
    TextPart,
    get,
    parse_duration,
    parse_parts,
)

__all__ = ["ModelTurn", "UserTurn"]


@final
class ModelTurn:
    """The model turn in progress (see the module docstring).

    Args:
        ids: prefix of the synthetic ids.
        modality: what the session answers with (an audio turn always gets a
            ``TranscriptDone``, even an empty one).
        emit: where events go.
        on_start: called when a new turn starts (the user's turn is over, and any
            answer the client asked for has begun).
    """

    def __init__(
        self,
        ids: str,
        modality: Modality,
        *,
        emit: Callable[[Event], None],
        on_start: Callable[[], None],
    ) -> None:
        self._ids = ids
        self._modality = modality
        self._emit = emit
        self._on_start = on_start
        self._responses = 0
        self._response_id: str | None = None
        self._item_id: str | None = None
        self._item_audio = False
        self._audio_done = False
        self._text: list[str] = []
        self._transcript: list[str] = []
        self._output: list[ConversationItem] = []
        self._discarding = False
        #: The latest ``usageMetadata`` of this turn (§4.2).
        self.usage: Usage | None = None
        #: The client interrupted this turn itself (a ``clientContent`` or an
        #: ``activityStart`` while it streamed), so ``interrupted`` is no barge-in.
        self.client_interrupted = False

    @property
    def response_id(self) -> str | None:
        """The synthetic id of the turn in progress, if any."""
        return self._response_id

    def start(self) -> str:
        """The response id of the turn in progress, starting one if none is."""
        if self._response_id is None:
            self._responses += 1
            self._response_id = f"{self._ids}-resp-{self._responses}"
            self._on_start()
            self._emit(ResponseStarted(response_id=self._response_id))
        return self._response_id

    def discard(self) -> str | None:
        """Drop the rest of the turn's audio, text and transcript; its response id."""
        if self._response_id is None:
            return None
        self._discarding = True
        return self._response_id

    def add_parts(self, model_turn: Mapping[str, Any]) -> None:
        """``serverContent.modelTurn``: audio and text parts."""
        for part in parse_parts(model_turn):
            response_id, item_id = self._start_item()
            if isinstance(part, AudioPart):
                self._item_audio = True
                if not self._discarding:
                    self._emit(
                        AudioDelta(response_id=response_id, item_id=item_id, audio=part.audio)
                    )
            elif isinstance(part, TextPart):
                self._text.append(part.text)
                if not self._discarding:
                    self._emit(TextDelta(response_id=response_id, item_id=item_id, delta=part.text))
            else:
                self._emit(
                    ProviderErrorEvent(
                        code="malformed_audio",
                        message="server sent inline audio that is not base64 PCM16; dropped",
                        error_type="protocol_violation",
                    )
                )

    def add_transcript(self, text: str) -> None:
        """``serverContent.outputTranscription``: words of the spoken answer."""
        response_id, item_id = self._start_item()
        self._transcript.append(text)
        if not self._discarding:
            self._emit(
                TranscriptDelta(
                    role=Role.ASSISTANT, item_id=item_id, delta=text, response_id=response_id
                )
            )

    def add_calls(self, calls: Sequence[FunctionCall]) -> None:
        """``toolCall`` (§6): one ``ToolCall`` event and output item per call."""
        response_id = self.start()
        for call in calls:
            item_id = f"{self._ids}-call-{call.call_id}"
            self._output.append(
                ConversationItem(
                    item_id=item_id,
                    kind=ItemKind.FUNCTION_CALL,
                    role=None,
                    status="completed",
                    call_id=call.call_id,
                    name=call.name,
                    arguments=call.arguments,
                )
            )
            self._emit(
                ToolCall(
                    call_id=call.call_id,
                    name=call.name,
                    arguments=call.arguments,
                    item_id=item_id,
                    response_id=response_id,
                )
            )

    def end_generation(self) -> None:
        """``generationComplete`` (§4.1): the audio/text of the item is complete."""
        if self._item_id is None or self._audio_done:
            return
        assert self._response_id is not None
        self._audio_done = True
        if self._item_audio:
            self._emit(AudioDone(response_id=self._response_id, item_id=self._item_id))
        if self._text:
            self._emit(
                TextDone(
                    response_id=self._response_id, item_id=self._item_id, text="".join(self._text)
                )
            )

    def end(self, status: ResponseStatus, reason: str | None) -> None:
        """End the turn in progress (if any) with ``ResponseDone(status, reason)``; a
        discarded turn that completed reports CANCELLED (``client_interrupted``)."""
        if self._response_id is None:
            return
        if self._discarding and status is ResponseStatus.COMPLETED:
            status, reason = ResponseStatus.CANCELLED, "client_interrupted"
        self._end_item("completed" if status is ResponseStatus.COMPLETED else "incomplete")
        self._emit(
            ResponseDone(
                response_id=self._response_id,
                status=status,
                reason=reason,
                usage=self.usage,
                output=tuple(self._output),
            )
        )
        self._response_id = None
        self._output = []
        self.usage = None
        self._discarding = False
        self.client_interrupted = False

    def _start_item(self) -> tuple[str, str]:
        response_id = self.start()
        if self._item_id is None:
            self._item_id = response_id.replace("resp", "item", 1)
            self._emit(
                ItemAdded(
                    item=ConversationItem(
                        item_id=self._item_id,
                        kind=ItemKind.MESSAGE,
                        role=Role.ASSISTANT,
                        status="in_progress",
                    )
                )
            )
        return response_id, self._item_id

    def _end_item(self, status: str) -> None:
        self.end_generation()
        if self._item_id is None:
            return
        assert self._response_id is not None
        transcript = "".join(self._transcript)
        spoken = self._transcript or (self._item_audio and self._modality is Modality.AUDIO)
        events, item = assistant_message_end(
            self._response_id,
            self._item_id,
            text=transcript or "".join(self._text),
            status=status,
            transcript=transcript if spoken else None,
        )
        self._output.insert(0, item)
        for event in events:
            self._emit(event)
        self._item_id = None
        self._item_audio = False
        self._audio_done = False
        self._text = []
        self._transcript = []


@final
class UserTurn:
    """The user's turn as transcription and voice activity reveal it (§5).

    Args:
        ids: prefix of the synthetic ids.
        emit: where events go.
    """

    def __init__(self, ids: str, *, emit: Callable[[Event], None]) -> None:
        self._ids = ids
        self._emit = emit
        self._users = 0
        self._item_id: str | None = None
        self._text: list[str] = []
        #: Between a reported start of speech and its end (or the model's answer).
        self.speech_active = False

    def item_id(self) -> str:
        """The id of the user's turn in progress, starting one if none is."""
        if self._item_id is None:
            self._users += 1
            self._item_id = f"{self._ids}-user-{self._users}"
        return self._item_id

    def add_transcription(self, body: Mapping[str, Any]) -> None:
        """``serverContent.inputTranscription``: words of the user's turn."""
        text = get(body, "text")
        if isinstance(text, str) and text:
            item_id = self.item_id()
            self._text.append(text)
            self._emit(TranscriptDelta(role=Role.USER, item_id=item_id, delta=text))
        if get(body, "finished") is True:
            self.finish()

    def finish(self) -> None:
        """The turn's transcript is complete (``TranscriptDone`` if it had words)."""
        if self._item_id is not None and self._text:
            self._emit(
                TranscriptDone(
                    role=Role.USER, item_id=self._item_id, transcript="".join(self._text)
                )
            )
        if self._text:
            self._item_id = None
            self._text = []

    def voice_activity(self, body: Mapping[str, Any]) -> None:
        """``voiceActivity``: the server's VAD saw speech start or end."""
        kind = get(body, "type") or get(body, "voiceActivityType")
        offset = parse_duration(get(body, "audioOffset")) or 0.0
        if kind == "ACTIVITY_START":
            self.speech_started(offset)
        elif kind == "ACTIVITY_END":
            self.speech_stopped(offset)

    def vad_signal(self, body: Mapping[str, Any]) -> None:
        """``voiceActivityDetectionSignal``: start (SOS) or end (EOS) of speech."""
        kind = get(body, "vadSignalType")
        if kind == "VAD_SIGNAL_TYPE_SOS":
            self.speech_started(0.0)
        elif kind == "VAD_SIGNAL_TYPE_EOS":
            self.speech_stopped(0.0)

    def speech_started(self, at: float) -> None:
        """Speech began ``at`` seconds into the input (reported once per turn)."""
        if not self.speech_active:
            self.speech_active = True
            self._emit(SpeechStarted(item_id=self.item_id(), audio_start=at))

    def speech_stopped(self, at: float) -> None:
        """Speech ended ``at`` seconds into the input."""
        self.speech_active = False
        self._emit(SpeechStopped(item_id=self.item_id(), audio_end=at))
