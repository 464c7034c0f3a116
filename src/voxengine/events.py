"""The public event vocabulary: everything a provider reports, as frozen dataclasses.

Every provider (OpenAI, Azure, the mock, later Gemini and the pipeline) turns its wire
messages into exactly these classes, so an application written against them works with
any provider. Dispatch on the class (``match event: case AudioDelta(): ...``); the
``type`` class attribute is a stable, human-readable name for logs and for code that
used the older string API.

Times are float seconds; audio is ``bytes`` of PCM16 little-endian mono at the
provider's output rate (see the provider's ``output_format``).

Layout: this module is one table, kept whole on purpose although it passes the size
of the other modules: the event classes, the value types they carry (``Role``,
``ItemKind``, ``ResponseStatus``, ``Usage``, ``ConversationItem``, ``RateLimit``) and
the ``Event`` union: declarations with their docstrings, and no behaviour beyond
``Usage`` addition and the decoders' fast ``AudioDelta`` constructor. Reading the
vocabulary in one place is the point; splitting it would scatter the union's members.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

from voxengine.errors import VoxError

__all__ = [
    "assistant_message_end",
    "AudioDelta",
    "AudioDone",
    "AudioDropped",
    "BaseEvent",
    "ConversationItem",
    "Event",
    "GoAway",
    "InputCleared",
    "InputCommitted",
    "InputTimeout",
    "Interrupted",
    "ItemAdded",
    "ItemDeleted",
    "ItemDone",
    "ItemKind",
    "ItemTruncated",
    "KeyPressed",
    "ProviderErrorEvent",
    "ProviderSwitched",
    "RateLimit",
    "RateLimitsUpdated",
    "Reconnected",
    "Reconnecting",
    "ResponseDone",
    "ResponseStarted",
    "ResponseStatus",
    "ResumptionUpdate",
    "Role",
    "SessionClosed",
    "SessionReady",
    "SessionUpdated",
    "ShutdownCancelled",
    "SpeechStarted",
    "SpeechStopped",
    "StallDetected",
    "TextDelta",
    "TextDone",
    "ToolCall",
    "ToolCallCancelled",
    "ToolCallDelta",
    "TranscriptDelta",
    "TranscriptDone",
    "TranscriptFailed",
    "TranscriptSegment",
    "UndeliveredInput",
    "UnknownEvent",
    "Usage",
]


class Role(enum.Enum):
    """Who produced a piece of conversation."""

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class ItemKind(enum.Enum):
    """What a conversation item holds."""

    MESSAGE = "message"
    FUNCTION_CALL = "function_call"
    FUNCTION_CALL_OUTPUT = "function_call_output"


class ResponseStatus(enum.Enum):
    """How a response ended (or that it is still running)."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    INCOMPLETE = "incomplete"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token usage of one response (or a sum of several, via ``+``).

    ``input_cached_tokens`` is a subset of ``input_tokens``;
    ``input_cached_text_tokens``/``input_cached_audio_tokens`` split it by modality when
    the provider reports the split (both 0 otherwise).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_cached_tokens: int = 0
    input_cached_text_tokens: int = 0
    input_cached_audio_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            input_text_tokens=self.input_text_tokens + other.input_text_tokens,
            input_audio_tokens=self.input_audio_tokens + other.input_audio_tokens,
            input_cached_tokens=self.input_cached_tokens + other.input_cached_tokens,
            input_cached_text_tokens=self.input_cached_text_tokens + other.input_cached_text_tokens,
            input_cached_audio_tokens=self.input_cached_audio_tokens
            + other.input_cached_audio_tokens,
            output_text_tokens=self.output_text_tokens + other.output_text_tokens,
            output_audio_tokens=self.output_audio_tokens + other.output_audio_tokens,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationItem:
    """One entry of the provider-side conversation.

    ``text`` is the text of a message (or the transcript of an audio message, when
    known); ``call_id``/``name``/``arguments`` describe a function call and
    ``call_id``/``output`` a function call output.
    """

    item_id: str
    kind: ItemKind
    role: Role | None = None
    status: str | None = None
    text: str | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    """One rate-limit bucket as reported by the provider."""

    name: str
    limit: int
    remaining: int
    reset_seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseEvent:
    """Base class of all events; subscribe to it to receive every event."""

    type: ClassVar[str] = "event"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionReady(BaseEvent):
    """The session is configured and accepts input."""

    type: ClassVar[str] = "session.ready"
    session_id: str
    model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUpdated(BaseEvent):
    """The provider applied a session update after the session became ready."""

    type: ClassVar[str] = "session.updated"
    session_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionClosed(BaseEvent):
    """The session ended; ``code``/``reason`` come from the close frame when there was one.

    ``error`` is the typed failure that ended it, when it ended because of one (e.g.
    :class:`~voxengine.errors.AuthenticationFailed`, :class:`~voxengine.errors.SessionExpired`,
    or the last :class:`~voxengine.errors.ConnectionClosed` when reconnecting gave up);
    ``None`` after ``disconnect()``. It is not part of equality.
    """

    type: ClassVar[str] = "session.closed"
    code: int | None
    reason: str = ""
    error: VoxError | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted(BaseEvent):
    """Voice activity began in the user's audio (``audio_start`` seconds into the input)."""

    type: ClassVar[str] = "input.speech_started"
    item_id: str | None = None
    audio_start: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStopped(BaseEvent):
    """Voice activity ended in the user's audio (``audio_end`` seconds into the input)."""

    type: ClassVar[str] = "input.speech_stopped"
    item_id: str | None = None
    audio_end: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class InputCommitted(BaseEvent):
    """The buffered user audio became conversation item ``item_id``."""

    type: ClassVar[str] = "input.committed"
    item_id: str
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTimeout(BaseEvent):
    """The user stayed silent past the idle timeout; the provider committed an empty turn."""

    type: ClassVar[str] = "input.timeout"
    item_id: str
    audio_start: float = 0.0
    audio_end: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class InputCleared(BaseEvent):
    """The provider discarded the buffered user audio."""

    type: ClassVar[str] = "input.cleared"


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemAdded(BaseEvent):
    """An item was inserted into the conversation (possibly still in progress)."""

    type: ClassVar[str] = "item.added"
    item: ConversationItem
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemDone(BaseEvent):
    """An item is final."""

    type: ClassVar[str] = "item.done"
    item: ConversationItem
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemTruncated(BaseEvent):
    """The assistant item's audio was cut at ``audio_end`` seconds (what was played)."""

    type: ClassVar[str] = "item.truncated"
    item_id: str
    audio_end: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemDeleted(BaseEvent):
    """The item was removed from the conversation."""

    type: ClassVar[str] = "item.deleted"
    item_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseStarted(BaseEvent):
    """The model started a response."""

    type: ClassVar[str] = "response.started"
    response_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta(BaseEvent):
    """A fragment of the model's text output."""

    type: ClassVar[str] = "response.text.delta"
    response_id: str
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDone(BaseEvent):
    """The model's complete text output for an item."""

    type: ClassVar[str] = "response.text.done"
    response_id: str
    item_id: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioDelta(BaseEvent):
    """A chunk of the model's audio (PCM16 mono at the provider's output rate)."""

    type: ClassVar[str] = "response.audio.delta"
    response_id: str
    item_id: str
    audio: bytes = field(repr=False)


