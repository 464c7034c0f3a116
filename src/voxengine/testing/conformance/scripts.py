"""What the checks script the fake to say: the reply texts and the tool round trip."""

from __future__ import annotations

from typing import Final

from voxengine.config import ToolSpec
from voxengine.testing.fakes.openai import (
    FakeReply,
    FakeToolCall,
    FakeTurn,
    Responder,
)

__all__ = ["LONG_REPLY", "REPLY_TEXT"]


#: What the fake says in ordinary turns.
REPLY_TEXT: Final = "Conformance reply: the quick brown fox jumps over the lazy dog."
#: A reply long enough to interrupt while it streams (about 12 s of audio).
LONG_REPLY: Final = " ".join(["Once upon a time the sea was calm and the sky was wide."] * 4)
_TOOL_NAME: Final = "get_weather"
_TOOL_ARGUMENTS: Final = '{"city": "Paris"}'
_TOOL_OUTPUT: Final = '{"temp_c": 18}'
_TOOL_REPLY: Final = "It is 18 degrees in Paris."
_TOOL_LOST: Final = "The tool output did not arrive."
_TOOL = ToolSpec(
    name=_TOOL_NAME,
    description="Current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


def _replying(text: str) -> Responder:
    def respond(turn: FakeTurn) -> FakeReply:
        return FakeReply(text=text)

    return respond


def _tool_responder(turn: FakeTurn) -> FakeReply:
    if turn.kind == "tool_output":
        return FakeReply(text=_TOOL_REPLY if "18" in turn.text else _TOOL_LOST)
    return FakeReply(tool_calls=(FakeToolCall(name=_TOOL_NAME, arguments=_TOOL_ARGUMENTS),))
