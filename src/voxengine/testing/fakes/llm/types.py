"""What users script and read back from the fake LLM/STT/TTS server; its error shapes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "FakeLLMConfig",
    "FakeLLMReply",
    "FakeLLMResponder",
    "FakeLLMToolCall",
    "FakeLLMTurn",
    "RecordedRequest",
    "echo_llm_responder",
]


Json = dict[str, Any]
Api = Literal["anthropic", "openai"]

_TOOL_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SPEECH_RATE: Final = 24_000


# --- public value types ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeLLMToolCall:
    """A function call the fake model makes."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeLLMReply:
    """What the fake model answers: text, then calls (either may be empty)."""

    text: str = ""
    tool_calls: tuple[FakeLLMToolCall, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeLLMTurn:
    """What the responder sees of a valid request.

    Attributes:
        api: which API was called. model: the requested model. system: the system
        prompt. user_text: text of the last user message ("" if it holds only tool
        results). tool_results: ``(call_id, output)`` answered in the last turn.
        tool_names: tools offered. message_count: messages in the request.
    """

    api: Api
    model: str
    system: str
    user_text: str
    tool_results: tuple[tuple[str, str], ...]
    tool_names: tuple[str, ...]
    message_count: int


FakeLLMResponder = Callable[[FakeLLMTurn], FakeLLMReply]


def echo_llm_responder(turn: FakeLLMTurn) -> FakeLLMReply:
    """Default replies: echo the user ("You said: ..."), or read out a tool result."""
    if turn.tool_results:
        return FakeLLMReply(text=f"The tool returned {turn.tool_results[-1][1]}. Anything else?")
    return FakeLLMReply(text=f"You said: {turn.user_text}. What else can I do?")


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeLLMConfig:
    """Fake server settings.

    Attributes:
        api_key: the only key accepted by every endpoint.
        responder: produces the model's replies.
        chunk_delay: seconds between streamed events/chunks (0: as fast as possible).
        transcript: what the transcription endpoint hears in any audio.
        speech_seconds_per_word: length of the speech endpoint's audio per word.
    """

    api_key: str = field(default="test-key", repr=False)
    responder: FakeLLMResponder = echo_llm_responder
    chunk_delay: float = 0.0
    transcript: str = "what time is it"
    speech_seconds_per_word: float = 0.3


@dataclass(slots=True, kw_only=True)
class RecordedRequest:
    """One request as received, and how it ended.

    ``body`` is the parsed JSON (or, for multipart, the form fields with the file's
    size); ``status`` the HTTP status sent; ``completed`` False when the client went
    away before the response ended (e.g. a cancelled stream).
    """

    path: str
    headers: Mapping[str, str]
    body: Any
    status: int | None = None
    completed: bool = False


class _Refusal(Exception):
    def __init__(self, status: int, error_type: str, message: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.param = param


def _error_body(api: Api, refusal: _Refusal) -> Json:
    if api == "anthropic":
        return {"type": "error", "error": {"type": refusal.error_type, "message": refusal.message}}
    code = refusal.error_type if refusal.error_type != "invalid_request_error" else None
    if refusal.status == 401:
        code = "invalid_api_key"
    kind = "invalid_request_error" if refusal.status < 500 else "server_error"
    return {
        "error": {"message": refusal.message, "type": kind, "param": refusal.param, "code": code}
    }


def _pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text) or ([text] if text else [])


def _json_fragments(arguments: str, size: int = 12) -> list[str]:
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def _words(value: object) -> int:
    return len(json.dumps(value).split()) if value else 0
