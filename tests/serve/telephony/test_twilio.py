"""Twilio Media Streams wire format, TwiML and X-Twilio-Signature.

The TwiML and the signatures are checked against Twilio's own Python library
(`twilio`: VoiceResponse builds the reference TwiML, RequestValidator computes and
checks signatures), a client no one here wrote.
"""

from __future__ import annotations

import base64
import json

import pytest
from twilio.request_validator import RequestValidator, get_signature_algorithm
from twilio.twiml.voice_response import Connect, VoiceResponse

from voxengine.errors import ConfigError, ProtocolViolation
from voxengine.serve.telephony import (
    CarrierFrameError,
    DtmfReceived,
    MarkPlayed,
    MediaReceived,
    StreamConnected,
    StreamStarted,
    StreamStopped,
    TwilioSerializer,
    UnknownCarrierEvent,
    connect_stream_twiml,
    signature_algorithm,
    twilio_signature,
    verify_twilio_signature,
)

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
CALL = "CA1234567890abcdef1234567890abcdef"
TOKEN = "12345678901234567890123456789012"


def frame(**fields: object) -> str:
    return json.dumps(fields)


def start_frame(**overrides: object) -> str:
    start: dict[str, object] = {
        "streamSid": SID,
        "accountSid": "AC0000",
        "callSid": CALL,
        "tracks": ["inbound"],
        "customParameters": {"token": "abc", "caller": "+15550100"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    }
    start.update(overrides)
    return frame(event="start", sequenceNumber="1", start=start, streamSid=SID)


# -- inbound messages, as Twilio's docs show them -------------------------------------------


def test_connected_and_start() -> None:
    s = TwilioSerializer()
    assert s.parse(frame(event="connected", protocol="Call", version="1.0.0")) == (
        StreamConnected(protocol="Call", version="1.0.0")
    )
    assert s.parse(start_frame()) == StreamStarted(
        stream_id=SID,
        call_id=CALL,
        account_id="AC0000",
        encoding="mulaw",
        sample_rate=8000,
        channels=1,
        custom_parameters={"token": "abc", "caller": "+15550100"},
    )


def test_media_mark_dtmf_stop() -> None:
    s = TwilioSerializer()
    audio = bytes(range(160))
    media = {"track": "inbound", "chunk": "2", "timestamp": "5120", "payload": ""}
    media["payload"] = base64.b64encode(audio).decode()
    assert s.parse(frame(event="media", sequenceNumber="3", media=media, streamSid=SID)) == (
        MediaReceived(payload=audio, stream_id=SID, timestamp=5.12, sequence=3)
    )
    mark = frame(event="mark", sequenceNumber="4", streamSid=SID, mark={"name": "vx1"})
    assert s.parse(mark) == MarkPlayed(name="vx1", stream_id=SID)
    dtmf = frame(
        event="dtmf",
        streamSid=SID,
        sequenceNumber="5",
        dtmf={"track": "inbound_track", "digit": "#"},
    )
    assert s.parse(dtmf) == DtmfReceived(digit="#")
    stop = frame(event="stop", sequenceNumber="6", streamSid=SID, stop={"callSid": CALL})
    assert s.parse(stop) == StreamStopped(reason="stop")


def test_unknown_event_is_typed_not_raised() -> None:
    # Twilio adds events over time; a new one must not hang up calls
    assert TwilioSerializer().parse(frame(event="transcription", streamSid=SID)) == (
        UnknownCarrierEvent(event="transcription")
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"event": "media"}', "text frames"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"streamSid": "MZ"}', "no 'event'"),
        ('{"event": 7}', "no 'event'"),
        ('{"event": "media", "media": {"payload": "%%%not base64"}}', "not valid base64"),
        ('{"event": "media", "media": {"payload": "AAA"}}', "not valid base64"),
        ('{"event": "media", "media": {"payload": 12}}', "payload string"),
        ('{"event": "media"}', "'media' object"),
        ('{"event": "media", "media": {"payload": "", "timestamp": "-1"}}', "decimal"),
        ('{"event": "media", "sequenceNumber": "x", "media": {"payload": ""}}', "decimal"),
        ('{"event": "mark", "mark": {}}', "'name'"),
        ('{"event": "mark", "mark": {"name": ""}}', "'name'"),
        ('{"event": "dtmf", "dtmf": {"digit": "12"}}', "dtmf digit"),
        ('{"event": "start", "start": {"streamSid": "MZ"}}', "'mediaFormat'"),
    ],
)
def test_hostile_frames_raise_a_typed_error(raw: str | bytes, message: str) -> None:
    with pytest.raises(CarrierFrameError, match=message) as caught:
        TwilioSerializer().parse(raw)
    assert isinstance(caught.value, ProtocolViolation)


