"""Architecture checks: exports, one event vocabulary, every event emitted, errors mapped."""

from __future__ import annotations

import json
import typing

import pytest

import voxengine
from voxengine import events as events_module
from voxengine.config import SessionConfig
from voxengine.events import (
    AudioDropped,
    BaseEvent,
    Event,
    GoAway,
    Interrupted,
    KeyPressed,
    ProviderErrorEvent,
    ProviderSwitched,
    Reconnected,
    Reconnecting,
    ResumptionUpdate,
    ShutdownCancelled,
    StallDetected,
    ToolCallCancelled,
    UndeliveredInput,
)
from voxengine.protocols import ProtocolState
from voxengine.protocols.openai._decode import DECODERS
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol
from voxengine.transport.websocket import redact

EVENT_CLASSES = set(typing.get_args(Event))


def test_public_all_is_sorted_unique_and_importable() -> None:
    names = voxengine.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(voxengine, name), name


def test_one_event_union_with_unique_type_names() -> None:
    subclasses = {
        obj
        for obj in vars(events_module).values()
        if isinstance(obj, type) and issubclass(obj, BaseEvent) and obj is not BaseEvent
    }
    assert subclasses == EVENT_CLASSES
    names = [cls.type for cls in EVENT_CLASSES]
    assert len(names) == len(set(names))
    for cls in EVENT_CLASSES:
        assert cls.__name__ in voxengine.__all__
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]


def _opened() -> OpenAIRealtimeProtocol:
    p = OpenAIRealtimeProtocol(
        url="wss://x/v1/realtime?model=m", headers={}, session=SessionConfig()
    )
    p.receive_message('{"type":"session.created","session":{"id":"s","model":"m"}}')
    p.receive_message('{"type":"session.updated","session":{}}')
    return p


def _fresh() -> OpenAIRealtimeProtocol:
    p = _opened()
    p.events_received()
    return p


@pytest.mark.parametrize("kind", sorted(DECODERS))
def test_every_decoder_tolerates_missing_fields(kind: str) -> None:
    p = _opened()
    p.receive_message(json.dumps({"type": kind}))
    p.events_received()
    assert p.state is ProtocolState.OPEN


def test_every_event_class_is_emitted_by_the_openai_protocol_or_session() -> None:
    """Decoders, handshake and close cover the vocabulary; the session adds Interrupted."""
    p = _opened()
    emitted: set[type] = {type(e) for e in p.events_received()}  # SessionReady
    samples = {
        "conversation.item.added": {"item": {"id": "i", "type": "message"}},
        "conversation.item.done": {"item": {"id": "i", "type": "message"}},
        "response.created": {"response": {"id": "r"}},
        "response.done": {"response": {"id": "r", "status": "completed"}},
        "response.output_audio.delta": {"delta": "AAA="},
    }
    for kind in DECODERS:
        p.receive_message(json.dumps({"type": kind, **samples.get(kind, {})}))
    p.receive_message('{"type":"brand.new"}')
    p.receive_message('{"type":"session.updated","session":{}}')
    p.receive_message(
        '{"type":"error","error":{"type":"invalid_request_error","code":"invalid_value","message":"m"}}'
    )
    p.receive_close(1000, "")
    emitted |= {type(e) for e in p.events_received()}
    produced_by_session = {Interrupted}
    # Gemini-only notions; tests/protocols/gemini asserts the Gemini protocol emits them.
    produced_by_gemini = {ToolCallCancelled, GoAway, ResumptionUpdate}
    # Emitted by the provider link (reconnects, watchdog, buffering, undelivered input)
    # and the engine (failover, bounded shutdown); tests/test_reliability.py and
    # tests/hostile/ assert each of them.
    produced_by_link = {
        Reconnecting,
        Reconnected,
        StallDetected,
        AudioDropped,
        ProviderSwitched,
        UndeliveredInput,
        ShutdownCancelled,
    }
    # Emitted by a phone call's endpoint (a carrier's key presses); tests/serve/telephony
    # asserts it reaches the call's engine.
    produced_by_calls = {KeyPressed}
    assert EVENT_CLASSES - emitted == (
        produced_by_session | produced_by_gemini | produced_by_link | produced_by_calls
    )


# §10: every recoverable error code becomes an event and leaves the session open.
RECOVERABLE = [
    "invalid_value",
    "unknown_parameter",
    "missing_required_parameter",
    "integer_below_min_value",
    "integer_above_max_value",
    "decimal_below_min_value",
    "decimal_above_max_value",
    "invalid_type",
    "invalid_json",
    "invalid_event",
    "input_audio_buffer_commit_empty",
    "conversation_already_has_active_response",
    "response_cancel_not_active",
]


@pytest.mark.parametrize("code", RECOVERABLE)
def test_recoverable_error_codes_are_events(code: str) -> None:
    p = _fresh()
    p.receive_message(
        json.dumps(
            {
                "type": "error",
                "error": {"type": "invalid_request_error", "code": code, "message": "m"},
            }
        )
    )
    (event,) = p.events_received()
    assert isinstance(event, ProviderErrorEvent)
    assert event.code == code
    assert p.state is ProtocolState.OPEN


@pytest.mark.parametrize(
    "line",
    [
        "> Authorization: Bearer sk-abc123",
        "< api-key: 0123456789abcdef",
        "x-goog-api-key: AIzaSyXYZ",
        "GET /ws?key=AIzaSyXYZ&alt=json",
        "subprotocols: realtime, openai-insecure-api-key.sk-abc123",
    ],
)
def test_redaction_removes_credentials(line: str) -> None:
    cleaned = redact(line)
    for secret in ("sk-abc123", "0123456789abcdef", "AIzaSyXYZ"):
        assert secret not in cleaned
    assert "***" in cleaned
