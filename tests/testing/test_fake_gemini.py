"""The fake Gemini Live server: sans-I/O checks (§11 checklist) and its loopback runner.

Every server message the fake produces is validated against ``google-genai``'s
``LiveServerMessage``; the official SDK itself is run against the TLS runner.
"""

from __future__ import annotations

import asyncio
import base64
import json
import weakref
from typing import Any

import pytest
from google import genai
from google.genai import types

from voxengine.commands import CommitAudio, CreateResponse, SendAudio, SendText
from voxengine.config import SessionConfig, ToolSpec, TurnDetection, TurnDetectionConfig
from voxengine.events import (
    AudioDelta,
    ResponseDone,
    ResponseStatus,
    Role,
    SpeechStarted,
    ToolCall,
    ToolCallCancelled,
    TranscriptDone,
)
from voxengine.protocols.gemini.protocol import GeminiLiveProtocol
from voxengine.testing import FakeReply, FakeToolCall, FakeTurn, synthesize_speech
from voxengine.testing.fakes.gemini import (
    FakeGeminiConfig,
    FakeGeminiServer,
    FakeGeminiSessions,
    run_fake_gemini_server,
)

PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
SETUP = {
    "setup": {"model": f"models/{MODEL}", "generationConfig": {"responseModalities": ["AUDIO"]}}
}


#: Servers a test steps by hand; the others run every turn to its end before their
#: messages are read, as the WebSocket driver does when the client sends nothing meanwhile.
MANUAL_STEPS: weakref.WeakSet[FakeGeminiServer] = weakref.WeakSet()


def server_messages(server: FakeGeminiServer) -> list[dict[str, Any]]:
    if server not in MANUAL_STEPS:
        server.run_until_idle()
    out = []
    for frame in server.data_to_send():
        assert isinstance(frame, bytes)  # §1: binary frames like the real server
        types.LiveServerMessage.model_validate_json(frame)
        out.append(json.loads(frame))
    return out


def connected(config: FakeGeminiConfig | None = None, **kwargs: Any) -> FakeGeminiServer:
    server = FakeGeminiServer(config or FakeGeminiConfig(), **kwargs)
    server.receive_connect(PATH, {"X-Goog-Api-Key": "k"})
    return server


def opened(
    setup: dict[str, Any] | None = None, config: FakeGeminiConfig | None = None
) -> FakeGeminiServer:
    server = connected(config)
    server.receive_message(json.dumps(setup or SETUP))
    assert server_messages(server) == [{"setupComplete": {}}]
    return server


def send(server: FakeGeminiServer, msg: dict[str, Any]) -> list[dict[str, Any]]:
    server.receive_message(json.dumps(msg))
    return server_messages(server)


def audio(pcm: bytes) -> dict[str, Any]:
    return {
        "realtimeInput": {
            "audio": {"mimeType": "audio/pcm;rate=16000", "data": base64.b64encode(pcm).decode()}
        }
    }


# --- connection and setup (§11 items 1-3) ---------------------------------------------


@pytest.mark.parametrize(
    ("path", "headers", "close"),
    [
        (PATH, {}, (1007, "API key not valid. Please pass a valid API key.")),
        (
            PATH,
            {"x-goog-api-key": "wrong"},
            (1007, "API key not valid. Please pass a valid API key."),
        ),
        (PATH + "?key=good", {}, None),
        (PATH.replace("v1beta", "v1"), {"x-goog-api-key": "good"}, None),
        ("/ws/other", {"x-goog-api-key": "good"}, (1008, "Requested entity was not found.")),
    ],
)
def test_endpoint_and_key(
    path: str, headers: dict[str, str], close: tuple[int, str] | None
) -> None:
    server = FakeGeminiServer(FakeGeminiConfig(api_keys=frozenset({"good"})))
    server.receive_connect(path, headers)
    if close is None or close[0] == 1007:  # the key is checked in-band, at the setup
        assert server.close_to_send() is None
        server.receive_message(json.dumps(SETUP))
    assert server.close_to_send() == close


