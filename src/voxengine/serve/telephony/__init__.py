"""Phone calls: carrier media streams (Twilio Media Streams first) in front of a Call.

The layer has three parts, so that a new carrier (Telnyx, Plivo, Vonage, a SIP
gateway) is one serializer:

* :mod:`~voxengine.serve.telephony.carrier`: the typed events every carrier's stream
  carries and the :class:`CarrierSerializer` protocol (one class per carrier);
* :mod:`~voxengine.serve.telephony.stream`: :class:`MediaStream`, the shared
  sans-I/O logic: μ-law and resampling, framing, played position from marks, clear;
* :mod:`~voxengine.serve.telephony.twilio`: Twilio's serializer, TwiML and
  ``X-Twilio-Signature``.

Nothing here does I/O; the web endpoints that use them live beside them.
"""

from __future__ import annotations

from voxengine.serve.telephony.carrier import (
    CarrierEvent,
    CarrierFrameError,
    CarrierSerializer,
    DtmfReceived,
    MarkPlayed,
    MediaReceived,
    StreamConnected,
    StreamStarted,
    StreamStopped,
    UnknownCarrierEvent,
    WireAudio,
)
from voxengine.serve.telephony.stream import CallerAudio, MediaStream, PlayedUpTo, StreamEvent
from voxengine.serve.telephony.twilio import (
    TWILIO_WIRE_AUDIO,
    TwilioSerializer,
    connect_stream_twiml,
    signature_algorithm,
    twilio_signature,
    verify_twilio_signature,
)

__all__ = [
    "TWILIO_WIRE_AUDIO",
    "CallerAudio",
    "CarrierEvent",
    "CarrierFrameError",
    "CarrierSerializer",
    "DtmfReceived",
    "MarkPlayed",
    "MediaReceived",
    "MediaStream",
    "PlayedUpTo",
    "StreamConnected",
    "StreamEvent",
    "StreamStarted",
    "StreamStopped",
    "TwilioSerializer",
    "UnknownCarrierEvent",
    "WireAudio",
    "connect_stream_twiml",
    "signature_algorithm",
    "twilio_signature",
    "verify_twilio_signature",
]
