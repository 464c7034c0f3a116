"""Request bodies and stream decoders of the two LLM wire formats (pure, recorded streams).

The streams below follow the documented formats event by event, including the parts
clients must tolerate: ``ping``, unknown events, thinking blocks, usage on every
chunk, parallel tool calls whose fragments interleave, and servers that omit ids.
"""

from __future__ import annotations

import json

import httpx
import pytest
from httpx_sse import EventSource

from voxengine.config import ToolSpec
from voxengine.errors import ProtocolViolation, ProviderError, RateLimited
from voxengine.events import Role, Usage
from voxengine.providers.pipeline._anthropic_wire import AnthropicStreamDecoder, messages_request
from voxengine.providers.pipeline._openai_wire import ChatStreamDecoder, chat_request
from voxengine.providers.pipeline.stages import (
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LLMChunk,
    TextChunk,
    ToolArgumentsChunk,
    ToolCallChunk,
    ToolCallRequest,
)

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)

ANTHROPIC_STREAM = """\
event: message_start
data: {"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-haiku-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_read_input_tokens":10,"cache_creation_input_tokens":0,"output_tokens":1}}}

event: ping
data: {"type": "ping"}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Let me "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"check."}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\\"city\\": \\"Pa"}}

event: some_future_event
data: {"type":"some_future_event"}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ris\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":42}}

event: message_stop
data: {"type":"message_stop"}

"""


def decode_anthropic(stream: str) -> list[LLMChunk]:
    response = httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=stream.encode()
    )
    decoder = AnthropicStreamDecoder()
    chunks: list[LLMChunk] = []
    for event in EventSource(response).iter_sse():
        chunks += decoder.feed(event.event, event.data)
    assert decoder.finished
    return chunks


def test_anthropic_stream_text_tool_use_and_usage() -> None:
    call = ToolCallRequest(call_id="toolu_01", name="get_weather", arguments='{"city": "Paris"}')
    assert decode_anthropic(ANTHROPIC_STREAM) == [
        TextChunk(text="Let me "),
        TextChunk(text="check."),
        ToolArgumentsChunk(call_id="toolu_01", name="get_weather", delta='{"city": "Pa'),
        ToolArgumentsChunk(call_id="toolu_01", name="get_weather", delta='ris"}'),
        ToolCallChunk(call=call),
        FinishChunk(
            stop_reason="tool_use",
            usage=Usage(
                input_tokens=35,
                output_tokens=42,
                total_tokens=77,
                input_text_tokens=35,
                input_cached_tokens=10,
                input_cached_text_tokens=10,
                output_text_tokens=42,
            ),
        ),
    ]


def test_anthropic_tool_without_arguments_gets_an_empty_object() -> None:
    decoder = AnthropicStreamDecoder()
    start = {"type": "tool_use", "id": "t1", "name": "now", "input": {}}
    decoder.feed(
        "content_block_start",
        json.dumps({"index": 0, "content_block": start} | {"type": "content_block_start"}),
    )
    out = decoder.feed("content_block_stop", '{"type":"content_block_stop","index":0}')
    assert out == [ToolCallChunk(call=ToolCallRequest(call_id="t1", name="now", arguments="{}"))]


@pytest.mark.parametrize(
    ("kind", "exc"),
    [("rate_limit_error", RateLimited), ("overloaded_error", ProviderError)],
)
def test_anthropic_error_events_raise(kind: str, exc: type[Exception]) -> None:
    data = json.dumps({"type": "error", "error": {"type": kind, "message": "Overloaded"}})
    with pytest.raises(exc) as info:
        AnthropicStreamDecoder().feed("error", data)
    assert isinstance(info.value, ProviderError)
    assert info.value.code == kind
    assert info.value.message == "Overloaded"


def test_anthropic_non_json_data_is_a_protocol_violation() -> None:
    with pytest.raises(ProtocolViolation):
        AnthropicStreamDecoder().feed("message_start", "not json")


def test_anthropic_request_body() -> None:
    call = ToolCallRequest(call_id="toolu_1", name="get_weather", arguments='{"city":"Paris"}')
    messages = [
        ChatMessage(role=Role.SYSTEM, text="Be brief."),
        ChatMessage(role=Role.USER, text="Weather?"),
        ChatMessage(role=Role.ASSISTANT, text="Checking.", tool_calls=(call,)),
        ChatMessage(role=Role.TOOL, text="sunny", tool_call_id="toolu_1"),
        ChatMessage(role=Role.USER, text="Thanks"),
        ChatMessage(role=Role.SYSTEM, text="Context: Paris."),
    ]
    settings = GenerationSettings(temperature=1.5, tool_choice="required")
    body = messages_request(
        model="m", messages=messages, tools=[WEATHER], settings=settings, default_max_tokens=99
    )
    assert body == {
        "model": "m",
        "max_tokens": 99,
        "stream": True,
        "system": "Be brief.\n\nContext: Paris.",
        "temperature": 1.0,
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "any"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
    }


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
def test_anthropic_tool_choice(choice: str, wire: dict[str, str]) -> None:
    body = messages_request(
        model="m",
        messages=[ChatMessage(role=Role.USER, text="hi")],
        tools=[WEATHER],
        settings=GenerationSettings(tool_choice=choice, max_output_tokens=5),
        default_max_tokens=99,
    )
    assert body["tool_choice"] == wire
    assert body["max_tokens"] == 5


