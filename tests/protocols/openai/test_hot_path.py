"""The OpenAI protocol's hot path (:class:`~voxengine.protocols.HotPath`) gives exactly
what the general path gives: the same events in the same order, the same frames."""

from __future__ import annotations

import base64
import json

import pytest

from tests.protocols.openai.test_protocol import SESSION_CREATED, SESSION_UPDATED, make, opened
from voxengine.commands import SendAudio, SendText
from voxengine.events import AudioDelta, ProviderErrorEvent
from voxengine.protocols import AudioTapping, HotPath, ProtocolState
from voxengine.protocols.openai._wire import Dialect
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol

PCM = bytes(range(256)) * 3 + bytes(192)


def _delta(kind: str, audio: object, **more: object) -> str:
    return json.dumps({"type": kind, "response_id": "r1", "item_id": "i1", "delta": audio, **more})


GOOD = _delta("response.output_audio.delta", base64.b64encode(PCM).decode())
FRAMES = [
    GOOD,
    GOOD.encode(),  # bytes frames decode the same
    _delta("response.audio.delta", base64.b64encode(PCM).decode()),  # beta name
    _delta("response.output_audio.delta", "###not-base64###"),
    _delta("response.output_audio.delta", base64.b64encode(b"\x01").decode()),  # odd bytes
    _delta("response.output_audio.delta", 5),
    '{"type":"response.output_audio.delta"}',
    '{"type":"response.output_audio_transcript.delta","response_id":"r1","item_id":"i1",'
    '"delta":"hi"}',
    '{"type":"response.created","response":{"id":"r2"}}',
    "not json",
    "[1, 2]",
    '{"type": 5}',
    '{"type":"brand.new"}',
]


def test_the_openai_protocol_offers_the_hot_path() -> None:
    assert isinstance(make(), HotPath)


@pytest.mark.parametrize("frame", FRAMES)
def test_receive_audio_gives_what_receive_message_gives(frame: str | bytes) -> None:
    general, hot = opened(), opened()
    general.receive_message(frame)
    expected = general.events_received()
    returned = hot.receive_audio(frame)
    got = ([returned] if returned is not None else []) + hot.events_received()
    assert got == expected
    assert hot.data_to_send() == general.data_to_send() == []
    if returned is not None:  # only an audio delta comes back, alone
        assert isinstance(returned, AudioDelta)
        assert not expected[1:]
    if "delta" in str(frame) and base64.b64encode(PCM).decode() in str(frame):
        assert returned is not None
        assert (returned.audio, returned.item_id, returned.response_id) == (PCM, "i1", "r1")


def test_malformed_audio_is_reported_not_returned() -> None:
    p = opened()
    assert p.receive_audio(_delta("response.output_audio.delta", "%%%")) is None
    [event] = p.events_received()
    assert isinstance(event, ProviderErrorEvent)
    assert event.code == "malformed_audio"


def test_receive_audio_follows_the_handshake_and_ignores_frames_once_closed() -> None:
    p = make()
    assert p.receive_audio(SESSION_CREATED) is None
    assert json.loads(p.data_to_send()[0])["type"] == "session.update"
    assert p.receive_audio(SESSION_UPDATED) is None
    assert [e.type for e in p.events_received()] == ["session.ready"]
    p.receive_close(1000, "bye")
    p.events_received()
    assert p.receive_audio(GOOD) is None
    assert p.events_received() == []


@pytest.mark.parametrize("dialect", [Dialect.GA, Dialect.BETA])
def test_encode_audio_is_the_frame_send_would_queue(dialect: Dialect) -> None:
    p = opened() if dialect is Dialect.GA else _opened_beta()
    frame = p.encode_audio(PCM)
    p.send(SendAudio(audio=PCM))
    [queued] = p.data_to_send()
    assert frame is not None
    assert frame.decode() == queued


def _opened_beta() -> OpenAIRealtimeProtocol:
    p = make(dialect=Dialect.BETA)
    p.receive_message(SESSION_CREATED)
    p.data_to_send()
    p.receive_message(SESSION_UPDATED)
    p.events_received()
    return p


def test_encode_audio_declines_before_open_and_behind_queued_frames() -> None:
    p = make()
    assert p.encode_audio(PCM) is None  # connecting: commands are buffered
    p = opened()
    p.send(SendText(text="first"))
    assert p.encode_audio(PCM) is None  # the text frame must go out first
    p.data_to_send()
    assert p.encode_audio(PCM) is not None


@pytest.mark.parametrize("frame", FRAMES)
def test_the_audio_tap_takes_exactly_the_frames_receive_audio_returns(frame: str | bytes) -> None:
    """``audio_tap`` (``AudioTapping``) takes a frame, from its raw bytes, exactly when
    ``receive_audio`` would return its audio delta, and hands on the same fields; a
    frame it declines leaves the protocol untouched (the general path then runs)."""
    data = frame.encode() if isinstance(frame, str) else frame
    expected = opened().receive_audio(frame)
    tapping = opened()
    delivered: list[tuple[str, str, bytes]] = []
    tap = tapping.audio_tap(lambda r, i, audio: delivered.append((r, i, audio)))
    took = tap(data)
    if took:  # only frames receive_audio returns, with the same fields
        assert expected is not None
        assert delivered == [(expected.response_id, expected.item_id, expected.audio)]
    else:
        assert delivered == []
    if expected is not None and expected.audio == PCM:  # every well-formed delta is taken
        assert took
    assert tapping.events_received() == []
    assert tapping.data_to_send() == []


def test_the_audio_tap_declines_invalid_utf8_and_frames_once_closed() -> None:
    p = opened()
    delivered: list[bytes] = []
    tap = p.audio_tap(lambda r, i, audio: delivered.append(audio))
    good = GOOD.encode()
    assert tap(good.replace(b"r1", b"r\xff")) is False  # not UTF-8: the general path fails it
    assert tap(memoryview(good)) is True  # websockets may hand over any bytes-like payload
    p.receive_close(1000, "bye")
    assert p.state is ProtocolState.CLOSED
    assert tap(good) is False
    assert delivered == [PCM]


def test_the_openai_protocol_offers_the_audio_tap() -> None:
    assert isinstance(make(), AudioTapping)
