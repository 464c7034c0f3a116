"""Sans-I/O tests of the fake OpenAI Realtime server (no sockets, no event loop).

Every server event the fake emits here is validated against the official SDK's
``RealtimeServerEvent`` union (GA; beta union for the beta dialect), which proves
the fake speaks the documented wire shapes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest
from openai.types.beta.realtime import RealtimeServerEvent as BetaServerEvent
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from voxengine.testing._faults import FakeServerError
from voxengine.testing._speechlike import silence_pcm16, tone_pcm16
from voxengine.testing.fakes.openai import (
    FakeOpenAIConfig,
    FakeOpenAIServer,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    default_responder,
)

GA_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
BETA_EVENT: TypeAdapter[Any] = TypeAdapter(BetaServerEvent)
GA_PATH = "/v1/realtime?model=gpt-realtime"
AUTH = {"authorization": "Bearer sk-test"}
BYTES_PER_SECOND = 24_000 * 2


class Peer:
    """Drives one FakeOpenAIServer like a client; validates everything it emits."""

    def __init__(
        self,
        config: FakeOpenAIConfig | None = None,
        path: str = GA_PATH,
        headers: dict[str, str] | None = None,
        *,
        manual_steps: bool = False,
    ) -> None:
        self.config = config or FakeOpenAIConfig()
        self.server = FakeOpenAIServer(self.config)
        # The WebSocket driver steps a running response from its own task; unless a test
        # steps by hand, events() lets every response run to its end first, as the driver
        # does when the client sends nothing meanwhile.
        self.manual_steps = manual_steps
        self.server.receive_connect(path, AUTH if headers is None else headers)

    def send(self, **event: Any) -> None:
        self.server.receive_message(json.dumps(event))

    def events(self) -> list[dict[str, Any]]:
        if not self.manual_steps:
            self.server.run_until_idle()
        adapter = GA_EVENT if self.config.dialect == "ga" else BETA_EVENT
        parsed = []
        for frame in self.server.data_to_send():
            event = json.loads(frame)
            model = adapter.validate_python(event)
            assert model.type == event["type"]
            assert event["event_id"].startswith("event_")
            parsed.append(event)
        return parsed

    def types(self) -> list[str]:
        return [event["type"] for event in self.events()]

    def append(self, pcm: bytes, chunk_seconds: float = 0.1) -> None:
        step = int(chunk_seconds * BYTES_PER_SECOND)
        for start in range(0, len(pcm), step):
            audio = base64.b64encode(pcm[start : start + step]).decode()
            self.send(type="input_audio_buffer.append", audio=audio)

    def user_text(self, text: str) -> None:
        self.send(
            type="conversation.item.create",
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": text}],
            },
        )


def connected(config: FakeOpenAIConfig | None = None, *, manual_steps: bool = False) -> Peer:
    peer = Peer(config, manual_steps=manual_steps)
    assert peer.types() == ["session.created"]
    return peer


def only_error(events: list[dict[str, Any]]) -> dict[str, Any]:
    assert [e["type"] for e in events] == ["error"], events
    error: dict[str, Any] = events[0]["error"]
    return error


MESSAGE_START = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
]
AUDIO_END = [
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]
AUDIO_DONE = {"response.output_audio.done", "response.output_audio_transcript.done"}


def audio_end(types: list[str]) -> list[str]:
    """``types`` with the two audio done events in AUDIO_END's order: their live order
    is not guaranteed (§9) and the fake varies it (``audio_done_order``)."""
    out = list(types)
    for index in range(len(out) - 1):
        if set(out[index : index + 2]) == AUDIO_DONE:
            out[index : index + 2] = AUDIO_END[:2]
    return out


# --- connect (§2.1, §14 items 1-2) -----------------------------------------------------------


def test_session_created_has_full_default_session() -> None:
    peer = Peer()
    (created,) = peer.events()
    session = created["session"]
    assert session["type"] == "realtime"
    assert session["id"].startswith("sess_")
    assert session["model"] == "gpt-realtime"
    assert session["output_modalities"] == ["audio"]
    assert session["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert session["expires_at"] > 0
    assert peer.server.close_to_send() is None


@pytest.mark.parametrize(
    ("path", "headers", "code", "close"),
    [
        (GA_PATH, {}, None, (3000, "invalid_request_error")),
        (
            GA_PATH,
            {"Authorization": "Bearer sk-wrong"},
            "invalid_api_key",
            (3000, "invalid_request_error.invalid_api_key"),
        ),
        (
            "/v1/realtime?model=gpt-nope",
            {"Authorization": "Bearer sk-good"},
            "invalid_model",
            (4000, "invalid_request_error.invalid_model"),
        ),
        (
            "/v1/realtime",
            {"Authorization": "Bearer sk-good"},
            "missing_model",
            (4000, "invalid_request_error.missing_model"),
        ),
        (
            GA_PATH,
            {"Authorization": "Bearer sk-good", "OpenAI-Beta": "realtime=v1"},
            "beta_api_shape_disabled",
            (4000, "invalid_request_error.beta_api_shape_disabled"),
        ),
    ],
)
def test_handshake_failures_send_error_then_close(
    path: str, headers: dict[str, str], code: str | None, close: tuple[int, str]
) -> None:
    peer = Peer(FakeOpenAIConfig(api_keys=frozenset({"sk-good"})), path=path, headers=headers)
    error = only_error(peer.events())
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert peer.server.close_to_send() == close
    peer.send(type="response.create")  # ignored once closing
    assert peer.events() == []


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/openai/v1/realtime?model=gpt-realtime", {"api-key": "sk-good"}),  # Azure GA
        (GA_PATH, {"Sec-WebSocket-Protocol": "realtime, openai-insecure-api-key.sk-good"}),
        ("/v1/realtime?model=gpt-realtime-2025-08-28", {"AUTHORIZATION": "bearer sk-good"}),
    ],
)
def test_alternative_auth_and_dated_models_accepted(path: str, headers: dict[str, str]) -> None:
    peer = Peer(FakeOpenAIConfig(api_keys=frozenset({"sk-good"})), path=path, headers=headers)
    assert peer.types() == ["session.created"]


def test_session_expiry_closes_1001() -> None:
    peer = connected()
    peer.server.expire_session()
    assert only_error(peer.events())["code"] == "session_expired"
    code, reason = peer.server.close_to_send() or (0, "")
    assert code == 1001
    assert "60 minutes" in reason


def test_receive_message_before_connect_is_a_driver_bug() -> None:
    with pytest.raises(RuntimeError):
        FakeOpenAIServer().receive_message("{}")


# --- envelope validation (§3, §10, §14 item 3) ---------------------------------------------


def test_binary_frame_invalid_json_and_unknown_type_are_recoverable() -> None:
    peer = connected()
    peer.server.receive_message(b"\x00\x01")
    assert only_error(peer.events())["code"] == "invalid_event"
    peer.server.receive_message("{not json")
    assert only_error(peer.events())["code"] == "invalid_json"
    peer.send(type="response.explode", event_id="evt_1")
    error = only_error(peer.events())
    assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "type", "evt_1")
    assert peer.server.close_to_send() is None
    peer.send(type="input_audio_buffer.clear")
    assert peer.types() == ["input_audio_buffer.cleared"]
    assert [e["type"] for e in peer.server.received] == [
        "response.explode",
        "input_audio_buffer.clear",
    ]


def test_unknown_field_in_known_event() -> None:
    peer = connected()
    peer.send(type="response.cancel", bogus=1)
    error = only_error(peer.events())
    assert (error["code"], error["param"]) == ("unknown_parameter", "bogus")


# --- session.update (§4, §14 item 4) --------------------------------------------------------


def test_session_update_requires_type() -> None:
    peer = connected()
    peer.send(type="session.update", event_id="cfg1", session={"instructions": "Hi"})
    error = only_error(peer.events())
    assert error["code"] == "missing_required_parameter"
    assert error["param"] == "session.type"
    assert error["event_id"] == "cfg1"


def test_session_update_with_unknown_field_is_discarded_entirely() -> None:
    peer = connected()
    before = json.loads(json.dumps(peer.server.session))
    peer.send(
        type="session.update",
        session={"type": "realtime", "instructions": "Be brief.", "bogus_field": True},
    )
    error = only_error(peer.events())
    assert (error["code"], error["param"]) == ("unknown_parameter", "session.bogus_field")
    assert peer.server.session == before
    peer.send(type="session.update", session={"type": "realtime", "modalities": ["text"]})
    assert only_error(peer.events())["param"] == "session.modalities"  # beta name on GA


@pytest.mark.parametrize(
    ("rate", "code"),
    [(16000, "integer_below_min_value"), (48000, "integer_above_max_value")],
)
def test_session_update_rejects_non_24k_pcm(rate: int, code: str) -> None:
    peer = connected()
    audio = {"input": {"format": {"type": "audio/pcm", "rate": rate}}}
    peer.send(type="session.update", session={"type": "realtime", "audio": audio})
    error = only_error(peer.events())
    assert (error["code"], error["param"]) == (code, "session.audio.input.format.rate")


def test_session_update_merges_and_echoes_full_session() -> None:
    peer = connected()
    peer.send(
        type="session.update",
        session={
            "type": "realtime",
            "instructions": "Be brief.",
            "audio": {
                "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}},
                "output": {"voice": "marin"},
            },
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
        },
    )
    (updated,) = peer.events()
    session = updated["session"]
    assert updated["type"] == "session.updated"
    assert session["instructions"] == "Be brief."
    assert session["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }
    detection = session["audio"]["input"]["turn_detection"]
    assert detection["silence_duration_ms"] == 500
    assert detection["prefix_padding_ms"] == 300  # defaults filled in
    assert session == peer.server.session


def test_voice_is_locked_after_audio_output() -> None:
    peer = connected()
    peer.user_text("hi")
    peer.send(type="response.create")
    peer.events()
    audio = {"output": {"voice": "cedar"}}
    peer.send(type="session.update", session={"type": "realtime", "audio": audio})
    assert only_error(peer.events())["code"] == "cannot_update_voice"


# --- text and audio turns (§9, §15.2, §15.3) ------------------------------------------------


def test_text_turn_event_order_matches_reference() -> None:
    peer = connected()
    peer.user_text("Say hi in three words")
    added, done = peer.events()
    assert (added["type"], done["type"]) == ("conversation.item.added", "conversation.item.done")
    assert added["previous_item_id"] is None
    user_id = added["item"]["id"]
    assert added["item"]["status"] == "completed"

    peer.send(type="response.create", response={"output_modalities": ["text"]})
    events = peer.events()
    types = [e["type"] for e in events]
    deltas = types.count("response.output_text.delta")
    assert deltas == len(default_responder_text("Say hi in three words").split())
    assert types == [
        *MESSAGE_START,
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    by_type = {e["type"]: e for e in events}
    assert by_type["conversation.item.added"]["previous_item_id"] == user_id
    assert by_type["response.content_part.added"]["part"] == {"type": "text", "text": ""}
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "You said: Say hi in three words"
    assert all("obfuscation" in e for e in events if e["type"].endswith(".delta"))
    assert by_type["response.output_text.done"]["text"] == text
    item = by_type["response.output_item.done"]["item"]
    assert item["content"] == [{"type": "output_text", "text": text}]
    response = by_type["response.done"]["response"]
    assert response["status"] == "completed"
    assert response["output"] == [item]
    assert response["output_modalities"] == ["text"]
    usage = response["usage"]
    assert usage["output_token_details"] == {"text_tokens": 7, "audio_tokens": 0}
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert not peer.server.response_active
    assert [i["id"] for i in peer.server.items] == [user_id, item["id"]]


def default_responder_text(text: str) -> str:
    return default_responder(FakeTurn(kind="text", text=text, audio_seconds=0, history=())).text


def test_audio_modality_interleaves_audio_and_transcript() -> None:
    peer = connected()
    peer.user_text("hello there")
    peer.events()
    peer.send(type="response.create")
    events = peer.events()
    types = [e["type"] for e in events]
    assert types[:4] == MESSAGE_START
    assert audio_end(types[-7:]) == AUDIO_END
    middle = types[4:-7]
    assert set(middle) == {
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
    }
    assert middle[0] == "response.output_audio_transcript.delta"
    words = ["You", "said:", "hello", "there"]
    assert middle.count("response.output_audio_transcript.delta") == len(words)
    chunks = [base64.b64decode(e["delta"]) for e in events if e["type"].endswith("audio.delta")]
    audio = b"".join(chunks)
    assert len(audio) == round(len(words) * 0.3 * 24000) * 2
    assert all(len(c) == int(0.1 * BYTES_PER_SECOND) for c in chunks[:-1])
    samples = np.frombuffer(audio, dtype="<i2").astype(np.float64) / 32768
    assert 0.05 < float(np.sqrt(np.mean(samples**2))) < 0.5  # speech-like level
    done = events[-2]["response"]
    assert done["usage"]["output_token_details"]["audio_tokens"] == round(len(words) * 300 / 50)
    assert events[-4]["item"]["content"][0] == {
        "type": "output_audio",
        "transcript": "You said: hello there",
    }


def test_manual_audio_turn_and_commit_empty() -> None:
    peer = connected()
    peer.send(
        type="session.update",
        session={
            "type": "realtime",
            "audio": {"input": {"turn_detection": None, "transcription": {"model": "whisper-1"}}},
        },
    )
    peer.events()
    peer.append(tone_pcm16(0.05))
    peer.send(type="input_audio_buffer.commit", event_id="c1")
    error = only_error(peer.events())
    assert (error["code"], error["event_id"]) == ("input_audio_buffer_commit_empty", "c1")
    peer.append(tone_pcm16(0.2))
    assert peer.events() == []  # no VAD events with turn_detection null
    peer.send(type="input_audio_buffer.commit")
    events = peer.events()
    assert [e["type"] for e in events] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    assert events[1]["item"]["content"] == [{"type": "input_audio", "transcript": None}]
    assert events[4]["transcript"] == "(0.2 s of audio)"
    assert not peer.server.response_active  # a manual commit creates no response
    peer.send(type="response.create", response={"output_modalities": ["text"]})
    text = "".join(e["delta"] for e in peer.events() if e["type"] == "response.output_text.delta")
    assert text == "I heard 0.2 seconds of audio."


def test_bad_audio_payloads() -> None:
    peer = connected()
    peer.send(type="input_audio_buffer.append", audio=base64.b64encode(b"abc").decode())
    assert only_error(peer.events())["code"] == "invalid_value"
    peer.send(type="input_audio_buffer.append", audio="@@not base64@@")
    assert only_error(peer.events())["param"] == "audio"


# --- server VAD (§9, §15.3, §14 item 9) ------------------------------------------------------


TRANSCRIPTION = [
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
]
VAD_COMMIT = [
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "conversation.item.added",
    "conversation.item.done",
]


@pytest.mark.parametrize("timing", ["before_response", "after_response", "random"])
def test_server_vad_turn_from_synthesized_audio(timing: Any) -> None:
    peer = connected(FakeOpenAIConfig(transcription_timing=timing))
    peer.send(
        type="session.update",
        session={
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
        },
    )
    peer.events()
    peer.append(silence_pcm16(0.5))
    assert peer.events() == []
    peer.append(tone_pcm16(1.0))
    started = peer.events()
    assert [e["type"] for e in started] == ["input_audio_buffer.speech_started"]
    assert started[0]["audio_start_ms"] == 500 - 300  # includes prefix padding
    user_id = started[0]["item_id"]
    peer.append(silence_pcm16(0.5))
    events = peer.events()
    types = [e["type"] for e in events]
    # §9: the transcription is asynchronous, anywhere after committed
    response_types = [t for t in types if t not in TRANSCRIPTION]
    assert response_types[:5] == [*VAD_COMMIT, "response.created"]
    assert response_types[-2:] == ["response.done", "rate_limits.updated"]
    first = types.index(TRANSCRIPTION[0])
    assert types[first : first + 2] == TRANSCRIPTION
    assert types.count(TRANSCRIPTION[1]) == 1
    assert first > types.index("input_audio_buffer.committed")
    if timing == "before_response":
        assert types[:7] == [*VAD_COMMIT, *TRANSCRIPTION, "response.created"]
    elif timing == "after_response":
        assert first > types.index("response.done")
    assert events[0]["audio_end_ms"] == 1500 + 200  # silence_duration_ms default 200
    assert events[1]["item_id"] == user_id
    assert events[2]["item"]["id"] == user_id
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "I heard 1.5 seconds of audio."
    assert peer.server.items[0]["content"][0]["transcript"] == "(1.5 s of audio)"
    (done,) = [e for e in events if e["type"] == "response.done"]
    assert done["response"]["usage"]["input_token_details"]["audio_tokens"] == 15  # 1500 ms / 100


def test_random_transcription_timing_is_seeded_and_takes_every_order() -> None:
    """Seeds reproduce one order; across seeds both documented orders occur (§9)."""

    def order(seed: int) -> tuple[str, ...]:
        peer = connected(FakeOpenAIConfig(seed=seed))
        peer.send(
            type="session.update",
            session={
                "type": "realtime",
                "output_modalities": ["text"],
                "audio": {"input": {"transcription": {"model": "whisper-1"}}},
            },
        )
        peer.append(tone_pcm16(1.0))
        peer.append(silence_pcm16(0.5))
        return tuple(e["type"] for e in peer.events())

    orders = [order(seed) for seed in range(12)]
    assert order(3) == orders[3]
    before = sum(o.index(TRANSCRIPTION[1]) < o.index("response.created") for o in orders)
    after = sum(o.index(TRANSCRIPTION[1]) > o.index("response.done") for o in orders)
    assert before > 0
    assert after > 0
    assert len(set(orders)) > 2


def test_quiet_audio_triggers_no_vad_events() -> None:
    peer = connected()
    rng = np.random.default_rng(0)
    hiss = (rng.normal(0, 0.005, 24_000) * 32767).astype("<i2").tobytes()
    peer.append(hiss)
    assert peer.events() == []


def test_barge_in_cancels_with_turn_detected() -> None:
    peer = connected(manual_steps=True)
    peer.user_text("tell me a long story please")
    peer.events()
    peer.send(type="response.create")
    assert peer.types()[:4] == MESSAGE_START
    peer.server.step()
    peer.server.step()
    assert set(peer.types()) == {
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
    }
    assert peer.server.response_active
    peer.append(tone_pcm16(0.2))
    events = peer.events()
    assert audio_end([e["type"] for e in events]) == [
        "input_audio_buffer.speech_started",
        *AUDIO_END,
    ]
    response = events[-2]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert response["output"][0]["status"] == "incomplete"
    assert not peer.server.response_active
    peer.server.step()  # nothing left to advance
    assert peer.events() == []


def test_inject_speech_started_helper() -> None:
    peer = connected(manual_steps=True)
    peer.user_text("hi")
    peer.send(type="response.create")
    peer.events()
    peer.server.inject_speech_started()
    assert audio_end(peer.types()) == ["input_audio_buffer.speech_started", *AUDIO_END]


# --- cancel, truncate, delete, retrieve (§5, §15.5, §14 item 8) ----------------------------


def test_response_cancel_and_active_response_errors() -> None:
    peer = connected(manual_steps=True)
    peer.send(type="response.cancel", event_id="x1")
    error = only_error(peer.events())
    assert (error["code"], error["event_id"]) == ("response_cancel_not_active", "x1")
    peer.user_text("one two three four")
    peer.send(type="response.create", response={"output_modalities": ["text"]})
    peer.events()
    peer.send(type="response.create")
    error = only_error(peer.events())
    assert error["code"] == "conversation_already_has_active_response"
    peer.server.step()
    (delta,) = peer.events()
    peer.send(type="response.cancel")
    events = peer.events()
    assert [e["type"] for e in events] == [
        "response.output_text.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert events[0]["text"] == delta["delta"] == "You"
    assert events[2]["item"]["status"] == "incomplete"
    assert events[4]["response"]["status_details"]["reason"] == "client_cancelled"


def test_paced_response_runs_to_completion_with_steps() -> None:
    peer = connected(FakeOpenAIConfig(audio_chunk_seconds=0.3), manual_steps=True)
    peer.user_text("a")  # reply "You said: a" = 3 words = 3 chunks of 0.3 s
    peer.events()
    peer.send(type="response.create")
    assert peer.types() == MESSAGE_START
    for _ in range(3):
        peer.server.step()
        assert peer.types() == [
            "response.output_audio_transcript.delta",
            "response.output_audio.delta",
        ]
    peer.server.step()
    assert audio_end(peer.types()) == AUDIO_END
    assert not peer.server.response_active


def audio_reply(peer: Peer) -> str:
    peer.user_text("hello there")
    peer.send(type="response.create")
    events = peer.events()
    item_id: str = events[-3]["item"]["id"]
    return item_id


def test_truncate_validation_and_effect() -> None:
    peer = connected()
    item_id = audio_reply(peer)  # "You said: hello there": 4 words, 1200 ms
    user_id = peer.server.items[0]["id"]
    cases = [
        ({"item_id": "item_nope", "content_index": 0, "audio_end_ms": 10}, "item_id"),
        ({"item_id": user_id, "content_index": 0, "audio_end_ms": 10}, "item_id"),
        ({"item_id": item_id, "content_index": 1, "audio_end_ms": 10}, "content_index"),
        ({"item_id": item_id, "content_index": 0, "audio_end_ms": 1201}, "audio_end_ms"),
    ]
    for fields, param in cases:
        peer.send(type="conversation.item.truncate", event_id="t", **fields)
        error = only_error(peer.events())
        assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", param, "t")
    peer.send(type="conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=500)
    (truncated,) = peer.events()
    assert truncated == {
        "type": "conversation.item.truncated",
        "event_id": truncated["event_id"],
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 500,
    }
    assert peer.server.items[1]["content"][0]["transcript"] == "You said:"
    peer.send(type="conversation.item.retrieve", item_id=item_id)
    (retrieved,) = peer.events()
    audio = base64.b64decode(retrieved["item"]["content"][0]["audio"])
    assert len(audio) == 500 * 48
    peer.send(type="conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=600)
    assert only_error(peer.events())["param"] == "audio_end_ms"


def test_delete_and_retrieve() -> None:
    peer = connected()
    peer.user_text("x")
    item_id = peer.events()[0]["item"]["id"]
    peer.send(type="conversation.item.retrieve", item_id=item_id)
    assert peer.events()[0]["item"]["content"][0]["text"] == "x"
    peer.send(type="conversation.item.delete", item_id=item_id)
    (deleted,) = peer.events()
    assert (deleted["type"], deleted["item_id"]) == ("conversation.item.deleted", item_id)
    assert peer.server.items == []
    for kind in ("conversation.item.delete", "conversation.item.retrieve"):
        peer.send(type=kind, item_id=item_id)
        assert only_error(peer.events())["param"] == "item_id"


def test_item_create_previous_item_id_and_errors() -> None:
    peer = connected()
    peer.user_text("second")
    second = peer.events()[0]["item"]["id"]
    peer.send(
        type="conversation.item.create",
        previous_item_id="root",
        item={
            "id": "mine",
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "first"}],
        },
    )
    assert peer.events()[0]["previous_item_id"] is None
    assert [i["id"] for i in peer.server.items] == ["mine", second]
    bad_items: list[tuple[dict[str, Any], str]] = [
        (
            {"type": "message", "role": "user", "content": [{"type": "output_text"}]},
            "invalid_value",
        ),
        ({"type": "message", "role": "user"}, "missing_required_parameter"),
        ({"type": "function_call_output", "call_id": "call_x", "output": "1"}, "invalid_value"),
        (
            {"type": "message", "role": "assistant", "content": [{"type": "output_audio"}]},
            "invalid_value",
        ),
        ({"type": "message", "role": "user", "content": [], "extra": 1}, "unknown_parameter"),
    ]
    for item, code in bad_items:
        peer.send(type="conversation.item.create", item=item)
        assert only_error(peer.events())["code"] == code
    peer.send(type="conversation.item.create", previous_item_id="nope", item=bad_items[1][0])
    assert only_error(peer.events())["code"] == "missing_required_parameter"


# --- function calls (§9, §15.4) -------------------------------------------------------------


def weather_responder(turn: FakeTurn) -> FakeReply:
    if turn.kind == "tool_output":
        return FakeReply(text=f"The tool returned {turn.text}.")
    return FakeReply(
        text="Let me check.",
        tool_calls=(FakeToolCall(name="get_weather", arguments='{"city":"Paris"}'),),
    )


def test_tool_call_round_trip() -> None:
    seen: list[FakeTurn] = []

    def responder(turn: FakeTurn) -> FakeReply:
        seen.append(turn)
        return weather_responder(turn)

    peer = connected(FakeOpenAIConfig(responder=responder))
    peer.user_text("What's the weather in Paris?")
    peer.events()
    peer.send(type="response.create", response={"output_modalities": ["text"]})
    events = peer.events()
    types = [e["type"] for e in events]
    call_start = types.index("response.output_item.added", 2)
    assert types[call_start:] == [
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    message_added, call_added = (e for e in events if e["type"] == "response.output_item.added")
    assert (message_added["output_index"], call_added["output_index"]) == (0, 1)
    call = call_added["item"]
    assert (call["type"], call["name"], call["arguments"]) == ("function_call", "get_weather", "")
    assert call["call_id"].startswith("call_")
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(d["delta"] for d in deltas) == '{"city":"Paris"}'
    assert all(d["call_id"] == call["call_id"] for d in deltas)
    output = events[-2]["response"]["output"]
    assert [o["type"] for o in output] == ["message", "function_call"]

    peer.send(
        type="conversation.item.create",
        item={"type": "function_call_output", "call_id": call["call_id"], "output": '{"t":18}'},
    )
    added, _ = peer.events()
    assert added["previous_item_id"] == call["id"]
    peer.send(type="response.create", response={"output_modalities": ["text"]})
    text = "".join(e["delta"] for e in peer.events() if e["type"] == "response.output_text.delta")
    assert text == 'The tool returned {"t":18}.'
    assert seen[-1].kind == "tool_output"
    assert seen[-1].text == '{"t":18}'
    assert [i["type"] for i in seen[-1].history] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
    ]


def test_tool_call_only_response_in_audio_mode() -> None:
    config = FakeOpenAIConfig(
        responder=lambda turn: FakeReply(tool_calls=(FakeToolCall(name="f", arguments="{}"),))
    )
    peer = connected(config)
    peer.user_text("go")
    peer.events()
    peer.send(type="response.create")
    types = peer.types()
    assert types[:3] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
    ]
    assert types.count("response.function_call_arguments.delta") == 2


# --- other response features (§8) -----------------------------------------------------------


def test_max_output_tokens_gives_incomplete() -> None:
    peer = connected()
    peer.user_text("one two three four five")
    peer.events()
    peer.send(
        type="response.create", response={"output_modalities": ["text"], "max_output_tokens": 3}
    )
    events = peer.events()
    response = events[-2]["response"]
    assert response["status"] == "incomplete"
    assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert response["output"][0]["content"][0]["text"] == "You said: one"


def test_out_of_band_response_does_not_touch_conversation() -> None:
    peer = connected()
    peer.user_text("x")
    peer.events()
    peer.send(
        type="response.create",
        response={
            "conversation": "none",
            "output_modalities": ["text"],
            "metadata": {"purpose": "summary"},
            "input": [
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "oob"}],
                }
            ],
        },
    )
    events = peer.events()
    assert "conversation.item.added" not in [e["type"] for e in events]
    response = events[-2]["response"]
    assert response["conversation_id"] is None
    assert response["metadata"] == {"purpose": "summary"}
    assert response["output"][0]["content"][0]["text"] == "You said: oob"
    assert len(peer.server.items) == 1


def test_responder_failure_fails_the_response() -> None:
    def responder(turn: FakeTurn) -> FakeReply:
        raise FakeServerError("server_error", "boom")

    peer = connected(FakeOpenAIConfig(responder=responder))
    peer.send(type="response.create")
    events = peer.events()
    assert [e["type"] for e in events] == [
        "response.created",
        "error",
        "response.done",
        "rate_limits.updated",
    ]
    assert events[1]["error"]["type"] == "server_error"
    assert events[2]["response"]["status"] == "failed"


def test_g711_output_format() -> None:
    peer = connected()
    audio = {"output": {"format": {"type": "audio/pcmu"}}}
    peer.send(type="session.update", session={"type": "realtime", "audio": audio})
    peer.events()
    peer.user_text("a")
    peer.send(type="response.create")
    chunks = [base64.b64decode(e["delta"]) for e in peer.events() if e["type"].endswith("o.delta")]
    assert sum(map(len, chunks)) == round(3 * 0.3 * 8000)  # 1 byte per sample at 8 kHz


# --- beta dialect (§12, §15.6) --------------------------------------------------------------


def test_beta_dialect_audio_turn() -> None:
    peer = Peer(
        FakeOpenAIConfig(dialect="beta"),
        path="/openai/realtime?api-version=x&deployment=gpt-realtime",
    )
    events = peer.events()
    assert [e["type"] for e in events] == ["session.created", "conversation.created"]
    assert events[0]["session"]["modalities"] == ["text", "audio"]
    peer.send(type="session.update", session={"voice": "echo", "input_audio_format": "pcm16"})
    assert peer.events()[0]["session"]["voice"] == "echo"
    peer.send(type="session.update", session={"type": "realtime"})
    assert only_error(peer.events())["param"] == "session.type"
    peer.user_text("hi")
    assert peer.types() == ["conversation.item.created"]
    peer.send(type="response.create")
    types = peer.types()
    assert types[:4] == [
        "response.created",
        "response.output_item.added",
        "conversation.item.created",
        "response.content_part.added",
    ]
    assert "response.audio.delta" in types
    assert "response.audio_transcript.delta" in types
    assert types[-6:] == [
        "response.audio.done",
        "response.audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    assert peer.server.items[-1]["content"][0]["type"] == "audio"


def test_record_received_off_keeps_no_log_but_behaves_the_same() -> None:
    quiet = Peer(FakeOpenAIConfig(record_received=False))
    loud = Peer()
    for peer in (quiet, loud):
        peer.events()
        peer.append(silence_pcm16(0.3))
        peer.user_text("hi there")
        peer.send(type="response.create")
    assert quiet.types() == loud.types()
    assert quiet.server.received == []
    assert [e["type"] for e in loud.server.received][-2:] == [
        "conversation.item.create",
        "response.create",
    ]


def test_ids_never_repeat_across_the_connections_of_one_server() -> None:
    def response_ids(connection: int) -> list[str]:
        server = FakeOpenAIServer(FakeOpenAIConfig(), connection=connection)
        server.receive_connect(GA_PATH, AUTH)
        server.receive_message(json.dumps({"type": "response.create"}))
        events = [json.loads(frame) for frame in server.data_to_send()]
        return [e["event_id"] for e in events] + [
            e["response"]["id"] for e in events if e["type"] == "response.created"
        ]

    first, second = response_ids(0), response_ids(1)
    assert "resp_0001" in first  # the first connection keeps the plain form
    assert "resp_2_0001" in second
    assert not set(first) & set(second)


def test_voices_are_the_services_unless_configured() -> None:
    """§4: an unknown voice is refused like a schema error; ``voices=None`` takes any."""
    peer = connected()
    audio = {"output": {"voice": "nova"}}
    peer.send(type="session.update", event_id="v1", session={"type": "realtime", "audio": audio})
    error = only_error(peer.events())
    assert (error["code"], error["param"], error["event_id"]) == (
        "invalid_value",
        "session.audio.output.voice",
        "v1",
    )
    assert "Supported values are: 'alloy'" in error["message"]
    peer.send(type="response.create", response={"audio": audio})
    assert only_error(peer.events())["param"] == "response.audio.output.voice"
    custom = {"output": {"voice": {"id": "voice_123"}}}
    peer.send(type="session.update", session={"type": "realtime", "audio": custom})
    assert peer.types() == ["session.updated"]
    anything = connected(FakeOpenAIConfig(voices=None))
    anything.send(type="session.update", session={"type": "realtime", "audio": audio})
    assert anything.types() == ["session.updated"]


def test_burst_mode_still_emits_a_whole_response_inside_the_call() -> None:
    """``paced=False`` (legacy): nothing to step; a cancel then finds nothing active."""
    peer = connected(FakeOpenAIConfig(paced=False), manual_steps=True)
    peer.user_text("hi")
    peer.send(type="response.create")
    assert peer.types()[-2:] == ["response.done", "rate_limits.updated"]
    assert not peer.server.response_active
    peer.send(type="response.cancel")
    assert only_error(peer.events())["code"] == "response_cancel_not_active"


def test_a_live_response_and_a_second_create_by_default() -> None:
    """Default (paced): response.create returns with the response live; a second one is
    refused; cancel ends it with status cancelled."""
    peer = connected(manual_steps=True)
    peer.user_text("hi")
    peer.events()
    peer.send(type="response.create")
    assert peer.types() == [*MESSAGE_START]
    assert peer.server.response_active
    peer.send(type="response.create", event_id="r2")
    error = only_error(peer.events())
    assert (error["code"], error["event_id"]) == ("conversation_already_has_active_response", "r2")
    peer.send(type="response.cancel")
    done = [e for e in peer.events() if e["type"] == "response.done"]
    assert done[0]["response"]["status"] == "cancelled"


@pytest.mark.parametrize("order", ["audio_first", "transcript_first"])
def test_audio_done_order_is_configurable(order: Any) -> None:
    peer = connected(FakeOpenAIConfig(audio_done_order=order))
    peer.user_text("hi")
    peer.events()
    peer.send(type="response.create")
    types = peer.types()
    first = min(types.index(t) for t in AUDIO_DONE)
    expected = "response.output_audio.done" if order == "audio_first" else AUDIO_END[1]
    assert types[first] == expected


def test_random_audio_done_order_varies_across_seeds() -> None:
    firsts = set()
    for seed in range(8):
        peer = connected(FakeOpenAIConfig(seed=seed))
        peer.user_text("hi")
        peer.send(type="response.create")
        types = peer.types()
        firsts.add(types[min(types.index(t) for t in AUDIO_DONE)])
    assert firsts == AUDIO_DONE
