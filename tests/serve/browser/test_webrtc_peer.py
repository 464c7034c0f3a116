"""The WebRTC peer alone, against aiortc's own client over real UDP on 127.0.0.1.

Media both ways (a WAV file as the caller's microphone; paced reply audio back), the
data channel both ways, played-position accounting, hostile input closing that peer
only, and nothing left running after hang-up.
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.serve.browser.rtc_client import RTCCaller, settle
from tests.serve.browser.rtc_client import webrtc_task as _webrtc_task
from voxengine.audio.format import AudioFormat
from voxengine.audio.wav import write_wav
from voxengine.serve.browser.webrtc import RTCPeer, RTCSettings, SignalingRefused, check_offer
from voxengine.testing import synthesize_speech

IN = AudioFormat(sample_rate=16_000)
OUT = AudioFormat(sample_rate=48_000)


class Server:
    """What a call would see of its caller: audio in, messages in, played reports."""

    def __init__(self, settings: RTCSettings | None = None) -> None:
        self.audio = bytearray()
        self.messages: list[dict[str, Any]] = []
        self.played: list[tuple[float, int]] = []
        self.peer = RTCPeer(
            input_format=IN,
            output_format=OUT,
            on_audio=self._audio,
            on_message=self._message,
            on_played=lambda seconds, epoch: self.played.append((seconds, epoch)),
            settings=settings,
        )

    async def _audio(self, pcm: bytes) -> None:
        self.audio += pcm

    async def _message(self, message: dict[str, Any]) -> None:
        self.messages.append(message)


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    path = tmp_path / "mic.wav"
    speech = synthesize_speech("hello there how are you today", sample_rate=16_000)
    write_wav(path, speech + bytes(IN.bytes_for(0.5)), IN)
    return path


async def _connect(server: Server, wav: Path | None) -> RTCCaller:
    caller = RTCCaller(wav)
    offer = await caller.offer()
    answer = await server.peer.answer(check_offer(offer, server.peer.settings))
    await caller.accept(answer)
    await caller.wait_connected()
    return caller


def _own_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of the server's peers (``rtc-*``) and of aiortc/aioice still running."""
    return [t for t in asyncio.all_tasks() if _webrtc_task(t)]


async def test_media_and_events_both_ways(speech_wav: Path) -> None:
    server = Server()
    caller = await _connect(server, speech_wav)
    try:
        # caller -> server: the WAV arrives, decoded and resampled to 16 kHz
        await settle(lambda: len(server.audio) >= IN.bytes_for(1.5), timeout=20)
        assert server.peer.inbound is not None
        # server -> caller: one second of reply audio, paced, heard as sound
        reply = synthesize_speech("one two three four", sample_rate=48_000, seconds_per_word=0.25)
        server.peer.send_audio(reply)
        server.peer.send_event({"type": "transcript", "role": "assistant", "text": "hi"})
        message = await caller.wait_message(lambda m: m.get("type") == "transcript")
        assert message["text"] == "hi"
        await asyncio.wait_for(caller.voiced.wait(), 10)
        await settle(lambda: server.peer.track.pending == 0, timeout=10)
        # pacing: a second of audio took about a second to hand out, not a burst
        assert server.peer.track.handed == pytest.approx(OUT.duration(len(reply)))
        # played position: reported per epoch, delayed by the jitter allowance, up to all
        await settle(lambda: server.played and server.played[-1][0] >= 0.99, timeout=5)
        assert all(epoch == 0 for _, epoch in server.played)
        assert [s for s, _ in server.played] == sorted(s for s, _ in server.played)
        # caller -> server messages, in order
        caller.channel.send('{"type": "ping", "id": 1}')
        caller.channel.send('{"type": "text", "text": "hello"}')
        await settle(lambda: len(server.messages) == 2)
        assert [m["type"] for m in server.messages] == ["ping", "text"]
    finally:
        await caller.close()
        await server.peer.aclose()
    assert server.peer.closed
    assert _own_tasks() == []