@pytest.mark.parametrize(
    ("messages", "code", "reason"),
    [
        ([{"clientContent": {"turnComplete": True}}], 1007, "invalid argument"),
        ([SETUP, SETUP], 1007, "invalid argument"),
        ([{"setup": {"model": "models/nope"}}], 1008, "is not found for API version v1beta"),
        ([{"setup": {"model": f"models/{MODEL}", "bogus": 1}}], 1007, 'Unknown name "bogus"'),
        (
            [
                {
                    "setup": {
                        "model": f"models/{MODEL}",
                        "generationConfig": {"responseModalities": ["TEXT"]},
                    }
                }
            ],
            1007,
            "Cannot extract voices",
        ),
        ([{"setup": {"model": f"models/{MODEL}"}, "clientContent": {}}], 1007, "invalid argument"),
        (
            [{"setup": {"model": f"models/{MODEL}", "sessionResumption": {"handle": "unknown"}}}],
            1007,
            "invalid argument",
        ),
        ([SETUP, {"realtimeInput": {"activityStart": {}}}], 1007, "automatic activity detection"),
        (
            [SETUP, {"realtimeInput": {"text": "a", "audioStreamEnd": True}}],
            1007,
            "invalid argument",
        ),
        (
            [SETUP, {"toolResponse": {"functionResponses": [{"name": "f", "response": {}}]}}],
            1007,
            "invalid",
        ),
        (
            [SETUP, {"toolResponse": {"functionResponses": [{"id": "x", "name": "f"}]}}],
            1008,
            "does not match",
        ),
        ([SETUP, {"surprise": {}}], 1007, 'Unknown name "surprise"'),
    ],
)
def test_invalid_client_messages_close_with_the_real_codes(
    messages: list[dict[str, Any]], code: int, reason: str
) -> None:
    server = connected()
    assert server.close_to_send() is None
    for msg in messages:
        server.receive_message(json.dumps(msg))
    closing = server.close_to_send()
    assert closing is not None
    assert closing[0] == code
    assert reason.lower() in closing[1].lower()
    server.receive_message(json.dumps(SETUP))  # ignored once closing
    assert server.close_to_send() == closing


def test_not_json_closes_1007() -> None:
    server = connected()
    server.receive_message(b"\x00garbage")
    assert server.close_to_send() == (1007, "Invalid JSON payload received.")


def test_sdk_mix_of_casings_is_accepted() -> None:
    # gemini-live.md §1: exactly what google-genai 3.4 put on the wire.
    server = opened(
        {
            "setup": {
                "model": f"models/{MODEL}",
                "generationConfig": {
                    "responseModalities": ["AUDIO"],
                    "speechConfig": {
                        "voice_config": {"prebuilt_voice_config": {"voice_name": "Kore"}}
                    },
                },
                "systemInstruction": {"parts": [{"text": "Be brief."}], "role": "user"},
                "tools": [
                    {
                        "functionDeclarations": [
                            {
                                "description": "w",
                                "name": "get_weather",
                                "parameters": {
                                    "properties": {"city": {"type": "STRING"}},
                                    "type": "OBJECT",
                                },
                            }
                        ]
                    }
                ],
                "sessionResumption": {},
                "inputAudioTranscription": {},
                "outputAudioTranscription": {},
                "realtimeInputConfig": {
                    "automatic_activity_detection": {"disabled": False, "silence_duration_ms": 500}
                },
            }
        }
    )
    assert (
        server.setup["realtimeInputConfig"]["automaticActivityDetection"]["silenceDurationMs"]
        == 500
    )
    replies = send(
        server,
        {
            "client_content": {
                "turns": [{"parts": [{"text": "hi"}], "role": "user"}],
                "turnComplete": True,
            }
        },
    )
    assert replies[-2]["serverContent"]["turnComplete"] is True
    assert "newHandle" in replies[-1]["sessionResumptionUpdate"]


# --- turns (§11 items 5-9, §12) -------------------------------------------------------------


