"""The OpenAI protocol's hot path (:class:`~voxengine.protocols.HotPath`) gives exactly
what the general path gives: the same events in the same order, the same frames."""

from __future__ import annotations

import base64
import json

import pytest

from tests.protocols.openai.test_protocol import SESSION_CREATED, SESSION_UPDATED, make, opened
from voxengine.commands import SendAudio, SendText
from voxengine.events import AudioDelta, ProviderErrorEvent, Role, TextDelta, TranscriptDelta
from voxengine.protocols import AudioTap, AudioTapping, HotPath, ProtocolState
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
    _delta("response.output_audio.delta", "AAAAAAAA="),  # pybase64 refuses, strict binascii not
    _delta("response.output_audio.delta", base64.b64encode(b"\x01").decode()),  # odd bytes
    _delta("response.output_audio.delta", 5),
    '{"type":"response.output_audio.delta"}',
    json.dumps({"type": "response.output_audio.delta", "delta": base64.b64encode(PCM).decode()}),
    _delta("response.output_audio.delta", base64.b64encode(PCM).decode(), item_id=7),
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
        assert returned.audio == PCM
        msg = json.loads(frame)
        item_id, response_id = msg.get("item_id"), msg.get("response_id")
        assert returned.item_id == (item_id if isinstance(item_id, str) else "")
        assert returned.response_id == (response_id if isinstance(response_id, str) else "")


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


class _Recorder:
    """An ``AudioTap`` and ``TapProgress`` recording what the tap did."""

    def __init__(self, *, text: bool = False, raises: bool = False, returns: object = None):
        self.audio: list[bytes] = []
        self.text: list[str] = []
        self.failed: list[object] = []
        self.pending: list[object] = []
        self.progress_at = 0.0
        self.audio_item_id: str | None = None
        self.audio_bytes = 0
        self.raises, self.returns = raises, returns
        self.tap = AudioTap(
            self._audio, self.failed.append, self.pending.append, self._text if text else None
        )

    def _audio(self, audio: bytes) -> object:
        self.audio.append(audio)
        if self.raises:
            raise RuntimeError("callback bug")
        return self.returns

    def _text(self, delta: str) -> object:
        self.text.append(delta)
        if self.raises:
            raise RuntimeError("callback bug")
        return self.returns

    def state(self) -> tuple[float, str | None, int]:
        return (self.progress_at, self.audio_item_id, self.audio_bytes)


TEXT_FRAMES = [
    '{"type":"response.output_audio_transcript.delta","response_id":"r1","item_id":"i1",'
    '"delta":"hi"}',
    '{"type":"response.output_text.delta","response_id":"r1","item_id":"i1","delta":"yo"}',
    '{"type":"response.audio_transcript.delta","item_id":"i1","delta":"beta"}',
    '{"type":"response.text.delta","delta":"no ids"}',
    '{"type":"response.output_audio_transcript.delta","item_id":"i1","delta":5}',
    '{"type":"response.output_audio_transcript.delta","item_id":"i1"}',
    '{"type":"conversation.item.input_audio_transcription.delta","item_id":"u1",'
    '"delta":"the user"}',
]


@pytest.mark.parametrize("text", [False, True])
@pytest.mark.parametrize("frame", FRAMES + TEXT_FRAMES)
def test_the_tap_takes_exactly_what_the_general_path_hands_the_callbacks(
    frame: str | bytes, text: bool
) -> None:
    """``audio_tap`` (``AudioTapping``) takes a frame, from its raw bytes, only when the
    general path would hand its audio (or, with a text callback, its assistant text
    delta) to the application, and hands on the same data; a frame it declines
    leaves the protocol and the progress untouched (the general path then runs)."""
    data = frame.encode() if isinstance(frame, str) else frame
    general = opened()
    audio = general.receive_audio(frame)
    events = general.events_received()
    deltas = [  # what on_text_response gets of the frame
        e.delta
        for e in events
        if type(e) is TextDelta or (type(e) is TranscriptDelta and e.role is Role.ASSISTANT)
    ]
    tapping, seen = opened(), _Recorder(text=text)
    took = tapping.audio_tap(seen.tap, seen, lambda: 42.0)(data)
    if not took:
        assert (seen.audio, seen.text, seen.state()) == ([], [], (0.0, None, 0))
    elif seen.audio:
        assert audio is not None
        assert seen.audio == [audio.audio]
        assert seen.state() == (42.0, audio.item_id, len(audio.audio))
    else:
        assert text
        assert seen.text == deltas
        assert len(deltas) == 1
        assert seen.state() == (42.0, None, 0)
    if audio is not None and audio.audio == PCM:  # every well-formed delta is taken
        assert took
    if text and frame in TEXT_FRAMES[:4]:  # and every well-formed assistant text delta
        assert took
    assert tapping.events_received() == []
    assert tapping.data_to_send() == []
    assert seen.failed == seen.pending == []


def test_the_tap_counts_the_audio_of_each_item() -> None:
    p, seen = opened(), _Recorder()
    tap = p.audio_tap(seen.tap, seen, lambda: 1.0)
    assert tap(GOOD.encode())
    assert tap(GOOD.encode())
    assert seen.state() == (1.0, "i1", 2 * len(PCM))
    assert tap(GOOD.replace('"i1"', '"i2"').encode())
    assert seen.state() == (1.0, "i2", len(PCM))


@pytest.mark.parametrize("frame", [GOOD, TEXT_FRAMES[0]])
def test_a_failing_or_async_callback_is_reported_and_the_frame_still_taken(frame: str) -> None:
    p, seen = opened(), _Recorder(text=True, raises=True)
    assert p.audio_tap(seen.tap, seen, lambda: 3.0)(frame.encode()) is True
    callback = seen.tap.callback if frame is GOOD else seen.tap.text
    assert seen.failed == [callback]
    assert seen.pending == []
    assert seen.progress_at == 3.0  # the frame counts as arrived all the same
    awaitable = object.__new__(_Awaitable)
    p, seen = opened(), _Recorder(text=True, returns=awaitable)
    assert p.audio_tap(seen.tap, seen, lambda: 3.0)(frame.encode()) is True
    assert seen.pending == [awaitable]
    assert seen.failed == []


class _Awaitable:
    def __await__(self):  # type: ignore[no-untyped-def]
        yield


def test_the_audio_tap_declines_invalid_utf8_and_frames_once_closed() -> None:
    p, seen = opened(), _Recorder(text=True)
    tap = p.audio_tap(seen.tap, seen, lambda: 1.0)
    good = GOOD.encode()
    assert tap(good.replace(b"r1", b"r\xff")) is False  # not UTF-8: the general path fails it
    assert tap(memoryview(good)) is True  # websockets may hand over any bytes-like payload
    p.receive_close(1000, "bye")
    assert p.state is ProtocolState.CLOSED
    assert tap(good) is False
    assert tap(TEXT_FRAMES[0].encode()) is False
    assert seen.audio == [PCM]
    assert seen.text == []


def test_the_openai_protocol_offers_the_audio_tap() -> None:
    assert isinstance(make(), AudioTapping)