async def test_clear_truncates_at_what_was_handed_out() -> None:
    server = Server(RTCSettings(jitter_allowance=0.1))
    caller = await _connect(server, None)
    try:
        server.peer.send_audio(synthesize_speech("a long reply " * 5, sample_rate=48_000))
        await settle(lambda: server.peer.track.handed >= 0.5, timeout=10)
        handed = server.peer.track.handed
        dropped = server.peer.clear(1)
        assert dropped > 1.0  # most of the reply never left
        assert server.peer.track.pending == 0
        heard = [s for s, e in server.played if e == 0]
        # what the caller heard trails what was handed out by the allowance (5 frames)
        assert heard[-1] == pytest.approx(handed - 0.1, abs=0.021)
        # the new epoch counts from zero
        server.peer.send_audio(synthesize_speech("again", sample_rate=48_000))
        await settle(lambda: any(e == 1 for _, e in server.played), timeout=10)
        assert min(s for s, e in server.played if e == 1) <= 0.03
    finally:
        await caller.close()
        await server.peer.aclose()


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        ({"type": "answer", "sdp": "v=0"}, "malformed"),
        ({"type": "offer", "sdp": 7}, "malformed"),
        ({"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 10_000}, "too_big"),
        ({"type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"}, "malformed"),
        (["offer"], "malformed"),
    ],
)
def test_bad_offer_bodies_are_refused(body: object, cause: str) -> None:
    with pytest.raises(SignalingRefused) as info:
        check_offer(body, RTCSettings())
    assert info.value.cause == cause


def _drop(prefix: str) -> Callable[[str], str]:
    return lambda sdp: "\r\n".join(x for x in sdp.split("\r\n") if not x.startswith(prefix))


@pytest.mark.parametrize(
    "spoil",
    [
        lambda sdp: "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=garbage\r\n",
        lambda sdp: sdp[: len(sdp) // 2],  # truncated
        _drop("a=ice-ufrag"),
        _drop("a=setup"),
        lambda sdp: sdp.replace("m=audio ", "m=audio x", 1),
    ],
    ids=["garbage", "truncated", "no-ice-ufrag", "no-dtls-setup", "bad-port"],
)
async def test_unusable_sdp_closes_the_peer_and_leaves_nothing(
    spoil: Callable[[str], str],
) -> None:
    caller = RTCCaller(None)
    sdp = spoil((await caller.offer())["sdp"])
    await caller.close()
    server = Server()
    with pytest.raises(SignalingRefused) as info:
        await server.peer.answer(sdp)
    assert info.value.cause == "malformed"
    assert server.peer.closed
    assert _own_tasks() == []


async def test_closing_right_after_the_answer_leaves_nothing() -> None:
    caller = RTCCaller(None)
    server = Server()
    await server.peer.answer((await caller.offer())["sdp"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        await server.peer.aclose()  # its tasks never got to run
        await caller.close()
        gc.collect()
    assert [str(w.message) for w in caught] == []
    assert _own_tasks() == []


@pytest.mark.parametrize(
    ("message", "cause"),
    [
        (b"\x00\x01binary", "malformed"),
        ("x" * 20_000, "too_big"),
        ("[1, 2]", "malformed"),
        ("{not json", "malformed"),
        ('{"type": 5}', "malformed"),
    ],
)
async def test_hostile_data_channel_message_closes_that_peer_only(
    message: str | bytes, cause: str
) -> None:
    hostile, other = Server(), Server()
    bad, good = await _connect(hostile, None), await _connect(other, None)
    try:
        await settle(lambda: bad.channel.readyState == "open")
        bad.channel.send(message)
        assert await asyncio.wait_for(hostile.peer.wait_closed(), 10) == cause
        bye = await bad.wait_message(lambda m: m["type"] == "bye")  # told why, first
        assert bye["reason"] == cause
        # the other call is untouched
        good.channel.send('{"type": "ping", "id": 2}')
        await settle(lambda: other.messages == [{"type": "ping", "id": 2}])
        assert not other.peer.closed
        assert other.peer.connection_state == "connected"
    finally:
        await bad.close()
        await good.close()
        await hostile.peer.aclose()
        await other.peer.aclose()
    assert _own_tasks() == []


async def test_caller_hang_up_closes_the_peer() -> None:
    server = Server()
    caller = await _connect(server, None)
    await caller.close()
    assert await asyncio.wait_for(server.peer.wait_closed(), 15) == "hangup"
    assert _own_tasks() == []


async def test_a_caller_that_never_connects_times_out() -> None:
    server = Server(RTCSettings(connect_timeout=0.5))
    caller = RTCCaller(None)
    await server.peer.answer((await caller.offer())["sdp"])  # the answer is never applied
    try:
        assert await asyncio.wait_for(server.peer.wait_closed(), 10) == "timeout"
    finally:
        await caller.close()
    assert _own_tasks() == []


async def test_a_data_channel_flood_closes_that_peer() -> None:
    server = Server(RTCSettings(max_messages_per_second=20))
    caller = await _connect(server, None)
    try:
        await settle(lambda: caller.channel.readyState == "open")
        for i in range(200):
            caller.channel.send(f'{{"type": "ping", "id": {i}}}')
        assert await asyncio.wait_for(server.peer.wait_closed(), 10) == "rate_limited"
        assert len(server.messages) <= 40
    finally:
        await caller.close()
        await server.peer.aclose()
    assert _own_tasks() == []
