"""Property tests: no server message, however broken, makes the decoder raise."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from voxengine.config import SessionConfig
from voxengine.events import BaseEvent
from voxengine.protocols import ProtocolState
from voxengine.protocols.openai._decode import DECODERS
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol

from .test_protocol import SESSION_CREATED, SESSION_UPDATED, TEXT_TURN

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
TYPES = sorted({*DECODERS, "session.created", "session.updated", "error"})


def opened() -> OpenAIRealtimeProtocol:
    p = OpenAIRealtimeProtocol(
        url="wss://x/v1/realtime?model=m", headers={}, session=SessionConfig()
    )
    p.receive_message(SESSION_CREATED)
    p.receive_message(SESSION_UPDATED)
    p.events_received()
    p.data_to_send()
    return p


def check(p: OpenAIRealtimeProtocol, frame: str | bytes) -> None:
    p.receive_message(frame)
    for event in p.events_received():
        assert isinstance(event, BaseEvent)
    assert p.state is ProtocolState.OPEN


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(TYPES), body=st.dictionaries(st.text(max_size=12), json_values, max_size=6)
)
def test_known_types_with_random_bodies(kind: str, body: dict[str, Any]) -> None:
    check(opened(), json.dumps({**body, "type": kind}))


@settings(max_examples=300, deadline=None)
@given(
    index=st.integers(min_value=0, max_value=len(TEXT_TURN) - 1),
    path_choice=st.integers(min_value=0, max_value=50),
    value=json_values,
)
def test_mutated_transcript_frames(index: int, path_choice: int, value: Any) -> None:
    message = json.loads(TEXT_TURN[index])
    # replace one (possibly nested) value with garbage of any type
    target: Any = message
    keys = [k for k in target if k != "type"]
    key = keys[path_choice % len(keys)]
    if isinstance(target[key], dict) and target[key] and path_choice % 2:
        target = target[key]
        key = sorted(target)[path_choice % len(target)]
    target[key] = value
    check(opened(), json.dumps(message))


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=64) | st.text(max_size=64) | json_values.map(json.dumps))
def test_arbitrary_frames(data: str | bytes) -> None:
    check(opened(), data)
