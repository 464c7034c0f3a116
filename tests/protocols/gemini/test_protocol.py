"""Sans-I/O tests of the Gemini Live protocol: frames in, events and frames out.

No event loop, no sockets: each test feeds server JSON taken from the transcripts of
gemini-live.md §12 (as text, as binary frames, and in snake_case) and asserts the
events decoded and the client JSON produced. Everything the client sends is
validated against the ``google-genai`` typed models (§10).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from google.genai import types

from voxengine.commands import (
    CancelResponse,
    ClearAudio,
    CommitAudio,
    CreateResponse,
    DeleteItem,
    RestoreItem,
    SendAudio,
    SendAudioMessage,
    SendText,
    SendToolResult,
    TruncateItem,
    UpdateSession,
)
from voxengine.config import (
    Modality,
    ReplyPolicy,
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
    RateLimited,
    SessionExpired,
)
from voxengine.events import (
    AudioDelta,
    AudioDone,
    ConversationItem,
    GoAway,
    ItemAdded,
    ItemDone,
    ItemKind,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    ResumptionUpdate,
    Role,
    SessionClosed,
    SessionReady,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallCancelled,
    TranscriptDelta,
    TranscriptDone,
    UnknownEvent,
    Usage,
)
from voxengine.protocols import ProtocolState
from voxengine.protocols.gemini._decode import parse_duration, parse_usage
from voxengine.protocols.gemini._wire import SetupOptions, schema_from_json_schema
from voxengine.protocols.gemini.protocol import GeminiLiveProtocol, close_exception

URL = "wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
PCM = bytes(range(256)) * 4  # 1024 bytes of "audio"
B64 = base64.b64encode(PCM).decode()
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


def validate_client(msg: dict[str, Any]) -> None:
    """§10 recipe: LiveClientMessage, with realtimeInputConfig checked on its own."""
    msg = json.loads(json.dumps(msg))
    setup = msg.get("setup")
    if setup is not None and "realtimeInputConfig" in setup:
        types.RealtimeInputConfig.model_validate(setup.pop("realtimeInputConfig"))
    types.LiveClientMessage.model_validate(msg)


#: A model that can answer in text (TEXT modality); native-audio models cannot (§3.1).
TEXT_MODEL = "gemini-live-2.5-flash-preview"


def make(
    session: SessionConfig | None = None, *, model: str | None = None, **options: Any
) -> GeminiLiveProtocol:
    session = session or SessionConfig()
    text_only = session.modalities is not None and Modality.AUDIO not in session.modalities
    return GeminiLiveProtocol(
        url=URL,
        headers={"x-goog-api-key": "AIza-secret-123"},
        model=model or (TEXT_MODEL if text_only else MODEL),
        session=session,
        options=SetupOptions(**options),
    )


def sent(p: GeminiLiveProtocol) -> list[dict[str, Any]]:
    frames = [json.loads(frame) for frame in p.data_to_send()]
    for frame in frames:
        assert len(frame) == 1  # §1: exactly one top-level key
        validate_client(frame)
    return frames


def opened(session: SessionConfig | None = None, **options: Any) -> GeminiLiveProtocol:
    p = make(session, **options)
    sent(p)
    p.receive_message(b'{"setupComplete":{}}')
    p.events_received()
    return p


def feed(p: GeminiLiveProtocol, *frames: str | bytes) -> list[Any]:
    for frame in frames:
        p.receive_message(frame)
    return p.events_received()


def audio_msg(data: str = B64) -> str:
    return json.dumps(
        {
            "serverContent": {
                "modelTurn": {
                    "parts": [{"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}]
                }
            }
        }
    )


# --- setup and handshake (§3.1, §12.1) --------------------------------------------------


def test_setup_is_the_first_message_and_matches_the_transcript() -> None:
    p = make(
        SessionConfig(
            voice="Kore",
            instructions="You are a concise assistant.",
            tools=(WEATHER,),
            turn_detection=TurnDetectionConfig(prefix_padding=0.02, silence_duration=0.5),
            input_transcription_model="any",
        ),
        context_compression=True,
    )
    assert p.state is ProtocolState.CONNECTING
    (msg,) = sent(p)
    assert msg == {
        "setup": {
            "model": f"models/{MODEL}",
            "generationConfig": {
                "responseModalities": ["AUDIO"],
                "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}}},
            },
            "systemInstruction": {"parts": [{"text": "You are a concise assistant."}]},
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "get_weather",
                            "description": "Current weather for a city",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {"city": {"type": "STRING"}},
                                "required": ["city"],
                            },
                        }
                    ]
                }
            ],
            "realtimeInputConfig": {
                "automaticActivityDetection": {
                    "disabled": False,
                    "startOfSpeechSensitivity": "START_SENSITIVITY_HIGH",
                    "endOfSpeechSensitivity": "END_SENSITIVITY_HIGH",
                    "prefixPaddingMs": 20,
                    "silenceDurationMs": 500,
                },
                "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
            },
            "inputAudioTranscription": {},
            "outputAudioTranscription": {},
            "sessionResumption": {},
            "contextWindowCompression": {"slidingWindow": {}},
        }
    }
    assert p.setup_message == msg


def test_setup_variants() -> None:
    text = make(SessionConfig(modalities=(Modality.TEXT,), temperature=0.4, max_output_tokens=9))
    (msg,) = sent(text)
    assert msg["setup"]["generationConfig"] == {
        "responseModalities": ["TEXT"],
        "temperature": 0.4,
        "maxOutputTokens": 9,
    }
    assert "outputAudioTranscription" not in msg["setup"]
    manual = make(
        SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL, threshold=0.8)),
        session_resumption=False,
        resumption_handle="Cg8xNDY",
    )
    (msg,) = sent(manual)
    assert msg["setup"]["realtimeInputConfig"] == {
        "automaticActivityDetection": {"disabled": True},
        "activityHandling": "START_OF_ACTIVITY_INTERRUPTS",
    }
    assert msg["setup"]["sessionResumption"] == {"handle": "Cg8xNDY"}
    strict = make(
        SessionConfig(turn_detection=TurnDetectionConfig(threshold=0.9, interrupt_response=False)),
        session_resumption=False,
    )
    (msg,) = sent(strict)
    detection = msg["setup"]["realtimeInputConfig"]
    assert (
        detection["automaticActivityDetection"]["startOfSpeechSensitivity"]
        == "START_SENSITIVITY_LOW"
    )
    assert detection["activityHandling"] == "NO_INTERRUPTION"
    assert "sessionResumption" not in msg["setup"]


@pytest.mark.parametrize(
    "session",
    [
        SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.SEMANTIC_VAD)),
        SessionConfig(turn_detection=TurnDetectionConfig(idle_timeout=5.0)),
        SessionConfig(turn_detection=TurnDetectionConfig(create_response=False)),
        SessionConfig(tools=(WEATHER,), tool_choice="required"),
        SessionConfig(modalities=(Modality.TEXT,), voice="Kore"),
        SessionConfig(
            tools=(
                ToolSpec(
                    name="f",
                    parameters={
                        "type": "object",
                        "properties": {"a": {"type": ["string", "integer"]}},
                    },
                ),
            )
        ),
    ],
)
def test_settings_gemini_cannot_express_fail_at_construction(session: SessionConfig) -> None:
    with pytest.raises(ConfigError):
        make(session)


def test_json_schema_conversion() -> None:
    schema = schema_from_json_schema(
        {
            "type": "object",
            "additionalProperties": False,
            "$schema": "x",
            "properties": {
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a"]}},
                "n": {"type": ["integer", "null"], "minimum": 1},
                "u": {"anyOf": [{"type": "string"}, {"type": "number"}]},
            },
        }
    )
    assert schema == {
        "type": "OBJECT",
        "properties": {
            "tags": {"type": "ARRAY", "items": {"type": "STRING", "enum": ["a"]}},
            "n": {"type": "INTEGER", "nullable": True, "minimum": 1},
            "u": {"anyOf": [{"type": "STRING"}, {"type": "NUMBER"}]},
        },
    }
    types.Schema.model_validate(schema)


def test_setup_complete_opens_and_flushes_buffered_commands_in_order() -> None:
    p = make()
    sent(p)
    p.send(SendText(text="first"))
    p.send(CreateResponse())
    p.send(SendAudio(audio=PCM))
    assert sent(p) == []
    events = feed(p, b'{"setupComplete":{"sessionId":"s-1"}}')
    echo = ConversationItem(
        item_id="gemini-client-1",
        kind=ItemKind.MESSAGE,
        role=Role.USER,
        status="completed",
        text="first",
    )
    # Gemini never echoes client turns: the protocol reports the message itself
    assert events == [
        SessionReady(session_id="s-1", model=MODEL),
        ItemAdded(item=echo),
        ItemDone(item=echo),
    ]
    assert p.state is ProtocolState.OPEN
    assert sent(p) == [
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "first"}]}],
                "turnComplete": True,
            }
        },
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": B64}}},
    ]
    assert feed(p, '{"setup_complete":{}}') == []  # repeated: ignored


# --- client messages (§3.2-§3.4) ----------------------------------------------------------


def test_text_turn_is_one_client_content_with_turn_complete() -> None:
    p = opened()
    p.send(SendText(text="Say hi in three words"))
    p.send(CreateResponse())
    assert sent(p) == [
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "Say hi in three words"}]}],
                "turnComplete": True,
            }
        }
    ]


def test_text_without_response_is_context_only() -> None:
    p = opened()
    p.send(SendText(text="Remember: blue", role=Role.SYSTEM))
    p.send(SendText(text="Noted.", role=Role.ASSISTANT))
    assert sent(p) == [
        {
            "clientContent": {
                "turns": [
                    {"role": "user", "parts": [{"text": "Remember: blue"}]},
                    {"role": "model", "parts": [{"text": "Noted."}]},
                ],
                "turnComplete": False,
            }
        }
    ]
    p.send(CreateResponse())
    assert sent(p) == [{"clientContent": {"turnComplete": True}}]
    p.send(CreateResponse())  # already asked: no second generation
    assert sent(p) == []


def test_held_text_goes_out_before_other_commands() -> None:
    p = opened()
    p.send(SendText(text="context"))
    p.send(SendAudio(audio=PCM))
    frames = sent(p)
    assert frames[0]["clientContent"]["turnComplete"] is False
    assert "realtimeInput" in frames[1]


def test_recorded_audio_message_is_inline_data() -> None:
    p = opened()
    p.send(SendAudioMessage(audio=PCM))
    p.send(CreateResponse())
    assert sent(p) == [
        {
            "clientContent": {
                "turns": [
                    {
                        "role": "user",
                        "parts": [
                            {"inlineData": {"mimeType": "audio/pcm;rate=16000", "data": B64}}
                        ],
                    }
                ],
                "turnComplete": True,
            }
        }
    ]


def test_automatic_vad_audio_and_commit_as_audio_stream_end() -> None:
    p = opened()
    p.send(SendAudio(audio=PCM))
    p.send(CommitAudio())
    p.send(CreateResponse())  # the server VAD answers by itself
    assert sent(p) == [
        {"realtimeInput": {"audio": {"mimeType": "audio/pcm;rate=16000", "data": B64}}},
        {"realtimeInput": {"audioStreamEnd": True}},
    ]


def test_manual_activity_wraps_each_turn() -> None:  # §12.7
    p = opened(SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.LOCAL_VAD)))
    p.send(CommitAudio())  # nothing sent yet: an empty activity would be refused (1007)
    assert sent(p) == []
    for _ in range(2):
        p.send(SendAudio(audio=PCM))
        p.send(SendAudio(audio=PCM))
        p.send(CommitAudio())
        p.send(CreateResponse())
        assert [next(iter(m["realtimeInput"])) for m in sent(p)] == [
            "activityStart",
            "audio",
            "audio",
            "activityEnd",
        ]
        feed(p, '{"serverContent":{"turnComplete":true}}')


def test_tool_round_trip_messages() -> None:  # §12.4
    p = opened(SessionConfig(tools=(WEATHER,)))
    events = feed(
        p,
        '{"toolCall":{"functionCalls":[{"id":"function-call-6216","name":"get_weather","args":{"city":"Paris"}}]}}',
    )
    call = next(e for e in events if isinstance(e, ToolCall))
    assert (call.call_id, call.name, json.loads(call.arguments)) == (
        "function-call-6216",
        "get_weather",
        {"city": "Paris"},
    )
    p.send(SendToolResult(call_id=call.call_id, output='{"result":{"temp_c":18,"sky":"cloudy"}}'))
    p.send(CreateResponse())  # Gemini continues after the toolResponse by itself
    assert sent(p) == [
        {
            "toolResponse": {
                "functionResponses": [
                    {
                        "id": "function-call-6216",
                        "name": "get_weather",
                        "response": {"result": {"temp_c": 18, "sky": "cloudy"}},
                    }
                ]
            }
        }
    ]
    p.send(SendToolResult(call_id=call.call_id, output="plain text"))
    (msg,) = sent(p)
    assert msg["toolResponse"]["functionResponses"][0]["response"] == {"output": "plain text"}
    with pytest.raises(ConfigError, match="unknown function call"):
        p.send(SendToolResult(call_id="nope", output="{}"))


def test_restore_items_replay_as_context_turns() -> None:
    p = opened()
    items = [
        ConversationItem(item_id="u", kind=ItemKind.MESSAGE, role=Role.USER, text="hi"),
        ConversationItem(item_id="a", kind=ItemKind.MESSAGE, role=Role.ASSISTANT, text="hello"),
        ConversationItem(
            item_id="c",
            kind=ItemKind.FUNCTION_CALL,
            call_id="fc1",
            name="get_weather",
            arguments='{"city":"Oslo"}',
        ),
        ConversationItem(
            item_id="o", kind=ItemKind.FUNCTION_CALL_OUTPUT, call_id="fc1", output='{"t":3}'
        ),
    ]
    for item in items:
        p.send(RestoreItem(item=item))
    (msg,) = sent(p)
    assert msg["clientContent"]["turnComplete"] is False
    turns = msg["clientContent"]["turns"]
    assert [t["role"] for t in turns] == ["user", "model", "model", "user"]
    assert turns[2]["parts"][0]["functionCall"] == {
        "id": "fc1",
        "name": "get_weather",
        "args": {"city": "Oslo"},
    }
    assert turns[3]["parts"][0]["functionResponse"] == {
        "id": "fc1",
        "name": "get_weather",
        "response": {"t": 3},
    }


@pytest.mark.parametrize(
    "command",
    [
        ClearAudio(),
        TruncateItem(item_id="i", audio_end=1.0),
        DeleteItem(item_id="i"),
        UpdateSession(config=SessionConfig(voice="Puck")),
        SendText(text="x", role=Role.TOOL),
        CreateResponse(instructions="shout"),
        CreateResponse(modalities=(Modality.TEXT,)),
    ],
)
def test_commands_gemini_has_no_message_for_raise_config_error(command: Any) -> None:
    p = make()
    with pytest.raises(ConfigError):
        p.send(command)  # checked even while CONNECTING
    p = opened()
    with pytest.raises(ConfigError):
        p.send(command)
    assert sent(p) == []


def test_commands_after_close_raise_invalid_state() -> None:
    p = opened()
    p.start_closing()
    with pytest.raises(InvalidState):
        p.send(SendAudio(audio=PCM))
    p.receive_close(1000, "")
    assert p.close_exc is None
    with pytest.raises(InvalidState):
        p.send(SendText(text="x"))


# --- server messages (§4, §12) ------------------------------------------------------------


def test_text_turn_transcript_12_2() -> None:
    p = opened()
    events = feed(
        p,
        audio_msg(),
        b'{"serverContent":{"outputTranscription":{"text":"Hi there,"}}}',
        audio_msg(),
        '{"serverContent":{"outputTranscription":{"text":" friend!"}}}',
        '{"serverContent":{"generationComplete":true}}',
        '{"serverContent":{"turnComplete":true},"usageMetadata":{"promptTokenCount":162,"responseTokenCount":42,"totalTokenCount":204,"promptTokensDetails":[{"modality":"TEXT","tokenCount":162}],"responseTokensDetails":[{"modality":"AUDIO","tokenCount":42}]}}',
        '{"sessionResumptionUpdate":{"newHandle":"Cg8xNDY","resumable":true}}',
    )
    r, i = "gemini-resp-1", "gemini-item-1"
    usage = Usage(
        input_tokens=162,
        output_tokens=42,
        total_tokens=204,
        input_text_tokens=162,
        output_audio_tokens=42,
    )
    done_item = ConversationItem(
        item_id=i,
        kind=ItemKind.MESSAGE,
        role=Role.ASSISTANT,
        status="completed",
        text="Hi there, friend!",
    )
    assert events == [
        ResponseStarted(response_id=r),
        ItemAdded(
            item=ConversationItem(
                item_id=i, kind=ItemKind.MESSAGE, role=Role.ASSISTANT, status="in_progress"
            )
        ),
        AudioDelta(response_id=r, item_id=i, audio=PCM),
        TranscriptDelta(role=Role.ASSISTANT, item_id=i, delta="Hi there,", response_id=r),
        AudioDelta(response_id=r, item_id=i, audio=PCM),
        TranscriptDelta(role=Role.ASSISTANT, item_id=i, delta=" friend!", response_id=r),
        AudioDone(response_id=r, item_id=i),
        TranscriptDone(
            role=Role.ASSISTANT, item_id=i, transcript="Hi there, friend!", response_id=r
        ),
        ItemDone(item=done_item),
        ResponseDone(
            response_id=r, status=ResponseStatus.COMPLETED, usage=usage, output=(done_item,)
        ),
        ResumptionUpdate(handle="Cg8xNDY", resumable=True),
    ]
    assert p.resumption_handle == "Cg8xNDY"
    assert [e.audio for e in events if isinstance(e, AudioDelta)] == [PCM, PCM]


def test_same_turn_in_snake_case_binary_frames_gives_the_same_events() -> None:
    camel, snake = opened(), opened()
    frames = [
        audio_msg(),
        '{"serverContent":{"outputTranscription":{"text":"Hi"}}}',
        '{"serverContent":{"generationComplete":true}}',
        '{"serverContent":{"turnComplete":true},"usageMetadata":{"promptTokenCount":3}}',
    ]
    snake_frames = [
        json.dumps(
            {
                "server_content": {
                    "model_turn": {
                        "parts": [
                            {"inline_data": {"mime_type": "audio/pcm;rate=24000", "data": B64}}
                        ]
                    }
                }
            }
        ).encode(),
        b'{"server_content":{"output_transcription":{"text":"Hi"}}}',
        b'{"server_content":{"generation_complete":true}}',
        b'{"server_content":{"turn_complete":true},"usage_metadata":{"prompt_token_count":3}}',
    ]
    assert feed(camel, *frames) == feed(snake, *snake_frames)


def test_text_modality_parts_and_thoughts() -> None:
    p = opened(SessionConfig(modalities=(Modality.TEXT,)))
    events = feed(
        p,
        '{"serverContent":{"modelTurn":{"parts":[{"text":"plan","thought":true},{"text":"Hi there, "},{"executableCode":{"code":"x"}}]}}}',
        '{"serverContent":{"modelTurn":{"parts":[{"text":"friend!"}]}}}',
        '{"serverContent":{"generationComplete":true}}',
        '{"serverContent":{"turnComplete":true}}',
    )
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ["Hi there, ", "friend!"]
    assert (
        TextDone(response_id="gemini-resp-1", item_id="gemini-item-1", text="Hi there, friend!")
        in events
    )
    assert not any(isinstance(e, TranscriptDone) for e in events)
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.usage is None
    assert done.output[0].text == "Hi there, friend!"


def test_audio_turn_with_input_transcription_12_3() -> None:
    p = opened(SessionConfig(input_transcription_model="default"))
    events = feed(
        p,
        '{"serverContent":{"inputTranscription":{"text":"What time"}}}',
        '{"serverContent":{"inputTranscription":{"text":" is it?"}}}',
        '{"serverContent":{},"usageMetadata":{"promptTokenCount":235,"totalTokenCount":235}}',
        audio_msg(),
        '{"serverContent":{"outputTranscription":{"text":" pm.","finished":true}}}',
        '{"serverContent":{"generationComplete":true}}',
        '{"serverContent":{"turnComplete":true},"usageMetadata":{"promptTokenCount":235,"responseTokenCount":71,"totalTokenCount":306,"promptTokensDetails":[{"modality":"TEXT","tokenCount":154},{"modality":"AUDIO","tokenCount":81}],"responseTokensDetails":[{"modality":"AUDIO","tokenCount":71}]}}',
    )
    user = [
        e for e in events if isinstance(e, TranscriptDelta | TranscriptDone) and e.role is Role.USER
    ]
    assert user == [
        TranscriptDelta(role=Role.USER, item_id="gemini-user-1", delta="What time"),
        TranscriptDelta(role=Role.USER, item_id="gemini-user-1", delta=" is it?"),
        TranscriptDone(role=Role.USER, item_id="gemini-user-1", transcript="What time is it?"),
    ]
    done = next(e for e in events if isinstance(e, ResponseDone))
    assert done.usage == Usage(
        input_tokens=235,
        output_tokens=71,
        total_tokens=306,
        input_text_tokens=154,
        input_audio_tokens=81,
        output_audio_tokens=71,
    )
    later = feed(p, '{"serverContent":{"inputTranscription":{"text":"Bye","finished":true}}}')
    assert later[-1] == TranscriptDone(role=Role.USER, item_id="gemini-user-2", transcript="Bye")


def test_tool_call_ends_the_response_and_continuation_is_a_new_one_12_4() -> None:
    p = opened(SessionConfig(tools=(WEATHER,)))
    events = feed(
        p,
        audio_msg(),
        '{"toolCall":{"functionCalls":[{"id":"function-call-6216","name":"get_weather","args":{"city":"Paris"}},{"id":"fc2","name":"get_weather"},{"id":"bad"}]}}',
    )
    kinds = [type(e) for e in events]
    assert kinds == [
        ResponseStarted,
        ItemAdded,
        AudioDelta,
        ToolCall,
        ToolCall,
        AudioDone,
        TranscriptDone,
        ItemDone,
        ResponseDone,
    ]
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [c.response_id for c in calls] == ["gemini-resp-1"] * 2
    assert calls[1].arguments == "{}"
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.status is ResponseStatus.COMPLETED
    assert [o.kind for o in done.output] == [
        ItemKind.MESSAGE,
        ItemKind.FUNCTION_CALL,
        ItemKind.FUNCTION_CALL,
    ]
    after = feed(
        p,
        audio_msg(),
        '{"serverContent":{"generationComplete":true}}',
        '{"serverContent":{"turnComplete":true},"usageMetadata":{"promptTokenCount":410,"responseTokenCount":96,"totalTokenCount":506,"toolUsePromptTokenCount":22}}',
    )
    assert after[0] == ResponseStarted(response_id="gemini-resp-2")
    last = after[-1]
    assert isinstance(last, ResponseDone)
    assert last.usage is not None
    assert last.usage.input_tokens == 432


def test_tool_call_without_content_starts_and_ends_a_response() -> None:
    p = opened()
    events = feed(p, '{"tool_call":{"function_calls":[{"id":"a","name":"f","args":{"x":1}}]}}')
    assert [type(e) for e in events] == [ResponseStarted, ToolCall, ResponseDone]


def test_barge_in_12_5() -> None:
    p = opened()
    events = feed(
        p,
        audio_msg(),
        '{"serverContent":{"interrupted":true}}',
        '{"toolCallCancellation":{"ids":["function-call-6217"]}}',
        '{"serverContent":{"turnComplete":true},"usageMetadata":{"promptTokenCount":5}}',
        '{"serverContent":{"inputTranscription":{"text":"Wait, stop."}}}',
    )
    r, i = "gemini-resp-1", "gemini-item-1"
    assert [type(e) for e in events] == [
        ResponseStarted,
        ItemAdded,
        AudioDelta,
        SpeechStarted,
        AudioDone,
        TranscriptDone,
        ItemDone,
        ResponseDone,
        ToolCallCancelled,
        TranscriptDelta,
    ]
    assert events[3] == SpeechStarted(item_id="gemini-user-1")
    done = events[7]
    assert isinstance(done, ResponseDone)
    assert (done.response_id, done.status, done.reason) == (
        r,
        ResponseStatus.CANCELLED,
        "interrupted",
    )
    assert done.output[0].status == "incomplete"
    assert events[6] == ItemDone(item=done.output[0])
    assert events[8] == ToolCallCancelled(call_ids=("function-call-6217",))
    assert events[9] == TranscriptDelta(
        role=Role.USER, item_id="gemini-user-1", delta="Wait, stop."
    )
    assert i == done.output[0].item_id


def test_interruption_we_caused_is_not_speech() -> None:
    p = opened(SessionConfig(reply_policy=ReplyPolicy.INTERRUPT))  # QUEUE would wait
    feed(p, audio_msg())
    p.send(SendText(text="new question"))
    p.send(CreateResponse())  # §3.2: any clientContent interrupts the generation
    sent(p)
    events = feed(p, '{"serverContent":{"interrupted":true}}')
    assert not any(isinstance(e, SpeechStarted) for e in events)
    assert isinstance(events[-1], ResponseDone)
    manual = opened(SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL)))
    feed(manual, audio_msg())
    assert not any(
        isinstance(e, SpeechStarted) for e in feed(manual, '{"serverContent":{"interrupted":true}}')
    )


def test_spurious_interruption_without_a_response_is_tolerated() -> None:
    p = opened()
    events = feed(
        p, '{"serverContent":{"interrupted":true}}', '{"serverContent":{"turnComplete":true}}'
    )
    assert events == [SpeechStarted(item_id="gemini-user-1")]


def test_voice_activity_messages() -> None:
    p = opened()
    events = feed(
        p,
        '{"voiceActivity":{"type":"ACTIVITY_START","audioOffset":"1.2s"}}',
        '{"voiceActivity":{"type":"ACTIVITY_END","audioOffset":"2.5s"}}',
        '{"voiceActivityDetectionSignal":{"vadSignalType":"VAD_SIGNAL_TYPE_SOS"}}',
        '{"serverContent":{"interrupted":true}}',  # speech already reported
        '{"voiceActivityDetectionSignal":{"vadSignalType":"VAD_SIGNAL_TYPE_EOS"}}',
    )
    assert events == [
        SpeechStarted(item_id="gemini-user-1", audio_start=1.2),
        SpeechStopped(item_id="gemini-user-1", audio_end=2.5),
        SpeechStarted(item_id="gemini-user-1"),
        SpeechStopped(item_id="gemini-user-1"),
    ]


def test_discarded_response_is_dropped_locally_and_ends_cancelled() -> None:
    p = opened()
    feed(p, audio_msg())
    assert p.active_response_id == "gemini-resp-1"
    assert p.discard_response() == "gemini-resp-1"
    events = feed(
        p,
        audio_msg(),
        '{"serverContent":{"outputTranscription":{"text":"rest"}}}',
        '{"toolCall":{"functionCalls":[{"id":"k","name":"f"}]}}',
    )
    assert [type(e) for e in events] == [
        ToolCall,
        AudioDone,
        TranscriptDone,
        ItemDone,
        ResponseDone,
    ]
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert (done.status, done.reason) == (ResponseStatus.CANCELLED, "client_interrupted")
    assert p.discard_response() is None
    assert isinstance(feed(p, audio_msg())[-1], AudioDelta)  # the next turn plays again


def test_cancel_response_drops_the_turn_locally_and_sends_nothing() -> None:
    p = make()
    p.send(CancelResponse())  # nothing to cancel while CONNECTING: a no-op
    p = opened()
    p.send(CancelResponse())  # no turn in progress: a no-op
    assert sent(p) == []
    feed(p, audio_msg())
    p.send(CancelResponse())
    assert sent(p) == []  # Gemini has no cancel message (§5)
    assert p.discard_response() == "gemini-resp-1"  # the turn is already being dropped
    events = feed(p, audio_msg(), '{"serverContent":{"turnComplete":true}}')
    assert AudioDelta not in [type(e) for e in events]
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert (done.status, done.reason) == (ResponseStatus.CANCELLED, "client_interrupted")


def test_go_away_resumption_and_cancellation_events() -> None:
    p = opened()
    events = feed(
        p,
        '{"goAway":{"timeLeft":"50s"}}',
        '{"session_resumption_update":{"new_handle":"","resumable":false}}',
        '{"sessionResumptionUpdate":{"newHandle":"h2","resumable":true}}',
        '{"toolCallCancellation":{"ids":[]}}',
    )
    assert events == [
        GoAway(time_left=50.0),
        ResumptionUpdate(handle=None, resumable=False),
        ResumptionUpdate(handle="h2", resumable=True),
    ]
    assert p.resumption_handle == "h2"
    p.receive_close(None, "")
    assert isinstance(p.close_exc, SessionExpired)


def test_several_top_level_keys_and_unknown_ones() -> None:
    p = opened()
    raw = b'{"serverContent":{"turnComplete":true},"usageMetadata":{"promptTokenCount":1},"brandNew":{"x":1},"goAway":{}}'
    events = feed(p, raw, '{"serverContent":{}}', "{}")
    assert events == [GoAway(time_left=None), UnknownEvent(name="brandNew", raw=raw.decode())]


@pytest.mark.parametrize("frame", ["not json", b"\xff\xfe", "[1,2]", '"text"'])
def test_malformed_frames_become_error_events(frame: str | bytes) -> None:
    p = opened()
    (event,) = feed(p, frame)
    assert isinstance(event, ProviderErrorEvent)
    assert event.code == "malformed_frame"
    assert p.state is ProtocolState.OPEN


def test_bad_inline_audio_is_reported_and_dropped() -> None:
    p = opened()
    events = feed(p, audio_msg("***"), audio_msg(base64.b64encode(b"odd").decode()))
    errors = [e for e in events if isinstance(e, ProviderErrorEvent)]
    assert [e.code for e in errors] == ["malformed_audio", "malformed_audio"]
    assert not any(isinstance(e, AudioDelta) for e in events)


# --- close codes (§9) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "exc_type", "error_code"),
    [
        (1007, "API key not valid. Please pass a valid API key.", AuthenticationFailed, None),
        (1007, "API key expired. Please renew the API key.", AuthenticationFailed, None),
        (1007, "Request contains an invalid argument.", ProviderError, "invalid_argument"),
        (
            1007,
            "Cannot extract voices from a non-audio request.",
            ProviderError,
            "invalid_argument",
        ),
        (1007, "Precondition check failed.", ProviderError, "failed_precondition"),
        (1008, "models/x is not found for API version v1beta", ProviderError, "not_found"),
        (1008, "Unsupported payload type", ProviderError, "policy_violation"),
        (
            1011,
            "You exceeded your current quota, please check your plan.",
            RateLimited,
            "resource_exhausted",
        ),
        (1011, "Internal error occurred.", ProviderError, "internal"),
        (1011, "The service is currently unavailable.", ProviderError, "unavailable"),
        (1000, "", ConnectionClosedOK, None),
        (1006, "", ConnectionClosedError, None),
        (None, "", ConnectionClosedError, None),
    ],
)
def test_close_codes_map_to_typed_exceptions(
    code: int | None, reason: str, exc_type: type[Exception], error_code: str | None
) -> None:
    p = make()
    sent(p)
    p.receive_close(code, reason)
    assert p.state is ProtocolState.CLOSED
    assert type(p.close_exc) is exc_type
    assert p.events_received() == [SessionClosed(code=code, reason=reason)]
    if isinstance(p.close_exc, ProviderError):
        assert p.close_exc.code == error_code
    assert type(close_exception(code, reason)) is exc_type
    p.receive_close(1000, "again")  # idempotent
    assert p.events_received() == []


def test_close_during_a_turn_leaves_it_to_the_link() -> None:
    p = opened()
    feed(p, audio_msg())
    p.receive_close(1011, "Internal error occurred.")
    events = p.events_received()
    assert not any(isinstance(e, ResponseDone) for e in events)  # reconnect re-requests it
    assert isinstance(events[-1], SessionClosed)
    p.receive_message(audio_msg())
    assert p.events_received() == []


def test_credentials_never_in_repr() -> None:
    p = GeminiLiveProtocol(
        url=URL + "?key=AIza-secret-123",
        headers={"x-goog-api-key": "AIza-secret-123"},
        model=MODEL,
        session=SessionConfig(),
        options=SetupOptions(resumption_handle="handle-secret"),
    )
    text = (
        repr(p) + repr(p.connect_request()) + repr(SetupOptions(resumption_handle="handle-secret"))
    )
    assert "secret" not in text
    assert repr(ResumptionUpdate(handle="handle-secret")).count("secret") == 0


# --- decoding helpers ---------------------------------------------------------------------


def test_usage_vertex_names_and_empty() -> None:
    assert parse_usage({}) is None
    assert parse_usage(None) is None
    usage = parse_usage(
        {
            "promptTokenCount": "10",
            "candidatesTokenCount": 4,
            "thoughtsTokenCount": 2,
            "cachedContentTokenCount": 6,
            "cacheTokensDetails": [{"modality": "AUDIO", "tokenCount": 6}],
            "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 4}],
        }
    )
    assert usage == Usage(
        input_tokens=10,
        output_tokens=6,
        total_tokens=16,
        input_cached_tokens=6,
        input_cached_audio_tokens=6,
        output_text_tokens=4,
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("50s", 50.0),
        ("9.5s", 9.5),
        (3, 3.0),
        ({"seconds": "2", "nanos": 500000000}, 2.5),
        ("x", None),
        (True, None),
    ],
)
def test_durations(value: object, seconds: float | None) -> None:
    assert parse_duration(value) == seconds


def test_text_output_is_refused_for_native_audio_models() -> None:
    with pytest.raises(ConfigError, match="audio only"):
        make(SessionConfig(modalities=(Modality.TEXT,)), model=MODEL)