@pytest.mark.parametrize(
    "override",
    [
        {"streamSid": ""},
        {"callSid": None},
        {"streamSid": "M" * 500},
        {"customParameters": {"token": 5}},
        {"customParameters": ["token"]},
        {"customParameters": {f"p{i}": "v" for i in range(100)}},
        {"mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "8000"}},
    ],
)
def test_bad_start_fields(override: dict[str, object]) -> None:
    with pytest.raises(CarrierFrameError):
        TwilioSerializer().parse(start_frame(**override))


def test_error_messages_never_quote_the_frame() -> None:
    secret = "sk-live-token-that-must-not-leak"
    with pytest.raises(CarrierFrameError) as caught:
        TwilioSerializer().parse('{"event": "media", "media": {"payload": "' + secret + '!"}}')
    assert secret not in str(caught.value)


# -- outbound messages ---------------------------------------------------------------------


def test_outbound_media_mark_clear() -> None:
    s = TwilioSerializer()
    audio = b"\xff\x7f" * 80
    assert json.loads(s.media(SID, audio)) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(audio).decode()},
    }
    assert json.loads(s.mark(SID, "vx3")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "vx3"},
    }
    assert json.loads(s.clear(SID)) == {"event": "clear", "streamSid": SID}


# -- TwiML, against twilio.twiml.VoiceResponse -----------------------------------------------


def reference_twiml(url: str, parameters: dict[str, str]) -> str:
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


@pytest.mark.parametrize(
    "parameters",
    [{}, {"token": "v1.abc.def"}, {"token": "a&b\"<c>'", "caller": "+1 (555) 0100"}],
)
def test_twiml_matches_twilios_library(parameters: dict[str, str]) -> None:
    url = "wss://voice.example.com/twilio/stream"
    assert connect_stream_twiml(url, parameters=parameters) == reference_twiml(url, parameters)


@pytest.mark.parametrize(
    "url",
    ["https://example.com/stream", "wss://example.com/stream?token=x", "wss:///stream", "stream"],
)
def test_twiml_refuses_urls_twilio_cannot_use(url: str) -> None:
    with pytest.raises(ConfigError):
        connect_stream_twiml(url)


def test_twiml_refuses_non_string_parameters() -> None:
    with pytest.raises(ConfigError):
        connect_stream_twiml("wss://example.com/s", parameters={"token": 5})  # type: ignore[dict-item]
    with pytest.raises(ConfigError):
        connect_stream_twiml("wss://example.com/s", parameters={"": "x"})


# -- X-Twilio-Signature, against twilio.request_validator -------------------------------------

URL = "https://voice.example.com/twilio/voice?tenant=a"
PARAMS = {"CallSid": CALL, "From": "+15550100", "To": "+15550199", "AccountSid": "AC0000"}


class MultiParams(dict[str, list[str]]):
    """Form data with a repeated name, in the MultiDict shape RequestValidator reads."""

    def getall(self, name: str) -> list[str]:
        return self[name]


@pytest.mark.parametrize("algorithm", ["HMAC_SHA1", "HMAC_SHA256"])
def test_signature_equals_twilios(algorithm: str) -> None:
    validator = RequestValidator(TOKEN)
    expected = validator.compute_signature(URL, PARAMS, algorithm)
    assert twilio_signature(TOKEN, URL, PARAMS, algorithm=algorithm) == expected
    assert twilio_signature(TOKEN, URL, None, algorithm=algorithm) == (
        validator.compute_signature(URL, {}, algorithm)
    )
    repeated = MultiParams(Digits=["2", "1"], CallSid=[CALL])
    pairs = [("Digits", "2"), ("CallSid", CALL), ("Digits", "1")]
    assert twilio_signature(TOKEN, URL, pairs, algorithm=algorithm) == (
        validator.compute_signature(URL, repeated, algorithm)
    )


def test_verification_accepts_what_twilio_signs_and_nothing_else() -> None:
    validator = RequestValidator(TOKEN)
    signature = validator.compute_signature(URL, PARAMS)
    assert verify_twilio_signature(TOKEN, URL, PARAMS, signature)
    assert validator.validate(URL, PARAMS, twilio_signature(TOKEN, URL, PARAMS))
    # Twilio may sign the URL with or without the default port
    with_port = "https://voice.example.com:443/twilio/voice?tenant=a"
    assert verify_twilio_signature(
        TOKEN, URL, PARAMS, validator.compute_signature(with_port, PARAMS)
    )
    assert verify_twilio_signature(TOKEN, with_port, PARAMS, signature)
    # anything changed: refused
    assert not verify_twilio_signature(TOKEN, URL, {**PARAMS, "To": "+15550000"}, signature)
    assert not verify_twilio_signature(TOKEN, URL.replace("a", "b"), PARAMS, signature)
    assert not verify_twilio_signature("0" * 32, URL, PARAMS, signature)
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, None)
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, "")
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, "é" * 28)
    assert not verify_twilio_signature("", URL, PARAMS, signature)
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, signature, algorithm="MD5")


def test_sha256_signature_from_the_settings_header() -> None:
    header = "key=webhooks_sharedkey_123,algorithm=HMAC_SHA256"
    assert signature_algorithm(header) == get_signature_algorithm(header) == "HMAC_SHA256"
    assert signature_algorithm(None) == get_signature_algorithm(None) == "HMAC_SHA1"
    assert signature_algorithm("key=x") == get_signature_algorithm("key=x") == "HMAC_SHA1"
    signature = RequestValidator(TOKEN).compute_signature(URL, PARAMS, "HMAC_SHA256")
    assert verify_twilio_signature(TOKEN, URL, PARAMS, signature, algorithm="HMAC_SHA256")
    assert not verify_twilio_signature(TOKEN, URL, PARAMS, signature)
    with pytest.raises(ConfigError):
        twilio_signature(TOKEN, URL, PARAMS, algorithm="HMAC_MD5")
