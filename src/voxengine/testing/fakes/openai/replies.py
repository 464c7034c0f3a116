"""What the fake assistant says: the responder and its value types (shared with the Gemini fake)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .wire import Json

# --- public value types --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeToolCall:
    """A function call the fake assistant makes; ``arguments`` is JSON text (§7)."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeReply:
    """What the fake assistant answers: optional text (spoken or written) and tool calls."""

    text: str = ""
    tool_calls: tuple[FakeToolCall, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeTurn:
    """What a responder sees when a response is created.

    Attributes:
        kind: ``"text"`` (last input is a user text message), ``"audio"`` (a user
            audio message) or ``"tool_output"`` (a ``function_call_output`` item).
        text: the user text, the audio transcript (``""`` when there is none) or the
            tool output string.
        audio_seconds: duration of the user audio (0.0 for other kinds).
        history: the conversation items the response reads (wire dicts, audio bytes
            omitted), oldest first.
    """

    kind: Literal["text", "audio", "tool_output"]
    text: str
    audio_seconds: float
    history: tuple[Json, ...]


Responder = Callable[[FakeTurn], FakeReply]
"""Turns a :class:`FakeTurn` into a :class:`FakeReply`; called once per response."""


def default_responder(turn: FakeTurn) -> FakeReply:
    """Deterministic echo persona.

    * text turn -> ``"You said: <text>"`` (``"Hello! How can I help you?"`` if empty)
    * audio turn -> ``"I heard <N.N> seconds of audio."``
    * tool output turn -> ``"The tool returned <output>."``
    """
    if turn.kind == "audio":
        return FakeReply(text=f"I heard {turn.audio_seconds:.1f} seconds of audio.")
    if turn.kind == "tool_output":
        return FakeReply(text=f"The tool returned {turn.text}.")
    if not turn.text:
        return FakeReply(text="Hello! How can I help you?")
    return FakeReply(text=f"You said: {turn.text}")
