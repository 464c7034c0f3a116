"""What a telephone carrier's media stream is, whatever the carrier: the serializer seam.

Twilio Media Streams, Telnyx media streaming, Plivo audio streams and Vonage's
WebSocket connector all open a WebSocket to the application and exchange the same
few things over it, each in its own JSON (or binary) shape:

* from the carrier: *connected*, *start* (call and stream ids, the media format, the
  custom parameters of the call), *media* (a chunk of the caller's audio), *mark*
  (an outbound marker has been played, or dropped by a clear), *dtmf* (a key press)
  and *stop*;
* to the carrier: *media* (audio to play), *mark* (tell me when playback reaches
  this point) and *clear* (drop everything queued: barge-in).

A carrier is therefore one :class:`CarrierSerializer`: it turns a wire frame into
one of the typed :data:`CarrierEvent` classes below and builds the three outbound
frames. Everything else (μ-law and resampling, framing, played-position tracking
from mark acknowledgements, the order of events) is shared, in
:class:`voxengine.serve.telephony.stream.MediaStream`.

Contract for serializers: :meth:`CarrierSerializer.parse` is pure and sync, returns
exactly one event per frame, and raises :class:`CarrierFrameError` (and nothing
else) for a frame it cannot read. A well-formed frame with an event name the
serializer does not know becomes :class:`UnknownCarrierEvent` (carriers add events;
a new one must not hang up calls), never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias

from voxengine.errors import ProtocolViolation

__all__ = [
    "CarrierEvent",
    "CarrierFrameError",
    "CarrierSerializer",
    "DtmfReceived",
    "MarkPlayed",
    "MediaReceived",
    "StreamConnected",
    "StreamStarted",
    "StreamStopped",
    "UnknownCarrierEvent",
    "WireAudio",
    "WireEncoding",
]

WireEncoding: TypeAlias = Literal["mulaw", "pcm16"]
"""Audio encodings a carrier stream may carry: 8-bit G.711 μ-law or 16-bit linear PCM."""


class CarrierFrameError(ProtocolViolation):
    """A carrier frame cannot be accepted: not the carrier's format, a field missing or
    of the wrong type, undecodable audio, too large, or out of order (media before
    *start*, a second *start*, another stream's id).

    The endpoint closes that one call when it sees this; no other call is affected.
    The message names the problem and never quotes the frame (it may be huge or hold
    a token).
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class WireAudio:
    """The audio format on a carrier's wire: ``encoding`` at ``sample_rate`` Hz, mono."""

    encoding: WireEncoding
    sample_rate: int

    @property
    def bytes_per_second(self) -> int:
        """Wire bytes per second of sound (8000 for 8 kHz μ-law)."""
        return self.sample_rate * (1 if self.encoding == "mulaw" else 2)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamConnected:
    """The carrier opened the stream (Twilio's first message, before *start*)."""

    protocol: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStarted:
    """The stream's metadata: who is calling and in which format audio will flow.

    ``custom_parameters`` are the name/value pairs the application put in the call
    instructions (TwiML ``<Parameter>``), e.g. the stream token.
    """

    stream_id: str
    call_id: str
    account_id: str = ""
    encoding: str = ""
    sample_rate: int = 0
    channels: int = 1
    custom_parameters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaReceived:
    """A chunk of the caller's audio, still in the wire encoding (``payload``).

    ``timestamp`` is the carrier's stream time of the chunk in seconds and
    ``sequence`` its message number, when the carrier sends them.
    """

    payload: bytes
    stream_id: str | None = None
    timestamp: float | None = None
    sequence: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkPlayed:
    """The carrier reached the outbound mark ``name``: everything sent before it has
    been played to the caller, or was dropped by a *clear*."""

    name: str
    stream_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived:
    """The caller pressed ``digit`` (``0``-``9``, ``*``, ``#``, ``A``-``D``)."""

    digit: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamStopped:
    """The carrier ended the stream (the caller hung up or the call moved on)."""

    reason: str = "stop"


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownCarrierEvent:
    """A well-formed frame whose event this serializer does not know (ignored)."""

    event: str


CarrierEvent: TypeAlias = (
    StreamConnected
    | StreamStarted
    | MediaReceived
    | MarkPlayed
    | DtmfReceived
    | StreamStopped
    | UnknownCarrierEvent
)
"""Everything a carrier can say, one class per kind of frame."""


class CarrierSerializer(Protocol):
    """One carrier's wire format (the extension point: one class per carrier).

    Implementations are stateless apart from configuration; the stream id the
    outbound builders take comes from the carrier's :class:`StreamStarted`.
    """

    @property
    def name(self) -> str:
        """Short lower-case carrier name for logs and metrics (``"twilio"``)."""
        ...

    @property
    def wire_audio(self) -> WireAudio:
        """The audio format both directions use on this carrier's wire."""
        ...

    def parse(self, frame: str | bytes) -> CarrierEvent:
        """The event one inbound WebSocket frame carries.

        Raises:
            CarrierFrameError: the frame is not one of this carrier's frames.
        """
        ...

    def media(self, stream_id: str, payload: bytes) -> str | bytes:
        """The frame that plays ``payload`` (wire-encoded audio) to the caller."""
        ...

    def mark(self, stream_id: str, name: str) -> str | bytes:
        """The frame asking the carrier to report :class:`MarkPlayed` ``name`` once
        everything sent before it has been played."""
        ...

    def clear(self, stream_id: str) -> str | bytes:
        """The frame that drops all audio queued at the carrier (barge-in)."""
        ...