def test_text_turn_sequence() -> None:
    server = opened(
        {"setup": {**SETUP["setup"], "outputAudioTranscription": {}, "sessionResumption": {}}}
    )
    replies = send(
        server,
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "Hello"}]}],
                "turnComplete": True,
            }
        },
    )
    keys = [
        next(iter(m["serverContent"])) if "serverContent" in m else next(iter(m)) for m in replies
    ]
    assert keys[0] == "modelTurn"
    assert "outputTranscription" in keys
    assert keys[-3:] == ["generationComplete", "turnComplete", "sessionResumptionUpdate"]
    audio_bytes = b"".join(
        base64.b64decode(m["serverContent"]["modelTurn"]["parts"][0]["inlineData"]["data"])
        for m in replies
        if "modelTurn" in m.get("serverContent", {})
    )
    assert len(audio_bytes) == round(0.3 * 24_000) * 2 * 3  # three words, 24 kHz PCM16
    spoken = "".join(
        m["serverContent"]["outputTranscription"]["text"]
        for m in replies
        if "outputTranscription" in m.get("serverContent", {})
    )
    assert spoken == "You said: Hello"
    usage = replies[-2]["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["responseTokenCount"]
    assert usage["responseTokensDetails"] == [
        {"modality": "AUDIO", "tokenCount": usage["responseTokenCount"]}
    ]
    assert server.history[-1] == {"role": "model", "parts": [{"text": "You said: Hello"}]}


def test_text_modality_and_text_frames() -> None:
    server = FakeGeminiServer(FakeGeminiConfig(binary_frames=False))
    server.receive_connect(PATH, {"x-goog-api-key": "k"})
    server.receive_message(
        json.dumps(
            {
                "setup": {
                    "model": "models/gemini-2.0-flash-live-001",
                    "generationConfig": {"responseModalities": ["TEXT"]},
                }
            }
        )
    )
    server.receive_message(json.dumps({"realtimeInput": {"text": "ping"}}))
    server.run_until_idle()
    frames = server.data_to_send()
    assert all(isinstance(f, str) for f in frames)
    texts = [
        json.loads(f)["serverContent"]["modelTurn"]["parts"][0]["text"]
        for f in frames
        if "modelTurn" in f
    ]
    assert "".join(texts) == "You said: ping"


def test_context_then_turn_complete() -> None:
    seen: list[FakeTurn] = []

    def responder(turn: FakeTurn) -> FakeReply:
        seen.append(turn)
        return FakeReply(text="ok")

    server = opened(config=FakeGeminiConfig(responder=responder))
    assert (
        send(server, {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "a"}]}]}})
        == []
    )
    send(server, {"clientContent": {"turnComplete": True}})
    assert seen[0].kind == "text"
    assert seen[0].text == "a"


def test_server_vad_on_16khz_audio_with_input_transcription() -> None:
    server = opened({"setup": {**SETUP["setup"], "inputAudioTranscription": {}}})
    speech = synthesize_speech("what time is it", sample_rate=16_000)
    silence = bytes(16_000 * 2)
    replies: list[dict[str, Any]] = []
    for pcm in (speech, silence):
        for start in range(0, len(pcm), 3200):
            replies += send(server, audio(pcm[start : start + 3200]))
    # 4 words of 0.3 s (the last one's tone ends at 1.125 s) + 0.5 s of silence to end it
    assert replies[0] == {"serverContent": {"inputTranscription": {"text": "(1.6 s of audio)"}}}
    assert any("modelTurn" in m.get("serverContent", {}) for m in replies)
    assert server.history[0]["parts"][0]["audioSeconds"] == pytest.approx(1.63, abs=0.02)


def _speech_turn(server: FakeGeminiServer, encode: Any, rate: int) -> list[dict[str, Any]]:
    speech = synthesize_speech("what time is it", sample_rate=rate)
    silence = bytes(rate * 2)
    replies: list[dict[str, Any]] = []
    step = rate // 10 * 2
    for pcm in (speech, silence):
        for start in range(0, len(pcm), step):
            blob = {"mimeType": f"audio/pcm;rate={rate}", "data": encode(pcm[start : start + step])}
            replies += send(server, {"realtimeInput": {"audio": blob}})
    return replies


