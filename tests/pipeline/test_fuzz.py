"""Property tests: the LLM stream decoders raise nothing but their documented errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxengine.errors import ProtocolViolation, ProviderError
from voxengine.providers.pipeline._anthropic_wire import AnthropicStreamDecoder
from voxengine.providers.pipeline._openai_wire import ChatStreamDecoder
from voxengine.providers.pipeline.stages import LLMChunk

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
ANTHROPIC_EVENTS = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
]
#: What the decoders may raise for a broken stream (their documented contract).
DOCUMENTED = (ProtocolViolation, ProviderError)


def feed_safely(feed: Any, *args: str) -> list[LLMChunk]:
    try:
        chunks: list[LLMChunk] = feed(*args)
    except DOCUMENTED:
        return []
    return chunks


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(ANTHROPIC_EVENTS),
            st.dictionaries(
                st.sampled_from(
                    ["type", "index", "delta", "content_block", "message", "usage", "error"]
                ),
                json_values,
                max_size=4,
            ).map(json.dumps)
            | st.text(max_size=20),
        ),
        max_size=8,
    )
)
def test_anthropic_stream(events: list[tuple[str, str]]) -> None:
    decoder = AnthropicStreamDecoder()
    for name, data in events:
        feed_safely(decoder.feed, name, data)


@settings(max_examples=300, deadline=None)
@given(
    datas=st.lists(
        st.dictionaries(
            st.sampled_from(["choices", "usage", "id", "error"]), json_values, max_size=3
        ).map(json.dumps)
        | st.just("[DONE]")
        | st.text(max_size=20),
        max_size=8,
    )
)
def test_chat_completions_stream(datas: list[str]) -> None:
    decoder = ChatStreamDecoder()
    for data in datas:
        feed_safely(decoder.feed, data)


def test_documented_errors_are_typed() -> None:
    with pytest.raises(ProtocolViolation):
        ChatStreamDecoder().feed("{not json")
    with pytest.raises(ProtocolViolation):
        AnthropicStreamDecoder().feed("message_start", "[1]")