OPENAI_STREAM = [
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}',
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Checking"},"finish_reason":null}],"usage":null}',
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}],"usage":null}',
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\\"city\\":"}}]},"finish_reason":null}],"usage":null}',
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\\"city\\":\\"Paris\\"}"}}]},"finish_reason":null}],"usage":null}',
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\\"Rome\\"}"}}]},"finish_reason":null}],"usage":null}',
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":null}',
    '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":30,"completion_tokens":12,"total_tokens":42,"prompt_tokens_details":{"cached_tokens":8}}}',
    "[DONE]",
]


def test_openai_stream_parallel_tool_calls_and_usage() -> None:
    decoder = ChatStreamDecoder()
    chunks = [c for data in OPENAI_STREAM for c in decoder.feed(data)]
    assert decoder.finished
    assert chunks == [
        TextChunk(text="Checking"),
        ToolArgumentsChunk(call_id="call_b", name="get_weather", delta='{"city":'),
        ToolArgumentsChunk(call_id="call_a", name="get_weather", delta='{"city":"Paris"}'),
        ToolArgumentsChunk(call_id="call_b", name="get_weather", delta='"Rome"}'),
        ToolCallChunk(
            call=ToolCallRequest(call_id="call_a", name="get_weather", arguments='{"city":"Paris"}')
        ),
        ToolCallChunk(
            call=ToolCallRequest(call_id="call_b", name="get_weather", arguments='{"city":"Rome"}')
        ),
        FinishChunk(
            stop_reason="tool_calls",
            usage=Usage(
                input_tokens=30,
                output_tokens=12,
                total_tokens=42,
                input_text_tokens=30,
                input_cached_tokens=8,
                input_cached_text_tokens=8,
                output_text_tokens=12,
            ),
        ),
    ]
    assert decoder.finish() == []


def test_openai_stream_without_ids_or_done_still_finishes() -> None:
    decoder = ChatStreamDecoder()
    chunks = decoder.feed(
        '{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"now","arguments":"{}"}}]}}]}'
    )
    chunks += decoder.finish()
    assert chunks == [
        ToolArgumentsChunk(call_id="call_0", name="now", delta="{}"),
        ToolCallChunk(call=ToolCallRequest(call_id="call_0", name="now", arguments="{}")),
        FinishChunk(),
    ]


def test_openai_error_payload_and_garbage() -> None:
    with pytest.raises(ProviderError) as info:
        ChatStreamDecoder().feed(
            '{"error":{"message":"boom","type":"server_error","code":"overloaded"}}'
        )
    assert (info.value.code, info.value.message) == ("overloaded", "boom")
    with pytest.raises(ProtocolViolation):
        ChatStreamDecoder().feed("garbage")


def test_openai_request_body() -> None:
    call = ToolCallRequest(call_id="call_1", name="get_weather", arguments='{"city":"Paris"}')
    messages = [
        ChatMessage(role=Role.SYSTEM, text="Be brief."),
        ChatMessage(role=Role.USER, text="Weather?"),
        ChatMessage(role=Role.ASSISTANT, tool_calls=(call,)),
        ChatMessage(role=Role.TOOL, text="sunny", tool_call_id="call_1"),
    ]
    settings = GenerationSettings(temperature=0.3, max_output_tokens=50, tool_choice="get_weather")
    body = chat_request(
        model="llama3", messages=messages, tools=[WEATHER], settings=settings,
        max_tokens_field="max_completion_tokens",
    )  # fmt: skip
    assert body == {
        "model": "llama3",
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.3,
        "max_completion_tokens": 50,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
    }


async def test_a_stream_that_is_not_an_event_stream_is_a_protocol_violation() -> None:
    from voxengine.providers.pipeline._http import _sse_events

    response = httpx.Response(200, headers={"content-type": "text/html"}, content=b"<html>")
    with pytest.raises(ProtocolViolation, match="text/event-stream"):
        async for _ in _sse_events(response):
            pass