@pytest.mark.parametrize(
    "encode",
    [
        lambda b: base64.b64encode(b).decode(),
        lambda b: base64.urlsafe_b64encode(b).decode(),  # what google-genai sends
        lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="),
        lambda b: base64.b64encode(b).decode().rstrip("="),
    ],
    ids=["standard", "url-safe", "url-safe-unpadded", "standard-unpadded"],
)
@pytest.mark.parametrize("rate", [16_000, 24_000, 48_000, 8_000])
def test_audio_in_any_base64_alphabet_and_any_pcm_rate(encode: Any, rate: int) -> None:
    """proto3 JSON takes both base64 alphabets, padded or not; other rates are resampled."""
    server = opened({"setup": {**SETUP["setup"], "inputAudioTranscription": {}}})
    replies = _speech_turn(server, encode, rate)
    assert server.close_to_send() is None
    assert replies[0] == {"serverContent": {"inputTranscription": {"text": "(1.6 s of audio)"}}}
    assert server.history[0]["parts"][0]["audioSeconds"] == pytest.approx(1.63, abs=0.04)


@pytest.mark.parametrize(
    ("mime", "data"),
    [
        ("audio/pcm;rate=16000", "a"),  # a single base64 character is never valid
        ("audio/pcm;rate=16000", "AA*A"),
        ("audio/pcm;rate=16000", "AA"),  # one byte: not PCM16
        ("audio/pcm;rate=100", "AAAA"),
        ("audio/opus", "AAAA"),
    ],
)
def test_invalid_audio_blob_closes_1007(mime: str, data: str) -> None:
    server = opened()
    send(server, {"realtimeInput": {"audio": {"mimeType": mime, "data": data}}})
    closing = server.close_to_send()
    assert closing is not None
    assert closing[0] == 1007


def test_audio_stream_end_flushes_the_user_turn() -> None:
    server = opened()
    send(server, audio(synthesize_speech("hello there", sample_rate=16_000)))
    replies = send(server, {"realtimeInput": {"audioStreamEnd": True}})
    assert replies[-1]["serverContent"] == {"turnComplete": True}


def test_manual_activity() -> None:
    manual = {
        "setup": {
            **SETUP["setup"],
            "realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}},
        }
    }
    server = opened(manual)
    speech = synthesize_speech("hi", sample_rate=16_000)
    assert send(server, audio(speech)) == []  # §3.3: outside an activity: ignored
    send(server, {"realtimeInput": {"activityStart": {}}})
    send(server, audio(speech))
    replies = send(server, {"realtimeInput": {"activityEnd": {}}})
    assert replies[-1]["serverContent"] == {"turnComplete": True}
    assert server.history[0]["parts"][0]["audioSeconds"] == pytest.approx(0.3)
    # an empty activity: turnComplete, then 1007 "Precondition check failed." (§3.3)
    server = opened(manual)
    send(server, {"realtimeInput": {"activityStart": {}}})
    assert send(server, {"realtimeInput": {"activityEnd": {}}}) == [
        {"serverContent": {"turnComplete": True}}
    ]
    assert server.close_to_send() == (1007, "Precondition check failed.")


def test_paced_barge_in_by_speech() -> None:
    server = connected()
    MANUAL_STEPS.add(server)
    send(server, SETUP)
    send(
        server,
        {
            "clientContent": {
                "turns": [{"role": "user", "parts": [{"text": "tell me a long story"}]}],
                "turnComplete": True,
            }
        },
    )
    assert server.response_active
    server.step()
    server.step()
    assert len(server_messages(server)) == 2
    replies = send(server, audio(synthesize_speech("stop", sample_rate=16_000)))
    assert replies[0] == {"serverContent": {"interrupted": True}}
    assert replies[1]["serverContent"] == {"turnComplete": True}
    assert not server.response_active
    server.step()  # idle: no-op
    assert server_messages(server) == []
    assert server.history[-1]["role"] == "model"


