"""MediaStream: the carrier-independent logic (μ-law, resampling, framing, marks, clear).

Pure and sync, driven with Twilio's frames: feed frames, assert events and frames out.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from voxengine.audio import pcm16_to_ulaw, rms
from voxengine.errors import ConfigError, InvalidState
from voxengine.serve.telephony import (
    CallerAudio,
    CarrierFrameError,
    DtmfReceived,
    MediaStream,
    PlayedUpTo,
    StreamStarted,
    StreamStopped,
    TwilioSerializer,
)

SID = "MZ00000000000000000000000000000001"


def start(sid: str = SID, encoding: str = "audio/x-mulaw", rate: int = 8000) -> str:
    fmt = {"encoding": encoding, "sampleRate": rate, "channels": 1}
    body = {"streamSid": sid, "callSid": "CA1", "mediaFormat": fmt, "customParameters": {}}
    return json.dumps({"event": "start", "streamSid": sid, "start": body})


def media(ulaw: bytes, sid: str = SID, timestamp_ms: int = 0) -> str:
    payload = base64.b64encode(ulaw).decode()
    body = {"track": "inbound", "timestamp": str(timestamp_ms), "payload": payload}
    return json.dumps({"event": "media", "streamSid": sid, "media": body})


def mark(name: str) -> str:
    return json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": name}})


def tone(seconds: float, rate: int, hz: float = 440.0) -> bytes:
    t = np.arange(round(seconds * rate)) / rate
    return (np.sin(2 * np.pi * hz * t) * 12000).astype("<i2").tobytes()


def opened(**kwargs: object) -> MediaStream:
    stream = MediaStream(TwilioSerializer(), input_rate=16_000, output_rate=24_000, **kwargs)  # type: ignore[arg-type]
    assert stream.receive_frame(json.dumps({"event": "connected", "protocol": "Call"})) == []
    [started] = stream.receive_frame(start())
    assert isinstance(started, StreamStarted)
    assert stream.started == started
    return stream


def sent(frames: list[str | bytes]) -> list[dict[str, object]]:
    return [json.loads(f) for f in frames]


def test_caller_audio_is_decoded_and_upsampled_without_delay() -> None:
    stream = opened()
    voice = tone(1.0, 8000)
    out = bytearray()
    for i in range(50):
        chunk = pcm16_to_ulaw(voice[i * 320 : (i + 1) * 320])
        events = stream.receive_frame(media(chunk, timestamp_ms=20 * i))
        for event in events:
            assert isinstance(event, CallerAudio)
            assert event.timestamp == pytest.approx(0.02 * i)
            out += event.pcm
    # 16 kHz now, and nothing held back: every frame's audio came out with it
    assert len(out) == 32_000
    assert rms(bytes(out)) == pytest.approx(rms(voice), rel=0.05)


def test_reply_audio_is_framed_with_a_mark_after_each_chunk() -> None:
    stream = opened()
    frames = sent(stream.send_audio(tone(0.5, 24_000)) + stream.flush())
    kinds = [f["event"] for f in frames]
    assert kinds == ["media", "mark"] * (len(kinds) // 2)
    payloads = [base64.b64decode(f["media"]["payload"]) for f in frames[::2]]  # type: ignore[index]
    assert all(len(p) == 160 for p in payloads[:-1])  # 20 ms of 8 kHz μ-law
    # the reply, and at its end (flush) the resampling filter's 3 ms ring-out
    assert sum(map(len, payloads)) == 4000 + 25
    assert stream.sent_seconds == pytest.approx(0.503, abs=0.001)
    assert stream.played_seconds == 0.0
    names = [f["mark"]["name"] for f in frames[1::2]]  # type: ignore[index]
    assert len(set(names)) == len(names)
    assert all(f["streamSid"] == SID for f in frames)


def test_partial_sends_leave_at_once_and_whole_frames_wait() -> None:
    stream = opened()
    # 30 ms at 24 kHz: one whole 20 ms frame; the 10 ms remainder waits...
    assert [f["event"] for f in sent(stream.send_audio(tone(0.03, 24_000)))] == ["media", "mark"]
    # ...unless the sender asks for no added delay: then it leaves as a shorter frame
    frames = sent(stream.send_audio(tone(0.01, 24_000), partial=True))
    sizes = [len(base64.b64decode(f["media"]["payload"])) for f in frames[::2]]  # type: ignore[index]
    assert sizes == [160]  # the waiting 10 ms and these 10 ms
    assert stream.sent_seconds == pytest.approx(0.04)


def test_mark_acks_move_the_played_position() -> None:
    stream = opened()
    frames = sent(stream.send_audio(tone(0.2, 24_000)) + stream.flush())
    names = [f["mark"]["name"] for f in frames if f["event"] == "mark"]  # type: ignore[index]
    assert stream.receive_frame(mark(names[0])) == [PlayedUpTo(seconds=pytest.approx(0.02))]
    # acks come in order: a later one implies the earlier ones
    assert stream.receive_frame(mark(names[4])) == [PlayedUpTo(seconds=pytest.approx(0.1))]
    for name in (names[2], names[1], names[3]):  # already implied: owed, and ignored
        assert stream.receive_frame(mark(name)) == []
    with pytest.raises(CarrierFrameError, match="never sent"):
        stream.receive_frame(mark("not-ours"))
    assert stream.queued_seconds == pytest.approx(0.103, abs=0.001)  # + the 3 ms ring-out
    assert stream.marks_received == 5


def test_clear_drops_the_queue_and_the_acks_for_it() -> None:
    stream = opened()
    frames = sent(stream.send_audio(tone(0.3, 24_000)))
    names = [f["mark"]["name"] for f in frames if f["event"] == "mark"]  # type: ignore[index]
    for name in names[:3]:
        stream.receive_frame(mark(name))
    assert sent(stream.clear()) == [{"event": "clear", "streamSid": SID}]
    assert stream.played_seconds == pytest.approx(0.06)
    assert stream.sent_seconds == stream.played_seconds
    # Twilio acknowledges every pending mark at once after a clear: none was heard
    for name in names[3:]:
        assert stream.receive_frame(mark(name)) == []
    assert stream.played_seconds == pytest.approx(0.06)
    with pytest.raises(CarrierFrameError, match="never sent"):  # one ack too many
        stream.receive_frame(mark(names[3]))
    # the next reply continues the timeline from the played position
    frames = sent(stream.send_audio(tone(0.1, 24_000)) + stream.flush())
    last = [f["mark"]["name"] for f in frames if f["event"] == "mark"][-1]  # type: ignore[index]
    # 0.06 heard, then the 0.1 s reply and its 3 ms ring-out
    assert stream.receive_frame(mark(last)) == [PlayedUpTo(seconds=pytest.approx(0.163, abs=0.001))]


def test_dtmf_and_stop() -> None:
    stream = opened()
    dtmf = json.dumps({"event": "dtmf", "streamSid": SID, "dtmf": {"digit": "5"}})
    assert stream.receive_frame(dtmf) == [DtmfReceived(digit="5")]
    assert stream.receive_frame(json.dumps({"event": "stop", "streamSid": SID})) == [
        StreamStopped(reason="stop")
    ]
    assert stream.stopped
    with pytest.raises(CarrierFrameError, match="after stop"):
        stream.receive_frame(media(b"\xff" * 160))
    with pytest.raises(InvalidState):
        stream.send_audio(tone(0.02, 24_000))


def test_unknown_events_are_ignored() -> None:
    stream = opened()
    assert stream.receive_frame(json.dumps({"event": "future-thing", "x": 1})) == []


def test_outbound_before_start_is_a_local_error() -> None:
    stream = MediaStream(TwilioSerializer(), input_rate=16_000, output_rate=24_000)
    for action in (lambda: stream.send_audio(b""), stream.flush, stream.clear):
        with pytest.raises(InvalidState):
            action()


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([media(b"\xff" * 160)], "media before start"),
        ([json.dumps({"event": "mark", "mark": {"name": "vx1"}})], "mark before start"),
        ([json.dumps({"event": "dtmf", "dtmf": {"digit": "1"}})], "dtmf before start"),
        ([start(), start()], "second start"),
        ([start(), json.dumps({"event": "connected"})], "connected after start"),
        ([start(), media(b"\xff" * 160, sid="MZother")], "another stream"),
        ([start(encoding="audio/x-l16", rate=16000)], "unsupported media format"),
        ([start(), media(b"\xff" * 20_000)], "payload of 20000 bytes"),
        (["{" + " " * 70_000 + "}"], "exceeds the 65536-byte limit"),
    ],
)
def test_out_of_order_or_oversized_frames(frames: list[str], message: str) -> None:
    stream = MediaStream(TwilioSerializer(), input_rate=16_000, output_rate=24_000)
    *before, last = frames
    for raw in before:
        stream.receive_frame(raw)
    with pytest.raises(CarrierFrameError, match=message):
        stream.receive_frame(last)


def test_chunk_length_is_configurable_and_checked() -> None:
    stream = opened(chunk_seconds=0.1)
    frames = sent(stream.send_audio(tone(0.3, 24_000)) + stream.flush())
    payloads = [base64.b64decode(f["media"]["payload"]) for f in frames if f["event"] == "media"]  # type: ignore[index]
    assert len(payloads[0]) == 800
    with pytest.raises(ConfigError):
        MediaStream(TwilioSerializer(), input_rate=16_000, output_rate=24_000, chunk_seconds=0)
    with pytest.raises(ConfigError):
        MediaStream(TwilioSerializer(), input_rate=16_000, output_rate=24_000, max_frame_bytes=0)
