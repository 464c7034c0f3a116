"""The three stage interfaces of a cascaded pipeline and the values they exchange.

A pipeline turns the user's speech into text (:class:`SpeechToText`), asks a
:class:`LanguageModel` for a reply, and speaks the reply (:class:`TextToSpeech`).
Each stage is a :class:`typing.Protocol`: any object with these methods works, no
base class needed.

Lifecycle contract (all stages): :meth:`Stage.open` is called once when the provider
connects (load models, create HTTP clients; it may be a no-op) and :meth:`Stage.aclose`
when it disconnects; ``aclose`` is idempotent. The provider calls a stage's work
method (``transcribe``/``stream``/``synthesize``) one at a time, never concurrently on
one instance.

Failure contract: stages raise :class:`~voxengine.errors.VoxError` subclasses
(``AuthenticationFailed``, ``RateLimited``, ``ProviderError``, ``ConnectFailed``,
``AudioError``, ``ConfigError``) for failures they understand. The provider turns any
exception from a stage into a :class:`~voxengine.events.ProviderErrorEvent` (or
``TranscriptFailed``) and keeps the session open.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeAlias, runtime_checkable

from voxengine.config import ToolSpec
from voxengine.events import Role, Usage

__all__ = [
    "ChatMessage",
    "FinishChunk",
    "GenerationSettings",
    "LLMChunk",
    "LanguageModel",
    "PromptCache",
    "SpeechToText",
    "Stage",
    "TextChunk",
    "TextToSpeech",
    "ToolArgumentsChunk",
    "ToolCallChunk",
    "ToolCallRequest",
    "Transcript",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript:
    """What a :class:`SpeechToText` heard: ``text`` (may be empty) and a confidence in
    ``[0, 1]`` when the recogniser reports one."""

    text: str
    confidence: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallRequest:
    """A function call the model made: ``arguments`` is the JSON text of its arguments."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMessage:
    """One message of the conversation as sent to a :class:`LanguageModel`.

    ``role`` is SYSTEM, USER, ASSISTANT or TOOL. An ASSISTANT message may carry
    ``tool_calls`` (and empty ``text``); a TOOL message carries the output of call
    ``tool_call_id`` in ``text``.
    """

    role: Role
    text: str = ""
    tool_calls: tuple[ToolCallRequest, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerationSettings:
    """Per-response options from the session: ``tool_choice`` is ``"auto"``, ``"none"``,
    ``"required"`` or a tool name; ``None`` fields mean "the model's default"."""

    temperature: float | None = None
    max_output_tokens: int | None = None
    tool_choice: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TextChunk:
    """A fragment of the reply text."""

    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolArgumentsChunk:
    """A fragment of the JSON arguments of call ``call_id`` while it is generated."""

    call_id: str
    name: str
    delta: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCallChunk:
    """A complete function call (after its argument fragments, if any were streamed)."""

    call: ToolCallRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class FinishChunk:
    """The last chunk of a reply: why it stopped and what it cost, when known."""

    stop_reason: str | None = None
    usage: Usage | None = field(default=None)


LLMChunk: TypeAlias = TextChunk | ToolArgumentsChunk | ToolCallChunk | FinishChunk
"""What :meth:`LanguageModel.stream` yields."""


class Stage(Protocol):
    """What every stage has: a human-readable label and a lifecycle."""

    @property
    def label(self) -> str:
        """Which engine/model this is, e.g. ``"pocketsphinx en-us"`` (never a secret)."""
        ...

    async def open(self) -> None:
        """Prepare for use (load a model, create an HTTP client). Called on connect."""
        ...

    async def aclose(self) -> None:
        """Release resources. Idempotent; the stage may be opened again afterwards."""
        ...


class SpeechToText(Stage, Protocol):
    """Transcribes one finished user utterance."""

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        """Transcribe PCM16 mono ``pcm`` sampled at ``sample_rate`` Hz."""
        ...


class LanguageModel(Stage, Protocol):
    """Streams a reply to a conversation.

    Contract for :meth:`stream`: yields any number of :class:`TextChunk`,
    :class:`ToolArgumentsChunk` and :class:`ToolCallChunk` (each call's argument
    fragments before its :class:`ToolCallChunk`), then exactly one
    :class:`FinishChunk`, last. The consumer may stop early (``aclose`` on the
    iterator), which must release the request promptly.
    """

    def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings,
    ) -> AsyncIterator[LLMChunk]:
        """Reply to ``messages`` (system messages included), offering ``tools``."""
        ...


@runtime_checkable
class PromptCache(Protocol):
    """Optional for a :class:`LanguageModel` that keeps a prompt cache (a local model).

    The pipeline calls :meth:`prefill` when the conversation so far is known but the
    next reply is not asked for yet (after connecting, after a reply, when the user
    starts speaking), so the reply's prompt is evaluated ahead of time and only the
    new user turn is left to read when the reply is asked for.
    """

    async def prefill(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate the prompt of ``messages`` (system messages included) as the
        beginning of the next reply's prompt. Must not fail: a cache miss only costs
        time."""
        ...


class TextToSpeech(Stage, Protocol):
    """Speaks text as PCM16 mono at :attr:`sample_rate`."""

    @property
    def sample_rate(self) -> int:
        """Rate of the audio :meth:`synthesize` yields, in Hz."""
        ...

    def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield the speech for ``text`` in chunks of whole PCM16 samples as they are
        ready. The consumer may stop early (``aclose``), which must stop synthesis."""
        ...
