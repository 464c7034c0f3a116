"""Property tests: no server message, however broken, makes the Gemini decoder raise."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from voxengine.events import BaseEvent
from voxengine.protocols import ProtocolState
from voxengine.protocols.gemini.protocol import GeminiLiveProtocol

from .test_protocol import opened

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
#: Top-level server message keys (gemini-live.md §4), camelCase and snake_case.
KEYS = [
    "setupComplete",
    "serverContent",
    "toolCall",
    "toolCallCancellation",
    "goAway",
    "sessionResumptionUpdate",
    "usageMetadata",
    "server_content",
    "tool_call",
    "usage_metadata",
    "go_away",
]
SERVER_CONTENT_KEYS = [
    "modelTurn",
    "turnComplete",
    "generationComplete",
    "interrupted",
    "inputTranscription",
    "outputTranscription",
]


def check(p: GeminiLiveProtocol, frame: str | bytes) -> None:
    p.receive_message(frame)
    for event in p.events_received():
        assert isinstance(event, BaseEvent)
    p.data_to_send()
    assert p.state is ProtocolState.OPEN


@settings(max_examples=300, deadline=None)
@given(message=st.dictionaries(st.sampled_from(KEYS), json_values, min_size=1, max_size=3))
def test_known_messages_with_random_bodies(message: dict[str, Any]) -> None:
    check(opened(), json.dumps(message))


@settings(max_examples=300, deadline=None)
@given(
    content=st.dictionaries(st.sampled_from(SERVER_CONTENT_KEYS), json_values, max_size=4),
    binary=st.booleans(),
)
def test_server_content_with_random_fields(content: dict[str, Any], binary: bool) -> None:
    frame = json.dumps({"serverContent": content})
    check(opened(), frame.encode() if binary else frame)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64) | st.text(max_size=64) | json_values.map(json.dumps))
def test_arbitrary_frames(data: str | bytes) -> None:
    check(opened(), data)
