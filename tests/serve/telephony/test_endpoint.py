"""Twilio calls end to end: uvicorn on 127.0.0.1 serving the Twilio routes with the mock
provider, and the fake Twilio (voxengine.testing.fake_twilio, a real WebSocket client
written from Twilio's protocol docs) placing the calls. The webhook's TwiML and the
signatures are also checked with Twilio's own library."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from voxengine.testing import synthesize_speech
from voxengine.testing.fake_twilio import place_call, read_twiml
from voxengine.testing.mock import MockConfig

from .conftest import AUTH_TOKEN, twilio_server

LONG_REPLY = " ".join(["this is a long spoken answer"] * 8)  # 40 words, 10 s of audio


def speech_8k(text: str) -> bytes:
    return synthesize_speech(text, sample_rate=8000)


async def test_a_call_is_answered_with_mulaw_audio_and_stop_ends_it() -> None:
    async with twilio_server() as server, place_call(server.url, AUTH_TOKEN) as call:
        await call.stream_pcm(speech_8k("what time is it") + bytes(16000))  # + 1 s silence
        await call.wait_for_audio(0.5)
        assert call.media_frames > 0
        assert not call.violations
        context = server.contexts[0]
        assert context.endpoint == "twilio"
        assert context.caller == "twilio:+15550100"
        assert context.params["call_sid"] == call.call_sid
        assert "token" not in context.params
        assert len(server.board.calls) == 1
        # each media frame is followed by a mark that the fake acknowledges when played
        assert call.marks_acknowledged
        await call.hang_up()
        for _ in range(200):
            if not server.board.calls:
                break
            await asyncio.sleep(0.05)
        assert server.board.calls == {}
    assert server.engines[0].provider.name == "mock"


async def test_barge_in_clears_twilio_and_truncates_at_the_acknowledged_position() -> None:
    mock = MockConfig(replies=(LONG_REPLY,), paced_seconds=0.02)
    async with twilio_server(mock=mock) as server, place_call(server.url, AUTH_TOKEN) as call:
        await call.stream_pcm(speech_8k("tell me a story") + bytes(16000))
        await call.wait_for_audio(1.5)  # the reply is playing
        played_before = call.played_seconds
        talking = asyncio.create_task(call.stream_pcm(speech_8k("stop stop please") + bytes(8000)))
        await call.wait_for_clear(timeout=20)
        heard = call.played_seconds
        await talking
        for _ in range(200):
            if server.interruptions:
                break
            await asyncio.sleep(0.05)
        [interrupted] = server.interruptions
        assert interrupted.played is not None
        # truncated at what Twilio acknowledged as played: never after what was heard,
        # and not far before it (a mark every 20 ms; the barge-in decision takes a while)
        assert played_before <= interrupted.played <= heard + 0.05
        assert heard - interrupted.played < 1.0
        assert not call.violations


async def test_unsigned_or_forged_requests_are_refused() -> None:
    async with twilio_server() as server, httpx.AsyncClient() as http:
        url = server.url + "/twilio/voice"
        form = {"CallSid": "CA1", "From": "+15550100"}
        assert (await http.post(url, data=form)).status_code == 403
        forged = {"X-Twilio-Signature": RequestValidator("f" * 32).compute_signature(url, form)}
        assert (await http.post(url, data=form, headers=forged)).status_code == 403
        # the genuine signature (computed by Twilio's library) is accepted
        genuine = {"X-Twilio-Signature": RequestValidator(AUTH_TOKEN).compute_signature(url, form)}
        response = await http.post(url, data=form, headers=genuine)
        assert response.status_code == 200
        stream = read_twiml(response.text)
        assert stream.url.endswith("/twilio/stream")
        assert stream.url.startswith("ws://")
        assert set(stream.parameters) == {"token"}
        # the stream upgrade needs its own signature
        with pytest.raises(InvalidStatus) as refused:
            await connect(stream.url)
        assert refused.value.response.status_code == 403
        assert server.board.calls == {}


async def test_a_token_for_another_call_or_none_is_refused() -> None:
    async with twilio_server() as server, httpx.AsyncClient() as http:
        url = server.url + "/twilio/voice"
        form = {"CallSid": "CA-first", "From": "+15550100"}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        twiml = (await http.post(url, data=form, headers={"X-Twilio-Signature": signature})).text
        stream = read_twiml(twiml)
        ws_signature = RequestValidator(AUTH_TOKEN).compute_signature(stream.url, {})
        for parameters, code in ((stream.parameters, 4403), ({}, 4401)):
            async with connect(
                stream.url, additional_headers={"X-Twilio-Signature": ws_signature}
            ) as ws:
                start = {
                    "streamSid": "MZ1",
                    "callSid": "CA-other",
                    "accountSid": "AC1",
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": parameters,
                }
                await ws.send(json.dumps({"event": "start", "start": start, "streamSid": "MZ1"}))
                await ws.wait_closed()
                assert ws.close_code == code
        assert server.board.calls == {}


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", 1007),
        (b"\x00\x01", 1007),
        ('{"event": "media", "streamSid": "MZ", "media": {"payload": "%%%"}}', 1007),
        ('{"event": "start", "start": {}}', 1007),
        ("{" + " " * 70_000 + "}", 1009),
    ],
)
async def test_hostile_frames_close_only_that_call(frame: str | bytes, code: int) -> None:
    async with (
        twilio_server() as server,
        place_call(server.url, AUTH_TOKEN) as bad,
        place_call(server.url, AUTH_TOKEN) as good,
    ):
        await good.send_silence(0.1)
        await bad.send_raw(frame)
        assert await bad.wait_closed() == code
        # the other call goes on: it still gets answered
        await good.stream_pcm(speech_8k("are you there") + bytes(16000))
        await good.wait_for_audio(0.3)
        assert len(server.board.calls) == 1
        assert not good.violations


async def test_a_flood_of_frames_is_rate_limited_but_mark_acknowledgements_are_not() -> None:
    mock = MockConfig(replies=(LONG_REPLY,), paced_seconds=0.02)
    async with (
        twilio_server(mock=mock) as server,
        place_call(server.url, AUTH_TOKEN) as flood,
        place_call(server.url, AUTH_TOKEN, from_number="+15550111") as talker,
    ):
        # the talker gets a long reply, barges in: Twilio acknowledges every pending
        # mark at once, and the call goes on
        await talker.stream_pcm(speech_8k("tell me a story") + bytes(16000))
        await talker.wait_for_audio(1.0)
        await talker.stream_pcm(speech_8k("stop stop please") + bytes(8000))
        await talker.wait_for_clear()
        assert len(talker.marks_acknowledged) > 60
        # 400 media frames at once: over max_messages_per_second (200)
        frame = '{"event": "media", "media": {"payload": "' + "/" * 212 + '"}}'
        for _ in range(400):
            await flood.send_raw(frame)
        assert await flood.wait_closed() == 4429
        assert talker.close_code is None
        for _ in range(200):  # the server releases the call just after the close frame
            if len(server.board.calls) == 1:
                break
            await asyncio.sleep(0.02)
        assert len(server.board.calls) == 1


async def test_behind_a_proxy_signatures_are_checked_against_the_public_url() -> None:
    public = {"public_url": "https://voice.example.com"}
    async with twilio_server(twilio=public) as server, httpx.AsyncClient() as http:
        form = {"CallSid": "CA-proxied", "From": "+15550100"}
        validator = RequestValidator(AUTH_TOKEN)
        local_url = server.url + "/twilio/voice"
        public_url = "https://voice.example.com/twilio/voice"
        # what Twilio signs is the public URL; a signature of the local one is refused
        local = {"X-Twilio-Signature": validator.compute_signature(local_url, form)}
        assert (await http.post(local_url, data=form, headers=local)).status_code == 403
        signed = {"X-Twilio-Signature": validator.compute_signature(public_url, form)}
        response = await http.post(local_url, data=form, headers=signed)
        assert response.status_code == 200
        stream = read_twiml(response.text)
        assert stream.url == "wss://voice.example.com/twilio/stream"
        # the upgrade reaches this server locally, signed for the public wss:// URL
        ws_url = server.url.replace("http://", "ws://") + "/twilio/stream"
        signature = validator.compute_signature(stream.url, {})
        async with connect(ws_url, additional_headers={"X-Twilio-Signature": signature}) as ws:
            await ws.send(json.dumps({"event": "connected", "protocol": "Call"}))
        with pytest.raises(InvalidStatus):
            await connect(ws_url, additional_headers={"X-Twilio-Signature": signature[::-1]})


@pytest.mark.parametrize(
    ("caller", "subject"),
    [("+15550100", "twilio:+15550100"), ("anonymous", "twilio:CA-anon"), ("", "twilio:CA-anon")],
)
async def test_per_caller_limits_count_by_number_and_withheld_numbers_per_call(
    caller: str, subject: str
) -> None:
    async with twilio_server() as server, httpx.AsyncClient() as http:
        url = server.url + "/twilio/voice"
        form = {"CallSid": "CA-anon", "From": caller}
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        twiml = (await http.post(url, data=form, headers={"X-Twilio-Signature": signature})).text
        token = read_twiml(twiml).parameters["token"]
        claims = server.board.tokens.verify(token, consume=False)
        assert claims.subject == subject
        assert claims.call_id == "CA-anon"


async def test_key_presses_reach_the_application_in_order() -> None:
    async with twilio_server() as server, place_call(server.url, AUTH_TOKEN) as call:
        await call.send_silence(0.1)
        for digit in "12*#A0":
            await call.send_dtmf(digit)
        await call.send_silence(0.1)
        for _ in range(200):
            if len(server.keys) >= 6:
                break
            await asyncio.sleep(0.02)
        assert "".join(key.digit for key in server.keys) == "12*#A0"
        assert server.keys[0].type == "input.key_pressed"
        # a key Twilio cannot send closes that call only, as malformed
        bad = {"event": "dtmf", "streamSid": call.stream_sid, "dtmf": {"digit": "x"}}
        await call.send_raw(json.dumps(bad))
        assert await call.wait_closed() == 1007
    assert len(server.keys) == 6