_new_event = object.__new__
_audio_slots: dict[str, Any] = dict(vars(AudioDelta))  # the slots' member descriptors
_set_response_id = _audio_slots["response_id"].__set__
_set_item_id = _audio_slots["item_id"].__set__
_set_audio = _audio_slots["audio"].__set__


def _quick_audio_delta(response_id: str, item_id: str, audio: bytes) -> AudioDelta:
    """``AudioDelta(response_id=..., item_id=..., audio=...)``, built the quick way.

    For decoders on the hot path (one per 20 ms of audio): the same object, its slots
    filled directly instead of through the frozen dataclass's ``__init__`` (which
    checks nothing), about a third of the cost.
    """
    event = _new_event(AudioDelta)
    _set_response_id(event, response_id)
    _set_item_id(event, item_id)
    _set_audio(event, audio)
    return event


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioDone(BaseEvent):
    """The model finished (or stopped) the audio of an item."""

    type: ClassVar[str] = "response.audio.done"
    response_id: str
    item_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptDelta(BaseEvent):
    """A fragment of a transcript: of the model's audio (ASSISTANT) or the user's (USER)."""

    type: ClassVar[str] = "transcript.delta"
    role: Role
    item_id: str
    delta: str
    response_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptDone(BaseEvent):
    """The complete transcript of an item's audio."""

    type: ClassVar[str] = "transcript.done"
    role: Role
    item_id: str
    transcript: str
    response_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptSegment(BaseEvent):
    """A diarized piece of the user's transcript: ``speaker`` said ``text`` (times in s)."""

    type: ClassVar[str] = "transcript.segment"
    item_id: str
    segment_id: str
    text: str
    speaker: str
    start: float
    end: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptFailed(BaseEvent):
    """Transcription of the user's audio in ``item_id`` failed."""

    type: ClassVar[str] = "transcript.failed"
    item_id: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallDelta(BaseEvent):
    """A fragment of the JSON arguments of a function call being generated."""

    type: ClassVar[str] = "tool_call.delta"
    call_id: str
    item_id: str
    response_id: str
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall(BaseEvent):
    """The model asks the application to run function ``name`` with JSON ``arguments``."""

    type: ClassVar[str] = "tool_call"
    call_id: str
    name: str
    arguments: str
    item_id: str = ""
    response_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseDone(BaseEvent):
    """A response ended; ``status`` says how, ``usage`` what it cost in tokens."""

    type: ClassVar[str] = "response.done"
    response_id: str
    status: ResponseStatus
    reason: str | None = None
    usage: Usage | None = None
    output: tuple[ConversationItem, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitsUpdated(BaseEvent):
    """The provider reported its current rate limits."""

    type: ClassVar[str] = "rate_limits.updated"
    limits: tuple[RateLimit, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderErrorEvent(BaseEvent):
    """A recoverable error reported by the provider; the session stays open.

    ``client_event_id`` names the command that failed when the provider says so.
    """

    type: ClassVar[str] = "error"
    code: str | None
    message: str
    error_type: str | None = None
    param: str | None = None
    client_event_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Interrupted(BaseEvent):
    """The assistant was interrupted; ``played`` seconds of ``item_id`` had been heard."""

    type: ClassVar[str] = "interrupted"
    item_id: str | None
    played: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallCancelled(BaseEvent):
    """The provider withdrew function calls (e.g. the user interrupted); don't answer them."""

    type: ClassVar[str] = "tool_call.cancelled"
    call_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAway(BaseEvent):
    """The provider will close the connection in about ``time_left`` seconds."""

    type: ClassVar[str] = "session.go_away"
    time_left: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumptionUpdate(BaseEvent):
    """A new handle to resume this session on a new connection (``None``: not resumable now)."""

    type: ClassVar[str] = "session.resumption_update"
    handle: str | None = field(default=None, repr=False)
    resumable: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnecting(BaseEvent):
    """The connection was lost; attempt ``attempt`` to reconnect starts in ``delay`` seconds."""

    type: ClassVar[str] = "session.reconnecting"
    attempt: int
    delay: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reconnected(BaseEvent):
    """A new connection carries the conversation on.

    ``restored_items`` conversation items were replayed (0 when the provider resumed
    the session by handle), ``skipped_items`` could not be (e.g. user audio without a
    transcript), ``resent_audio`` seconds of user audio and ``resent_commands`` queued
    commands (texts, tool results) were delivered after reconnecting.
    """

    type: ClassVar[str] = "session.reconnected"
    attempt: int
    restored_items: int = 0
    skipped_items: int = 0
    resent_audio: float = 0.0
    resent_commands: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class StallDetected(BaseEvent):
    """The provider sent nothing for ``silent_for`` seconds while a response was expected."""

    type: ClassVar[str] = "session.stall_detected"
    silent_for: float
    response_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioDropped(BaseEvent):
    """Audio was discarded under overload or an outage, and how much: never silent.

    ``direction`` is ``"input"`` (user audio that could not be delivered) or
    ``"output"`` (assistant audio dropped oldest-first because the consumer was slow).
    """

    type: ClassVar[str] = "audio.dropped"
    direction: str
    seconds: float
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UndeliveredInput(BaseEvent):
    """What the application sent that never reached the service, reported before the
    :class:`SessionClosed` of a session that ended (reconnecting gave up, a fatal
    error, or ``disconnect()`` while commands were still queued): never silent.

    ``texts`` are messages the service had not confirmed, ``tool_outputs`` the call
    ids of function outputs it had not confirmed, ``audio_seconds`` the user audio of
    the turn in progress or queued meanwhile, ``other_commands`` any other queued
    command (response requests, session updates, ...).
    """

    type: ClassVar[str] = "input.undelivered"
    texts: tuple[str, ...] = ()
    tool_outputs: tuple[str, ...] = ()
    audio_seconds: float = 0.0
    other_commands: int = 0
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ShutdownCancelled(BaseEvent):
    """``disconnect()`` did not wait for work that was still running: it cancelled it.

    ``tool_calls`` are the call ids of tool functions cancelled, ``handlers`` the
    event types whose (async) handlers were cancelled mid-delivery.
    """

    type: ClassVar[str] = "session.shutdown_cancelled"
    tool_calls: tuple[str, ...] = ()
    handlers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderSwitched(BaseEvent):
    """The engine failed over from provider ``previous`` to ``current``."""

    type: ClassVar[str] = "provider.switched"
    previous: str
    current: str
    reason: str
    restored_items: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyPressed(BaseEvent):
    """The caller pressed a telephone key (DTMF): ``digit`` is one of ``0``-``9``,
    ``*``, ``#`` and ``A``-``D``.

    Not a provider event: a phone call's endpoint (:mod:`voxengine.serve.telephony`)
    emits it on the call's engine, in the order the carrier reported the presses, so
    ``engine.events.on(KeyPressed, handler)`` in a session factory receives them.
    """

    type: ClassVar[str] = "input.key_pressed"
    digit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownEvent(BaseEvent):
    """A server message voxengine does not model; ``raw`` is its JSON text."""

    type: ClassVar[str] = "unknown"
    name: str
    raw: str = field(repr=False)


Event: TypeAlias = (
    SessionReady
    | SessionUpdated
    | SessionClosed
    | SpeechStarted
    | SpeechStopped
    | InputCommitted
    | InputCleared
    | InputTimeout
    | ItemAdded
    | ItemDone
    | ItemTruncated
    | ItemDeleted
    | ResponseStarted
    | TextDelta
    | TextDone
    | AudioDelta
    | AudioDone
    | TranscriptDelta
    | TranscriptDone
    | TranscriptFailed
    | TranscriptSegment
    | ToolCallDelta
    | ToolCall
    | ResponseDone
    | RateLimitsUpdated
    | ProviderErrorEvent
    | Interrupted
    | ToolCallCancelled
    | GoAway
    | ResumptionUpdate
    | Reconnecting
    | Reconnected
    | StallDetected
    | AudioDropped
    | ProviderSwitched
    | UndeliveredInput
    | ShutdownCancelled
    | KeyPressed
    | UnknownEvent
)


def assistant_message_end(
    response_id: str, item_id: str, *, text: str, status: str, transcript: str | None
) -> tuple[list[Event], ConversationItem]:
    """What ends an assistant message item, for providers that assemble one themselves.

    Returns the events, in order — a :class:`TranscriptDone` of ``transcript`` (none
    when it is ``None``: the item had no spoken output), then the :class:`ItemDone` of
    the finished message — and that message (``text``, ``status``).
    """
    message = ConversationItem(
        item_id=item_id, kind=ItemKind.MESSAGE, role=Role.ASSISTANT, status=status, text=text
    )
    events: list[Event] = []
    if transcript is not None:
        events.append(
            TranscriptDone(
                role=Role.ASSISTANT,
                item_id=item_id,
                transcript=transcript,
                response_id=response_id,
            )
        )
    events.append(ItemDone(item=message))
    return events, message
