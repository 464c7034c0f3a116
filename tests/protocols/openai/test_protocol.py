"""Sans-I/O tests of the OpenAI Realtime protocol: frames in, events and frames out.

No event loop, no sockets: each test feeds server JSON (taken from the transcripts in
openai-realtime.md §15) and asserts the events decoded and the client JSON produced.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from openai.types.realtime import RealtimeClientEvent
from pydantic import TypeAdapter

from voxengine.commands import (
    CancelResponse,
    ClearAudio,
    CommitAudio,
    CreateResponse,
    DeleteItem,
    SendAudio,
    SendAudioMessage,
    SendText,
    SendToolResult,
    TruncateItem,
    UpdateSession,
)
from voxengine.config import (
    Modality,
    SessionConfig,
    ToolSpec,
    TurnDetection,
    TurnDetectionConfig,
)
from voxengine.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    ProviderError,
    SessionExpired,
)
from voxengine.events import (
    AudioDelta,
    AudioDone,
    InputCleared,
    InputCommitted,
    InputTimeout,
    ItemAdded,
    ItemDeleted,
    ItemDone,
    ItemKind,
    ItemTruncated,
    ProviderErrorEvent,
    RateLimitsUpdated,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SessionClosed,
    SessionReady,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallDelta,
    TranscriptDelta,
    TranscriptDone,
    TranscriptFailed,
    TranscriptSegment,
    UnknownEvent,
    Usage,
)
from voxengine.protocols import ProtocolState
from voxengine.protocols.openai._wire import Dialect
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol

CLIENT_EVENT = TypeAdapter(RealtimeClientEvent)

SESSION_CREATED = (
    '{"type":"session.created","event_id":"event_A1","session":{"type":"realtime",'
    '"object":"realtime.session","id":"sess_01","model":"gpt-realtime",'
    '"output_modalities":["audio"],"instructions":"x","tools":[],"tool_choice":"auto",'
    '"max_output_tokens":"inf","audio":{"input":{"format":{"type":"audio/pcm","rate":24000}},'
    '"output":{"format":{"type":"audio/pcm","rate":24000},"voice":"alloy"}}}}'
)
SESSION_UPDATED = '{"type":"session.updated","event_id":"event_A2","session":{"type":"realtime"}}'


def make(
    session: SessionConfig | None = None, dialect: Dialect = Dialect.GA
) -> OpenAIRealtimeProtocol:
    return OpenAIRealtimeProtocol(
        url="wss://api.openai.com/v1/realtime?model=gpt-realtime",
        headers={"Authorization": "Bearer sk-secret-123"},
        session=session or SessionConfig(),
        dialect=dialect,
    )


def sent(p: OpenAIRealtimeProtocol) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame in p.data_to_send()]


def opened(session: SessionConfig | None = None) -> OpenAIRealtimeProtocol:
    p = make(session)
    p.receive_message(SESSION_CREATED)
    p.data_to_send()
    p.receive_message(SESSION_UPDATED)
    p.events_received()
    return p


def feed(p: OpenAIRealtimeProtocol, *frames: str) -> list[Any]:
    for frame in frames:
        p.receive_message(frame)
    return p.events_received()


# -- handshake ---------------------------------------------------------------------


def test_connect_request_carries_key_but_repr_hides_it() -> None:
    p = make()
    request = p.connect_request()
    assert request.url.endswith("/realtime?model=gpt-realtime")
    assert request.headers["Authorization"] == "Bearer sk-secret-123"
    assert "OpenAI-Beta" not in request.headers  # §12: fatal on GA
    assert "sk-secret" not in repr(request)


def test_handshake_sends_session_update_then_opens() -> None:
    cfg = SessionConfig(
        instructions="Be brief.",
        voice="marin",
        modalities=(Modality.AUDIO,),
        turn_detection=TurnDetectionConfig(silence_duration=0.6),
        input_transcription_model="gpt-4o-mini-transcribe",
        tools=(ToolSpec(name="get_weather", description="Weather"),),
        tool_choice="auto",
        max_output_tokens=300,
    )
    p = make(cfg)
    assert p.state is ProtocolState.CONNECTING
    assert p.data_to_send() == []
    p.receive_message(SESSION_CREATED)
    assert p.events_received() == []
    (update,) = sent(p)
    CLIENT_EVENT.validate_python(update)
    session = update["session"]
    assert session["type"] == "realtime"
    assert session["instructions"] == "Be brief."
    assert session["output_modalities"] == ["audio"]
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 600
    assert session["audio"]["input"]["transcription"] == {"model": "gpt-4o-mini-transcribe"}
    assert session["tools"][0]["name"] == "get_weather"
    assert session["max_output_tokens"] == 300
    p.receive_message(SESSION_UPDATED)
    assert p.events_received() == [SessionReady(session_id="sess_01", model="gpt-realtime")]
    assert p.state is ProtocolState.OPEN


def test_commands_before_open_are_buffered_in_order() -> None:
    p = make()
    p.send(SendText(text="hi"))
    p.send(CreateResponse())
    p.receive_message(SESSION_CREATED)
    assert [m["type"] for m in sent(p)] == ["session.update"]
    p.receive_message(SESSION_UPDATED)
    assert [m["type"] for m in sent(p)] == ["conversation.item.create", "response.create"]


def test_session_updated_after_open_is_an_update_event() -> None:
    p = opened()
    assert feed(p, SESSION_UPDATED) == [SessionUpdated(session_id="sess_01")]


def test_rejected_initial_session_update_fails_the_handshake() -> None:
    p = make(SessionConfig(voice="nova"))
    p.receive_message(SESSION_CREATED)
    (update,) = sent(p)
    p.receive_message(
        json.dumps(
            {
                "type": "error",
                "event_id": "event_X",
                "error": {
                    "type": "invalid_request_error",
                    "code": "invalid_value",
                    "message": "bad voice",
                    "param": "session.audio.output.voice",
                    "event_id": update["event_id"],
                },
            }
        )
    )
    assert p.state is ProtocolState.CLOSED
    assert isinstance(p.close_exc, ProviderError)
    assert p.close_exc.code == "invalid_value"


def test_manual_turn_detection_disables_server_vad() -> None:
    p = make(SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL)))
    p.receive_message(SESSION_CREATED)
    (update,) = sent(p)
    assert update["session"]["audio"]["input"]["turn_detection"] is None
    CLIENT_EVENT.validate_python(update)


def test_temperature_is_refused_on_ga_before_any_io() -> None:
    with pytest.raises(ConfigError, match="temperature"):
        make(SessionConfig(temperature=0.7))


# -- client events -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "expected_type"),
    [
        (SendAudio(audio=b"\x01\x00\x02\x00"), "input_audio_buffer.append"),
        (CommitAudio(), "input_audio_buffer.commit"),
        (ClearAudio(), "input_audio_buffer.clear"),
        (SendText(text="Hello!"), "conversation.item.create"),
        (SendText(text="ctx", role=Role.SYSTEM, item_id="ctx_1"), "conversation.item.create"),
        (SendAudioMessage(audio=b"\x01\x00" * 10), "conversation.item.create"),
        (SendText(text="Note", role=Role.SYSTEM), "conversation.item.create"),
        (SendText(text="Earlier", role=Role.ASSISTANT), "conversation.item.create"),
        (SendToolResult(call_id="call_1", output='{"ok":true}'), "conversation.item.create"),
        (CreateResponse(), "response.create"),
        (CreateResponse(modalities=(Modality.TEXT,), instructions="Short."), "response.create"),
        (CancelResponse(), "response.cancel"),
        (CancelResponse(response_id="resp_1"), "response.cancel"),
        (TruncateItem(item_id="item_A5", audio_end=1.52), "conversation.item.truncate"),
        (DeleteItem(item_id="item_1"), "conversation.item.delete"),
        (UpdateSession(config=SessionConfig(instructions="New")), "session.update"),
        (
            UpdateSession(
                config=SessionConfig(
                    turn_detection=TurnDetectionConfig(mode=TurnDetection.SEMANTIC_VAD)
                )
            ),
            "session.update",
        ),
    ],
)
def test_every_command_encodes_to_a_valid_ga_client_event(command: Any, expected_type: str) -> None:
    p = opened()
    p.send(command)
    (msg,) = sent(p)
    assert msg["type"] == expected_type
    CLIENT_EVENT.validate_python(msg)  # the openai package's typed model accepts it


def test_audio_is_base64_pcm16_and_truncate_is_in_ms() -> None:
    p = opened()
    p.send(SendAudio(audio=b"\x01\x00\xff\x7f"))
    p.send(TruncateItem(item_id="item_A5", audio_end=1.52))
    append, truncate = sent(p)
    assert base64.b64decode(append["audio"]) == b"\x01\x00\xff\x7f"
    assert "event_id" not in append  # no ack on the hot path
    assert truncate["audio_end_ms"] == 1520
    assert truncate["content_index"] == 0


def test_send_after_close_raises_invalid_state() -> None:
    p = opened()
    p.receive_close(1000, "bye")
    with pytest.raises(InvalidState):
        p.send(CreateResponse())
    q = opened()
    q.start_closing()
    with pytest.raises(InvalidState):
        q.send(CreateResponse())


# -- server events (transcripts of §15) -----------------------------------------------

TEXT_TURN = [
    '{"type":"conversation.item.added","event_id":"event_B1","previous_item_id":null,"item":{"id":"item_U1","type":"message","status":"completed","role":"user","content":[{"type":"input_text","text":"Say hi in three words"}]}}',
    '{"type":"conversation.item.done","event_id":"event_B2","previous_item_id":null,"item":{"id":"item_U1","type":"message","status":"completed","role":"user","content":[{"type":"input_text","text":"Say hi in three words"}]}}',
    '{"type":"response.created","event_id":"event_B3","response":{"object":"realtime.response","id":"resp_R1","status":"in_progress","status_details":null,"output":[],"usage":null}}',
    '{"type":"response.output_item.added","event_id":"event_B4","response_id":"resp_R1","output_index":0,"item":{"id":"item_A1","type":"message","status":"in_progress","role":"assistant","content":[]}}',
    '{"type":"conversation.item.added","event_id":"event_B5","previous_item_id":"item_U1","item":{"id":"item_A1","type":"message","status":"in_progress","role":"assistant","content":[]}}',
    '{"type":"response.content_part.added","event_id":"event_B6","response_id":"resp_R1","item_id":"item_A1","output_index":0,"content_index":0,"part":{"type":"text","text":""}}',
    '{"type":"response.output_text.delta","event_id":"event_B7","response_id":"resp_R1","item_id":"item_A1","output_index":0,"content_index":0,"delta":"Hi there,","obfuscation":"x9Qe"}',
    '{"type":"response.output_text.delta","event_id":"event_B8","response_id":"resp_R1","item_id":"item_A1","output_index":0,"content_index":0,"delta":" friend!","obfuscation":"7Lp"}',
    '{"type":"response.output_text.done","event_id":"event_B9","response_id":"resp_R1","item_id":"item_A1","output_index":0,"content_index":0,"text":"Hi there, friend!"}',
    '{"type":"response.content_part.done","event_id":"event_B10","response_id":"resp_R1","item_id":"item_A1","output_index":0,"content_index":0,"part":{"type":"text","text":"Hi there, friend!"}}',
    '{"type":"conversation.item.done","event_id":"event_B11","previous_item_id":"item_U1","item":{"id":"item_A1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there, friend!"}]}}',
    '{"type":"response.output_item.done","event_id":"event_B12","response_id":"resp_R1","output_index":0,"item":{"id":"item_A1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there, friend!"}]}}',
    '{"type":"response.done","event_id":"event_B13","response":{"object":"realtime.response","id":"resp_R1","status":"completed","status_details":null,"output":[{"id":"item_A1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there, friend!"}]}],"usage":{"total_tokens":127,"input_tokens":120,"output_tokens":7,"input_token_details":{"text_tokens":120,"audio_tokens":0,"image_tokens":0,"cached_tokens":64},"output_token_details":{"text_tokens":7,"audio_tokens":0}}}}',
    '{"type":"rate_limits.updated","event_id":"event_B14","rate_limits":[{"name":"tokens","limit":15000000,"remaining":14999716,"reset_seconds":0.001}]}',
]


def test_text_turn_decodes_to_the_event_vocabulary() -> None:
    events = feed(opened(), *TEXT_TURN)
    assert [type(e) for e in events] == [
        ItemAdded,
        ItemDone,
        ResponseStarted,
        ItemAdded,
        TextDelta,
        TextDelta,
        TextDone,
        ItemDone,
        ResponseDone,
        RateLimitsUpdated,
    ]
    user = events[1].item
    assert (user.item_id, user.role, user.text, user.kind) == (
        "item_U1",
        Role.USER,
        "Say hi in three words",
        ItemKind.MESSAGE,
    )
    assert events[3].previous_item_id == "item_U1"
    assert "".join(e.delta for e in events if isinstance(e, TextDelta)) == "Hi there, friend!"
    done = events[8]
    assert done.status is ResponseStatus.COMPLETED
    audio_turn = feed(
        opened(),
        '{"type":"response.done","event_id":"e","response":{"id":"r","status":"completed","usage":{"total_tokens":320,"input_tokens":132,"output_tokens":188,"input_token_details":{"text_tokens":59,"audio_tokens":73,"cached_tokens":64,"cached_tokens_details":{"text_tokens":0,"audio_tokens":64}},"output_token_details":{"text_tokens":41,"audio_tokens":147}}}}',
    )[0].usage
    assert (audio_turn.input_cached_text_tokens, audio_turn.input_cached_audio_tokens) == (0, 64)
    assert done.usage == Usage(
        input_tokens=120,
        output_tokens=7,
        total_tokens=127,
        input_text_tokens=120,
        input_cached_tokens=64,
        output_text_tokens=7,
    )
    assert done.output[0].text == "Hi there, friend!"
    assert events[9].limits[0].remaining == 14999716


def _delta(kind: str, **fields: Any) -> str:
    base = {
        "event_id": "e",
        "response_id": "resp_R2",
        "item_id": "item_A2",
        "output_index": 0,
        "content_index": 0,
    }
    return json.dumps({"type": kind, **base, **fields})


def test_audio_turn_with_server_vad() -> None:
    pcm = bytes(range(200))
    events = feed(
        opened(),
        '{"type":"input_audio_buffer.speech_started","event_id":"event_C1","audio_start_ms":1236,"item_id":"item_U2"}',
        '{"type":"input_audio_buffer.speech_stopped","event_id":"event_C2","audio_end_ms":3808,"item_id":"item_U2"}',
        '{"type":"input_audio_buffer.committed","event_id":"event_C3","previous_item_id":"item_A1","item_id":"item_U2"}',
        _delta("response.output_audio_transcript.delta", delta="It's", obfuscation="LBqd"),
        _delta("response.output_audio.delta", delta=base64.b64encode(pcm).decode()),
        '{"type":"conversation.item.input_audio_transcription.delta","event_id":"event_C20","item_id":"item_U2","content_index":0,"delta":"What time is it?"}',
        '{"type":"conversation.item.input_audio_transcription.completed","event_id":"event_C21","item_id":"item_U2","content_index":0,"transcript":"What time is it?","usage":{"type":"duration","seconds":2}}',
        _delta("response.output_audio.done"),
        _delta("response.output_audio_transcript.done", transcript="It's 3 pm."),
    )
    assert events == [
        SpeechStarted(item_id="item_U2", audio_start=1.236),
        SpeechStopped(item_id="item_U2", audio_end=3.808),
        InputCommitted(item_id="item_U2", previous_item_id="item_A1"),
        TranscriptDelta(
            role=Role.ASSISTANT, item_id="item_A2", delta="It's", response_id="resp_R2"
        ),
        AudioDelta(response_id="resp_R2", item_id="item_A2", audio=pcm),
        TranscriptDelta(role=Role.USER, item_id="item_U2", delta="What time is it?"),
        TranscriptDone(role=Role.USER, item_id="item_U2", transcript="What time is it?"),
        AudioDone(response_id="resp_R2", item_id="item_A2"),
        TranscriptDone(
            role=Role.ASSISTANT, item_id="item_A2", transcript="It's 3 pm.", response_id="resp_R2"
        ),
    ]


def test_function_call_round_trip() -> None:
    events = feed(
        opened(),
        '{"type":"response.function_call_arguments.delta","event_id":"event_D3","response_id":"resp_R3","item_id":"item_F1","output_index":0,"call_id":"call_W1","delta":"{\\"city\\":"}',
        '{"type":"response.function_call_arguments.done","event_id":"event_D5","response_id":"resp_R3","item_id":"item_F1","output_index":0,"call_id":"call_W1","name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}',
        '{"type":"conversation.item.done","event_id":"event_D6","previous_item_id":"item_U3","item":{"id":"item_F1","type":"function_call","status":"completed","name":"get_weather","call_id":"call_W1","arguments":"{\\"city\\":\\"Paris\\"}"}}',
    )
    assert events[0] == ToolCallDelta(
        call_id="call_W1", item_id="item_F1", response_id="resp_R3", delta='{"city":'
    )
    assert events[1] == ToolCall(
        call_id="call_W1",
        name="get_weather",
        arguments='{"city":"Paris"}',
        item_id="item_F1",
        response_id="resp_R3",
    )
    item = events[2].item
    assert (item.kind, item.call_id, item.name) == (
        ItemKind.FUNCTION_CALL,
        "call_W1",
        "get_weather",
    )


def test_barge_in_cancellation_and_truncation() -> None:
    events = feed(
        opened(),
        '{"type":"response.done","event_id":"event_E7","response":{"object":"realtime.response","id":"resp_R5","status":"cancelled","status_details":{"type":"cancelled","reason":"turn_detected"},"output":[],"usage":null}}',
        '{"type":"conversation.item.truncated","event_id":"event_E8","item_id":"item_A5","content_index":0,"audio_end_ms":1520}',
        '{"type":"conversation.item.deleted","event_id":"e9","item_id":"item_A5"}',
        '{"type":"input_audio_buffer.cleared","event_id":"e10"}',
    )
    assert events == [
        ResponseDone(
            response_id="resp_R5", status=ResponseStatus.CANCELLED, reason="turn_detected"
        ),
        ItemTruncated(item_id="item_A5", audio_end=1.52),
        ItemDeleted(item_id="item_A5"),
        InputCleared(),
    ]


def test_idle_timeout_and_diarized_segments() -> None:
    events = feed(
        opened(),
        '{"type":"input_audio_buffer.timeout_triggered","event_id":"e","item_id":"item_T1","audio_start_ms":5000,"audio_end_ms":11000}',
        '{"type":"conversation.item.input_audio_transcription.segment","event_id":"e","item_id":"item_U4","content_index":0,"id":"seg_1","text":"hello","speaker":"A","start":0.5,"end":1.25}',
        '{"type":"output_audio_buffer.started","event_id":"e","response_id":"resp_1"}',
    )
    assert events == [
        InputTimeout(item_id="item_T1", audio_start=5.0, audio_end=11.0),
        TranscriptSegment(
            item_id="item_U4", segment_id="seg_1", text="hello", speaker="A", start=0.5, end=1.25
        ),
    ]


def test_failed_response_and_transcription_failure() -> None:
    events = feed(
        opened(),
        '{"type":"response.done","event_id":"e","response":{"id":"resp_9","status":"failed","status_details":{"type":"failed","error":{"type":"server_error","code":"server_error"}},"output":[]}}',
        '{"type":"conversation.item.input_audio_transcription.failed","event_id":"e","item_id":"item_U9","content_index":0,"error":{"type":"x","code":"y","message":"no speech","param":null}}',
    )
    assert events[0].status is ResponseStatus.FAILED
    assert events[0].reason == "server_error"
    assert events[1] == TranscriptFailed(item_id="item_U9", message="no speech")


def test_recoverable_error_is_an_event_and_keeps_the_session_open() -> None:
    p = opened()
    events = feed(
        p,
        '{"type":"error","event_id":"event_9","error":{"type":"invalid_request_error","code":"response_cancel_not_active","message":"no active response","param":null,"event_id":"vx_7"}}',
    )
    assert events == [
        ProviderErrorEvent(
            code="response_cancel_not_active",
            message="no active response",
            error_type="invalid_request_error",
            client_event_id="vx_7",
        )
    ]
    assert p.state is ProtocolState.OPEN


def test_unknown_and_malformed_frames_never_raise() -> None:
    p = opened()
    events = feed(
        p,
        '{"type":"response.brand_new_thing","event_id":"e","x":1}',
        "not json at all",
        "[1, 2, 3]",
        b'{"type": 5}',
        '{"type":"response.output_audio.delta","n":NaN}',  # not strict JSON
        b'{"type":"\xff"}',  # not UTF-8
        _delta("response.output_audio.delta", delta="###not-base64###"),
    )
    assert isinstance(events[0], UnknownEvent)
    assert events[0].name == "response.brand_new_thing"
    assert json.loads(events[0].raw)["x"] == 1
    assert [e.code for e in events[1:]] == [
        "malformed_frame",
        "malformed_frame",
        "malformed_frame",
        "malformed_frame",
        "malformed_frame",
        "malformed_audio",
    ]
    assert p.state is ProtocolState.OPEN


# -- close codes (§2.1, §10) -----------------------------------------------------------


def _error(code: str | None, message: str = "m") -> str:
    return json.dumps(
        {
            "type": "error",
            "event_id": "e",
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": None,
                "event_id": None,
            },
        }
    )


@pytest.mark.parametrize(
    ("error_code", "close_code", "reason", "exc_type"),
    [
        ("invalid_api_key", 3000, "invalid_request_error.invalid_api_key", AuthenticationFailed),
        (None, 3000, "invalid_request_error", AuthenticationFailed),
        ("invalid_model", 4000, "invalid_request_error.invalid_model", ProviderError),
        ("missing_model", 4000, "invalid_request_error.missing_model", ProviderError),
        (
            "beta_api_shape_disabled",
            4000,
            "invalid_request_error.beta_api_shape_disabled",
            ProviderError,
        ),
        ("session_expired", 1001, "session hit the 60-minute maximum", SessionExpired),
    ],
)
def test_fatal_errors_close_with_typed_exception(
    error_code: str | None, close_code: int, reason: str, exc_type: type[Exception]
) -> None:
    p = make()
    p.receive_message(SESSION_CREATED)
    p.receive_message(_error(error_code))
    if error_code:
        # A fatal error closes at once (the close frame that follows changes nothing):
        # a server that never sends it cannot leave the session half-open.
        assert p.state is ProtocolState.CLOSED
    p.receive_close(close_code, reason)
    assert p.state is ProtocolState.CLOSED
    assert type(p.close_exc) is exc_type
    if isinstance(p.close_exc, ProviderError) and error_code:
        assert p.close_exc.code == error_code
    expected = (
        SessionClosed(code=close_code, reason=f"{error_code}: m")
        if error_code
        else SessionClosed(code=close_code, reason=reason)
    )
    assert p.events_received()[-1] == expected
    assert "sk-secret" not in str(p.close_exc)


def test_normal_and_abnormal_close() -> None:
    p = opened()
    p.receive_close(1000, "")
    assert isinstance(p.close_exc, ConnectionClosedOK)
    q = opened()
    q.receive_close(None, "dropped")
    assert isinstance(q.close_exc, ConnectionClosedError)
    r = opened()
    r.start_closing()
    r.receive_close(1000, "client closing")
    assert r.close_exc is None  # we asked for it: not a failure


# -- beta dialect (Azure preview, §12 / §15.6) ------------------------------------------


def test_beta_dialect_session_and_events() -> None:
    p = make(
        SessionConfig(voice="alloy", temperature=0.7, modalities=(Modality.AUDIO,)), Dialect.BETA
    )
    p.receive_message(SESSION_CREATED)
    (update,) = sent(p)
    session = update["session"]
    assert "type" not in session
    assert session["voice"] == "alloy"
    assert session["temperature"] == 0.7
    assert session["modalities"] == ["text", "audio"]
    assert session["input_audio_format"] == "pcm16"
    p.receive_message(SESSION_UPDATED)
    p.events_received()
    events = feed(
        p,
        '{"type":"conversation.item.created","event_id":"e","previous_item_id":null,"item":{"id":"item_U1","type":"message","status":"completed","role":"user","content":[{"type":"input_text","text":"hi"}]}}',
        _delta("response.audio.delta", delta=base64.b64encode(b"\x00\x01").decode()),
        _delta("response.audio_transcript.delta", delta="Hel"),
        _delta("response.text.delta", delta="lo"),
    )
    assert [type(e) for e in events] == [
        ItemAdded,
        ItemDone,
        AudioDelta,
        TranscriptDelta,
        TextDelta,
    ]
    p.send(SendText(text="again", role=Role.ASSISTANT))
    (item,) = sent(p)
    assert item["item"]["content"][0]["type"] == "text"