def test_tool_call_blocks_until_the_response_and_is_cancelled_by_barge_in() -> None:
    def responder(turn: FakeTurn) -> FakeReply:
        if turn.kind == "tool_output":
            return FakeReply(text=f"It is {json.loads(turn.text)['t']} degrees.")
        return FakeReply(
            tool_calls=(FakeToolCall(name="get_weather", arguments='{"city":"Paris"}'),)
        )

    server = opened(config=FakeGeminiConfig(responder=responder))
    replies = send(server, {"realtimeInput": {"text": "weather?"}})
    assert replies == [
        {
            "toolCall": {
                "functionCalls": [
                    {"id": "function-call-1", "name": "get_weather", "args": {"city": "Paris"}}
                ]
            }
        }
    ]
    assert not server.response_active  # waiting for the toolResponse
    replies = send(
        server,
        {
            "tool_response": {
                "function_responses": [
                    {"id": "function-call-1", "name": "get_weather", "response": {"t": 18}}
                ]
            }
        },
    )
    assert replies[-1]["serverContent"] == {"turnComplete": True}
    assert server.history[-1] == {"role": "model", "parts": [{"text": "It is 18 degrees."}]}
    send(server, {"realtimeInput": {"text": "again"}})
    replies = send(server, audio(synthesize_speech("no wait", sample_rate=16_000)))
    assert replies[:3] == [
        {"serverContent": {"interrupted": True}},
        {"toolCallCancellation": {"ids": ["function-call-2"]}},
        replies[2],
    ]
    assert replies[2]["serverContent"] == {"turnComplete": True}


def test_resumption_by_handle_across_connections() -> None:
    sessions = FakeGeminiSessions()
    first = connected(sessions=sessions)
    first.receive_message(json.dumps({"setup": {**SETUP["setup"], "sessionResumption": {}}}))
    first.receive_message(json.dumps({"realtimeInput": {"text": "remember 42"}}))
    handle = server_messages(first)[-1]["sessionResumptionUpdate"]["newHandle"]
    second = connected(sessions=sessions)
    second.receive_message(
        json.dumps({"setup": {**SETUP["setup"], "sessionResumption": {"handle": handle}}})
    )
    assert server_messages(second) == [{"setupComplete": {}}]
    assert second.resumed_from == handle
    assert second.history == first.history


def test_go_away_close_and_responder_failure() -> None:
    server = opened()
    server.go_away(50)
    assert server_messages(server) == [{"goAway": {"timeLeft": "50s"}}]
    server.close(1000, "bye")
    assert server.close_to_send() == (1000, "bye")

    def broken(turn: FakeTurn) -> FakeReply:
        raise ValueError("boom")

    server = opened(config=FakeGeminiConfig(responder=broken))
    send(server, {"realtimeInput": {"text": "x"}})
    assert server.close_to_send() == (1011, "Internal error occurred.")
    assert isinstance(server.responder_errors[0], ValueError)


def test_driver_misuse() -> None:
    server = FakeGeminiServer()
    with pytest.raises(RuntimeError):
        server.receive_message("{}")
    server.receive_connect(PATH, {"x-goog-api-key": "k"})
    with pytest.raises(RuntimeError):
        server.receive_connect(PATH, {})
    server.receive_close()
    server.receive_message(json.dumps(SETUP))
    assert server.data_to_send() == []
    with pytest.raises(ValueError, match="positive"):
        FakeGeminiConfig(seconds_per_word=0)


# --- the client protocol against the fake, in memory --------------------------------------


def pump(protocol: GeminiLiveProtocol, server: FakeGeminiServer) -> list[Any]:
    """Exchange frames, one server step per round (as the driver interleaves them)."""
    for _ in range(10_000):
        out = protocol.data_to_send()
        for frame in out:
            server.receive_message(frame)
        server.step()
        back = server.data_to_send()
        for frame in back:
            protocol.receive_message(frame)
        if not out and not back and not server.response_active:
            break
    return protocol.events_received()


