"""Outbound intents: what an application asks a provider to do.

A protocol turns each command into its wire messages; the same commands drive every
provider: :meth:`voxengine.providers.BaseProvider.send` is the one path from the engine
to a provider, and its friendly methods (``send_text``, ``send_audio``, ...) only build
commands. Audio is PCM16 mono ``bytes`` at the provider's input rate.

User data is checked once, here, where it enters: the constructors refuse malformed
text and audio with a typed error (:class:`~voxengine.errors.TextError`,
:class:`~voxengine.errors.AudioError`) before anything is sent; nothing downstream
checks it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from voxengine.audio.format import PCM16_24K
from voxengine.audio.pcm16 import validate_pcm16
from voxengine.config import Modality, SessionConfig
from voxengine.errors import TextError
from voxengine.events import ConversationItem, Role

__all__ = [
    "MAX_TEXT_CHARS",
    "CancelResponse",
    "ClearAudio",
    "Command",
    "CommitAudio",
    "CreateResponse",
    "DeleteItem",
    "RestoreItem",
    "SendAudio",
    "SendAudioMessage",
    "SendText",
    "SendToolResult",
    "TruncateItem",
    "UpdateSession",
    "validate_text",
]

#: Longest text, in characters, one message or tool output may carry. The largest
#: context of any supported realtime model is about 131 072 tokens (Gemini Live 3.1;
#: OpenAI gpt-realtime-2: 128 000; gpt-realtime: 32 000 — see the protocol notes,
#: §11 / §7) and English averages about four characters per token, so a longer text
#: could never be taken in whole by any of them; it is refused before anything is
#: sent instead of being cut or rejected by the service later.
MAX_TEXT_CHARS = 524_288


def validate_text(text: object, what: str = "text", *, allow_empty: bool = False) -> str:
    """``text`` if it can be sent as one message; the check every text entry point runs.

    Raises:
        TextError: not a ``str``; empty (unless ``allow_empty``); contains a lone
            surrogate (it cannot be encoded as UTF-8, so no JSON frame can carry it);
            longer than :data:`MAX_TEXT_CHARS`.
    """
    if not isinstance(text, str):
        raise TextError(f"{what} must be a str, got {type(text).__name__}")
    if not text and not allow_empty:
        raise TextError(f"{what} must be a non-empty string")
    if len(text) > MAX_TEXT_CHARS:
        raise TextError(
            f"{what} is {len(text)} characters; the limit is {MAX_TEXT_CHARS} "
            "(more than any supported model's context); split it or shorten it"
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        char = text[exc.start]
        raise TextError(
            f"{what} is not valid Unicode: lone surrogate U+{ord(char):04X} at index "
            f"{exc.start} (fix the decoding that produced it); nothing was sent"
        ) from None
    return text


def _set_pcm(command: SendAudio | SendAudioMessage, audio: object) -> None:
    """Check ``audio`` is mono PCM16 and store it as ``bytes`` (frozen dataclass)."""
    data = validate_pcm16(audio, _MONO)
    if data is not audio:
        object.__setattr__(command, "audio", data)


#: Any mono PCM16 format: the frame check does not depend on the rate.
_MONO = PCM16_24K


@dataclass(frozen=True, slots=True, kw_only=True)
class SendAudio:
    """Append user audio to the provider's input buffer.

    ``audio`` may be ``bytes``, ``bytearray`` or ``memoryview`` (kept as ``bytes``).

    Raises:
        AudioError: not bytes-like, an odd byte count, or a WAV file's header.
    """

    audio: bytes = field(repr=False)

    def __post_init__(self) -> None:
        audio = self.audio
        if type(audio) is bytes and not len(audio) & 1 and audio[:4] != b"RIFF":
            return  # the hot path: whole PCM16 frames, no WAV header (what _set_pcm checks)
        _set_pcm(self, audio)


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitAudio:
    """Turn the buffered user audio into a user turn (manual turn taking)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClearAudio:
    """Discard the buffered user audio."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendText:
    """Add a text message to the conversation (does not by itself ask for a reply).

    ``item_id`` names the new item (so it can be deleted later); ``None`` lets the
    provider choose.
    """

    text: str
    role: Role = Role.USER
    item_id: str | None = None

    def __post_init__(self) -> None:
        validate_text(self.text)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendAudioMessage:
    """Add a whole recorded user utterance as one message, bypassing the input buffer.

    Unlike :class:`SendAudio`, this never interacts with voice activity detection.
    """

    audio: bytes = field(repr=False)
    item_id: str | None = None

    def __post_init__(self) -> None:
        _set_pcm(self, self.audio)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendToolResult:
    """Return the output of function call ``call_id`` to the model."""

    call_id: str
    output: str

    def __post_init__(self) -> None:
        validate_text(self.output, "tool output", allow_empty=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateResponse:
    """Ask the model to respond; fields override the session for this response only."""

    modalities: tuple[Modality, ...] | None = None
    instructions: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelResponse:
    """Stop the response in progress (``response_id`` ``None`` = the active one)."""

    response_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TruncateItem:
    """Cut assistant item ``item_id`` at ``audio_end`` seconds: what the user heard."""

    item_id: str
    audio_end: float
    content_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteItem:
    """Remove ``item_id`` from the conversation."""

    item_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreItem:
    """Put an item of an earlier connection back into the conversation (after a reconnect).

    Messages are restored as text (audio cannot be recreated); function calls and
    their outputs keep their call ids.
    """

    item: ConversationItem


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateSession:
    """Change session settings; ``None`` fields of ``config`` are left as they are."""

    config: SessionConfig


Command: TypeAlias = (
    SendAudio
    | CommitAudio
    | ClearAudio
    | SendText
    | SendAudioMessage
    | SendToolResult
    | CreateResponse
    | CancelResponse
    | TruncateItem
    | DeleteItem
    | UpdateSession
    | RestoreItem
)
