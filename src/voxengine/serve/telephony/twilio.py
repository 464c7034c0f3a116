"""Twilio Media Streams: the wire format, the TwiML that opens a stream, the signature.

Implements Twilio's published protocol (twilio.com/docs/voice/media-streams and
/websocket-messages; /docs/voice/twiml/stream; /docs/usage/security):

* **Stream messages.** Twilio sends JSON text frames whose ``event`` is
  ``connected``, ``start`` (``start.streamSid``, ``callSid``, ``accountSid``,
  ``mediaFormat {encoding: "audio/x-mulaw", sampleRate: 8000, channels: 1}``,
  ``customParameters``), ``media`` (``media.payload``: base64 μ-law, 20 ms a frame;
  ``timestamp`` in ms and ``sequenceNumber`` as decimal strings), ``mark``
  (``mark.name``), ``dtmf`` (``dtmf.digit``) and ``stop``. A bidirectional stream
  (``<Connect><Stream>``) accepts ``media`` (``media.payload``), ``mark`` and
  ``clear``, each with the ``streamSid``. Twilio acknowledges a mark when the audio
  before it has played, and acknowledges all pending marks at once on a clear.
* **TwiML.** :func:`connect_stream_twiml` answers the voice webhook with
  ``<Response><Connect><Stream url="wss://..."><Parameter .../></Stream></Connect>``.
  Twilio accepts no query string in the stream URL, so per-call data (the stream
  token) travels as ``<Parameter>`` and comes back in ``start.customParameters``.
* **Signature.** Twilio signs each webhook with ``X-Twilio-Signature``: base64 of
  HMAC-SHA1, keyed with the account's auth token, over the full URL followed by
  every POST parameter name and value, sorted by name. :func:`twilio_signature`
  computes it, :func:`verify_twilio_signature` checks it in constant time.

Everything here is pure and sync.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, final
from urllib.parse import urlsplit, urlunsplit
from xml.etree import ElementTree

from voxengine import _json
from voxengine.audio.b64 import b64decode_strict, b64encode_str
from voxengine.errors import ConfigError
from voxengine.serve.telephony.carrier import (
    CarrierEvent,
    CarrierFrameError,
    DtmfReceived,
    MarkPlayed,
    MediaReceived,
    StreamConnected,
    StreamStarted,
    StreamStopped,
    UnknownCarrierEvent,
    WireAudio,
)

__all__ = [
    "TWILIO_WIRE_AUDIO",
    "TwilioSerializer",
    "connect_stream_twiml",
    "signature_algorithm",
    "twilio_signature",
    "verify_twilio_signature",
]

TWILIO_WIRE_AUDIO: Final = WireAudio(encoding="mulaw", sample_rate=8000)
"""Media Streams audio, both directions: 8 kHz μ-law mono."""

_ENCODINGS: Final = {"audio/x-mulaw": "mulaw"}
_DTMF_DIGITS: Final = frozenset("0123456789*#ABCD")
_MAX_PARAMETERS: Final = 64
_MAX_ID_CHARS: Final = 128
_DECIMAL: Final = re.compile(r"[0-9]{1,15}")
_ALGORITHMS: Final = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}

FormParams = Mapping[str, str] | Iterable[tuple[str, str]]
"""POST parameters: a mapping, or (name, value) pairs when a name repeats."""


def _object(message: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = message.get(key)
    if not isinstance(value, dict):
        raise CarrierFrameError(f"twilio: {message.get('event')} message without a {key!r} object")
    return value


def _text(message: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = message.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise CarrierFrameError(f"twilio: field {key!r} must be a non-empty string")
    if len(value) > _MAX_ID_CHARS:
        raise CarrierFrameError(f"twilio: field {key!r} longer than {_MAX_ID_CHARS} characters")
    return value


def _decimal(message: Mapping[str, Any], key: str) -> int | None:
    value = message.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    raise CarrierFrameError(f"twilio: field {key!r} must be a decimal number")


def _parameters(start: Mapping[str, Any]) -> dict[str, str]:
    raw = start.get("customParameters", {})
    if not isinstance(raw, dict) or len(raw) > _MAX_PARAMETERS:
        raise CarrierFrameError("twilio: customParameters must be an object of strings")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise CarrierFrameError("twilio: customParameters must be an object of strings")
    return dict(raw)


def _parse_start(message: Mapping[str, Any]) -> StreamStarted:
    start = _object(message, "start")
    media_format = _object(start, "mediaFormat")
    encoding = media_format.get("encoding")
    rate = media_format.get("sampleRate")
    channels = media_format.get("channels", 1)
    if not isinstance(encoding, str) or type(rate) is not int or type(channels) is not int:
        raise CarrierFrameError("twilio: mediaFormat needs encoding, sampleRate and channels")
    return StreamStarted(
        stream_id=_text(start, "streamSid"),
        call_id=_text(start, "callSid"),
        account_id=_text(start, "accountSid", required=False),
        encoding=_ENCODINGS.get(encoding, encoding),
        sample_rate=rate,
        channels=channels,
        custom_parameters=_parameters(start),
    )


def _parse_media(message: Mapping[str, Any]) -> MediaReceived:
    media = _object(message, "media")
    payload = media.get("payload")
    if not isinstance(payload, str):
        raise CarrierFrameError("twilio: media message without a payload string")
    try:
        audio = b64decode_strict(payload)  # pybase64 with the speedups extra
    except ValueError as exc:  # binascii.Error is a ValueError
        raise CarrierFrameError("twilio: media payload is not valid base64") from exc
    timestamp_ms = _decimal(media, "timestamp")
    return MediaReceived(
        payload=audio,
        stream_id=_text(message, "streamSid", required=False) or None,
        timestamp=None if timestamp_ms is None else timestamp_ms / 1000.0,
        sequence=_decimal(message, "sequenceNumber"),
    )


@final
class TwilioSerializer:
    """The :class:`~voxengine.serve.telephony.carrier.CarrierSerializer` of Twilio
    Media Streams (bidirectional, ``<Connect><Stream>``)."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """``"twilio"``."""
        return "twilio"

    @property
    def wire_audio(self) -> WireAudio:
        """8 kHz μ-law mono (:data:`TWILIO_WIRE_AUDIO`)."""
        return TWILIO_WIRE_AUDIO

    def parse(self, frame: str | bytes) -> CarrierEvent:
        """The event of one Twilio frame (see the module docstring for the shapes).

        Raises:
            CarrierFrameError: a binary frame, not JSON, not an object, no ``event``
                string, or a known event with a missing or ill-typed field (bad
                base64, an empty stream id, a DTMF digit that is not a key).
        """
        if not isinstance(frame, str):
            raise CarrierFrameError("twilio: Media Streams sends text frames, got binary")
        try:
            message = _json.loads(frame)
        except _json.JSONDecodeError as exc:
            raise CarrierFrameError("twilio: frame is not valid JSON") from exc
        if not isinstance(message, dict):
            raise CarrierFrameError("twilio: frame is not a JSON object")
        event = message.get("event")
        if not isinstance(event, str):
            raise CarrierFrameError("twilio: frame has no 'event' string")
        match event:
            case "media":
                return _parse_media(message)
            case "mark":
                return MarkPlayed(
                    name=_text(_object(message, "mark"), "name"),
                    stream_id=_text(message, "streamSid", required=False) or None,
                )
            case "start":
                return _parse_start(message)
            case "connected":
                return StreamConnected(
                    protocol=_text(message, "protocol", required=False),
                    version=_text(message, "version", required=False),
                )
            case "dtmf":
                digit = _object(message, "dtmf").get("digit")
                if not isinstance(digit, str) or digit not in _DTMF_DIGITS:
                    raise CarrierFrameError("twilio: dtmf digit must be one of 0-9 * # A-D")
                return DtmfReceived(digit=digit)
            case "stop":
                return StreamStopped(reason="stop")
            case _:
                return UnknownCarrierEvent(event=event[:_MAX_ID_CHARS])

    def media(self, stream_id: str, payload: bytes) -> str:
        """``{"event": "media", "streamSid": ..., "media": {"payload": base64 μ-law}}``."""
        encoded = b64encode_str(payload)
        return _json.dumps(
            {"event": "media", "streamSid": stream_id, "media": {"payload": encoded}}
        )

    def mark(self, stream_id: str, name: str) -> str:
        """``{"event": "mark", "streamSid": ..., "mark": {"name": name}}``."""
        return _json.dumps({"event": "mark", "streamSid": stream_id, "mark": {"name": name}})

    def clear(self, stream_id: str) -> str:
        """``{"event": "clear", "streamSid": ...}``."""
        return _json.dumps({"event": "clear", "streamSid": stream_id})


# -- TwiML ------------------------------------------------------------------------------


def connect_stream_twiml(stream_url: str, *, parameters: Mapping[str, str] | None = None) -> str:
    """The TwiML document that connects the call to a bidirectional Media Stream.

    Args:
        stream_url: the ``wss://`` (or ``ws://`` for local tests) URL of the stream
            endpoint; Twilio allows no query string in it.
        parameters: name/value pairs Twilio hands back in ``start.customParameters``.

    Raises:
        ConfigError: a URL that is not ``ws(s)://host/...`` or has a query string,
            or a parameter that is not a non-empty ``str`` name with a ``str`` value.
    """
    parts = urlsplit(stream_url)
    if parts.scheme not in {"wss", "ws"} or not parts.netloc:
        raise ConfigError(f"stream_url must be a wss:// URL, got {parts.scheme or 'no'} scheme")
    if parts.query or parts.fragment:
        raise ConfigError("Twilio accepts no query string in a stream URL: use parameters")
    response = ElementTree.Element("Response")
    stream = ElementTree.SubElement(
        ElementTree.SubElement(response, "Connect"), "Stream", {"url": stream_url}
    )
    for name, value in (parameters or {}).items():
        if not isinstance(name, str) or not name or not isinstance(value, str):
            raise ConfigError("TwiML stream parameters must be non-empty str names with str values")
        ElementTree.SubElement(stream, "Parameter", {"name": name, "value": value})
    body = ElementTree.tostring(response, encoding="unicode", short_empty_elements=True)
    return '<?xml version="1.0" encoding="UTF-8"?>' + body


# -- X-Twilio-Signature -------------------------------------------------------------------


def _pairs(params: FormParams | None) -> list[tuple[str, str]]:
    if params is None:
        return []
    if isinstance(params, Mapping):
        return [(str(k), str(v)) for k, v in params.items()]
    return [(str(k), str(v)) for k, v in params]


def twilio_signature(
    auth_token: str, url: str, params: FormParams | None = None, *, algorithm: str = "HMAC_SHA1"
) -> str:
    """The ``X-Twilio-Signature`` Twilio sends for a request to ``url`` with ``params``.

    Base64 of an HMAC (key: the auth token, or the shared key of a webhook signed
    with one) over ``url`` followed by each parameter name and value, sorted by name
    (values of a repeated name sorted too).

    Args:
        algorithm: ``"HMAC_SHA1"`` (Twilio's auth-token signature) or
            ``"HMAC_SHA256"`` (named by ``X-Twilio-Webhooks-Signature-Settings``).

    Raises:
        ConfigError: another algorithm.
    """
    digest_name = _ALGORITHMS.get(algorithm.upper())
    if digest_name is None:
        raise ConfigError(f"unsupported Twilio signature algorithm {algorithm!r}")
    data = url + "".join(name + value for name, value in sorted(set(_pairs(params))))
    digest = hmac.new(auth_token.encode(), data.encode(), digest_name).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named by an ``X-Twilio-Webhooks-Signature-Settings`` header
    (``key=...,algorithm=HMAC_SHA256``); ``"HMAC_SHA1"`` when absent or silent."""
    for item in (settings_header or "").split(","):
        name, _, value = item.strip().partition("=")
        if name.strip().lower() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def _url_variants(url: str) -> list[str]:
    """``url`` as given, without its default port and with it (Twilio may sign either)."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80, "wss": 443, "ws": 80}.get(parts.scheme)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0] + "@" if "@" in parts.netloc else ""
    variants = [url]
    if default is not None:
        if parts.port == default:
            variants.append(urlunsplit(parts._replace(netloc=f"{userinfo}{host}")))
        elif parts.port is None:
            variants.append(urlunsplit(parts._replace(netloc=f"{userinfo}{host}:{default}")))
    return variants


def verify_twilio_signature(
    auth_token: str,
    url: str,
    params: FormParams | None,
    signature: str | None,
    *,
    algorithm: str = "HMAC_SHA1",
) -> bool:
    """True when ``signature`` is Twilio's signature of the request (constant time).

    Args:
        auth_token: the Twilio account's auth token (the HMAC key).
        url: the full URL Twilio requested, scheme, host, path and query, exactly as
            configured in Twilio (behind a proxy: the public URL, not the local one).
        params: the POST form parameters (empty for a GET or a WebSocket upgrade).
        signature: the ``X-Twilio-Signature`` header, ``None`` when absent.
        algorithm: from :func:`signature_algorithm`; an unknown one never verifies.
    """
    if not signature or not auth_token or algorithm.upper() not in _ALGORITHMS:
        return False
    expected = signature.encode("ascii", "replace")
    matches = [
        hmac.compare_digest(
            twilio_signature(auth_token, variant, params, algorithm=algorithm).encode(), expected
        )
        for variant in _url_variants(url)
    ]
    return any(matches)