def test_protocol_and_fake_pair_in_memory() -> None:
    def responder(turn: FakeTurn) -> FakeReply:
        if turn.kind == "text" and "weather" in turn.text:
            return FakeReply(
                text="Checking.", tool_calls=(FakeToolCall(name="get_weather", arguments="{}"),)
            )
        from voxengine.testing import default_responder

        return default_responder(turn)

    protocol = GeminiLiveProtocol(
        url="ws://x" + PATH,
        headers={"x-goog-api-key": "k"},
        model=MODEL,
        session=SessionConfig(
            tools=(ToolSpec(name="get_weather"),),
            input_transcription_model="x",
            turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL),
        ),
    )
    server = connected(FakeGeminiConfig(responder=responder))
    protocol.send(SendAudio(audio=synthesize_speech("hello", sample_rate=16_000)))
    protocol.send(CommitAudio())
    events = pump(protocol, server)
    assert any(isinstance(e, TranscriptDone) and e.role is Role.USER for e in events)
    assert any(isinstance(e, ResponseDone) for e in events)
    protocol.send(SendText(text="weather?"))
    protocol.send(CreateResponse())
    events = pump(protocol, server)
    (call,) = [e for e in events if isinstance(e, ToolCall)]
    # a new activity interrupts the turn that waits for the tool: the call is cancelled
    protocol.send(SendAudio(audio=synthesize_speech("no", sample_rate=16_000)))
    events = pump(protocol, server)
    assert ToolCallCancelled(call_ids=(call.call_id,)) in events
    assert not any(isinstance(e, SpeechStarted) for e in events)
    protocol.send(CommitAudio())
    events = pump(protocol, server)
    done = [e for e in events if isinstance(e, ResponseDone)]
    assert done[-1].status is ResponseStatus.COMPLETED
    assert sum(len(e.audio) for e in events if isinstance(e, AudioDelta)) > 0


# --- the loopback runner, plain and TLS -----------------------------------------------------


async def test_runner_serves_binary_frames_and_the_official_sdk_over_tls() -> None:
    async with run_fake_gemini_server(tls=True) as handle:
        assert handle.url.startswith("wss://127.0.0.1:")
        assert handle.ssl_context is not None
        client = genai.Client(
            api_key="sdk-key",
            http_options=types.HttpOptions(
                base_url=handle.url.replace("wss://", "https://"),
                api_version="v1beta",
                async_client_args={"ssl": handle.ssl_context},
            ),
        )
        config = types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            output_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig(),
        )
        transcript = []
        pcm = b""
        async with client.aio.live.connect(model=MODEL, config=config) as session:
            await session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="Hello SDK")]),
                turn_complete=True,
            )
            async for message in session.receive():
                content = message.server_content
                if content is not None and content.output_transcription is not None:
                    transcript.append(content.output_transcription.text or "")
                if message.data:
                    pcm += message.data
                if content is not None and content.turn_complete:
                    break
        assert "".join(transcript) == "You said: Hello SDK"
        assert len(pcm) > 24_000
        (fake,) = handle.connections
        assert fake.api_version == "v1beta"
        assert "clientContent" in fake.received[1] or "client_content" in fake.received[1]


async def test_runner_paced_plain_ws() -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError

    async with run_fake_gemini_server(FakeGeminiConfig(paced=True), pace_seconds=0.005) as handle:
        async with connect(handle.live_url(), additional_headers={"x-goog-api-key": "k"}) as ws:
            await ws.send(json.dumps(SETUP))
            assert json.loads(await ws.recv()) == {"setupComplete": {}}
            await ws.send(json.dumps({"realtimeInput": {"text": "hi"}}))
            kinds = []
            while True:
                frame = await asyncio.wait_for(ws.recv(), 5)
                assert isinstance(frame, bytes)
                msg = json.loads(frame)
                kinds.append(next(iter(msg)))
                if msg.get("serverContent", {}).get("turnComplete"):
                    break
            assert kinds.count("serverContent") > 3
        async with connect(handle.live_url()) as ws:  # no key
            await ws.send(json.dumps(SETUP))  # the upgrade succeeds; the key is refused in-band
            with pytest.raises(ConnectionClosedError, match="1007"):
                await ws.recv()
