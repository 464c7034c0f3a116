"""The built-in local responder: deterministic, offline, honest about what it is."""

from __future__ import annotations

import datetime as dt

import pytest

from voxengine.config import ToolSpec
from voxengine.errors import ConfigError
from voxengine.events import Role
from voxengine.providers.pipeline import (
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LLMChunk,
    LocalResponder,
    TextChunk,
    ToolCallChunk,
    ToolCallRequest,
)

NOON = dt.datetime(2025, 5, 5, 12, 30)
WEATHER = ToolSpec(name="get_weather")


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role=Role.SYSTEM, text="sys"), ChatMessage(role=Role.USER, text=text)]


async def collect(
    llm: LocalResponder,
    messages: list[ChatMessage],
    tools: tuple[ToolSpec, ...] = (),
    choice: str | None = None,
) -> list[LLMChunk]:
    return [c async for c in llm.stream(messages, tools, GenerationSettings(tool_choice=choice))]


def test_it_says_what_it_is() -> None:
    llm = LocalResponder(clock=lambda: NOON)
    assert llm.label == "built-in local responder (not an AI model)"
    assert "not an AI model" in str(llm.reply(user("Hello!"), ()))


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("what time is it", "It is 12:30. Today is Monday, 05 May 2025."),
        ("which day is today", "Today is Monday, 05 May 2025."),
        ("blue whales", "You said: blue whales"),
        ("", "I did not catch that. Could you say it again?"),
    ],
)
def test_rules(text: str, reply: str) -> None:
    assert LocalResponder(clock=lambda: NOON).reply(user(text), ()) == reply


async def test_streams_words_then_usage() -> None:
    chunks = await collect(LocalResponder(clock=lambda: NOON), user("what time is it"))
    texts = [c.text for c in chunks if isinstance(c, TextChunk)]
    assert "".join(texts) == "It is 12:30. Today is Monday, 05 May 2025."
    assert len(texts) == 9
    finish = chunks[-1]
    assert isinstance(finish, FinishChunk)
    assert finish.usage is not None
    assert finish.usage.output_tokens == 9
    assert finish.usage.input_tokens == 5


async def test_tool_round_trip() -> None:
    llm = LocalResponder()
    chunks = await collect(llm, user("what is the weather, get weather please"), (WEATHER,))
    assert isinstance(chunks[0], ToolCallChunk)
    call = chunks[0].call
    assert (call.name, call.arguments) == ("get_weather", "{}")
    assert isinstance(chunks[-1], FinishChunk)
    assert chunks[-1].stop_reason == "tool_use"
    follow_up = [
        *user("get weather"),
        ChatMessage(role=Role.ASSISTANT, tool_calls=(call,)),
        ChatMessage(role=Role.TOOL, text='{"sky": "clear"}', tool_call_id=call.call_id),
    ]
    assert llm.reply(follow_up, (WEATHER,)) == "The get_weather tool returned: sky clear."
    assert not [
        c
        for c in await collect(llm, user("get_weather"), (WEATHER,), "none")
        if isinstance(c, ToolCallChunk)
    ]


def test_tool_request_type_and_validation() -> None:
    assert isinstance(LocalResponder().reply(user("get_weather"), (WEATHER,)), ToolCallRequest)
    with pytest.raises(ConfigError):
        LocalResponder(delay=-1)
