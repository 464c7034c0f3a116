"""One carrier media stream, sans-I/O: frames in, caller audio and played positions out.

:class:`MediaStream` is the logic every carrier shares; the carrier's wire format is
its :class:`~voxengine.serve.telephony.carrier.CarrierSerializer`. It never does I/O:
the endpoint feeds it each WebSocket frame (:meth:`MediaStream.receive_frame`) and
sends the frames it returns (:meth:`MediaStream.send_audio`, :meth:`MediaStream.clear`).

Audio. Inbound wire audio (8 kHz μ-law for Twilio) becomes PCM16 at the engine's
``input_rate``; outbound PCM16 at ``output_rate`` becomes wire audio cut into
``chunk_seconds`` media frames. Both directions resample with
:class:`voxengine.audio.lowdelay.LowDelayResampler`: a proper low-pass (images of
the 8 kHz audio going up, aliases going down, at least 60 dB down) that holds no
audio back, so a 20 ms frame in gives 20 ms out at once; the signal is delayed by
the filter's 3 ms group delay only.

Played position. After each outbound media frame a mark follows; the carrier
acknowledges a mark once everything before it has been played. ``played_seconds``
is the outbound audio the caller has heard, from the marks acknowledged so far, on
a timeline that starts at 0 with the stream and runs through every reply;
``sent_seconds`` is what has been sent on the same timeline. :meth:`clear` (barge-in)
drops the audio the carrier has queued, so afterwards ``sent_seconds`` falls back to
``played_seconds``. Carriers answer a clear by acknowledging every pending mark at
once; those acknowledgements are ignored, because that audio was never heard. The
position is therefore exact to one chunk, and errs towards "heard less" (an ack in
flight while the clear is sent is not counted). An acknowledgement of a mark that was
never sent (more acks than marks) is a :class:`CarrierFrameError`, so mark frames
are bounded by what this side sent and need no rate limit of their own.

Order. A stream must open with *start* (an optional *connected* before it), exactly
once; media, marks and key presses before it, a second *start*, or a frame for
another stream id raise :class:`CarrierFrameError`, as does any frame larger than
``max_frame_bytes`` or any media payload larger than ``max_payload_bytes``.
Nothing is accepted after *stop*.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final, TypeAlias, final

from voxengine.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from voxengine.audio.lowdelay import LowDelayResampler
from voxengine.errors import ConfigError, InvalidState
from voxengine.serve.telephony.carrier import (
    CarrierFrameError,
    CarrierSerializer,
    DtmfReceived,
    MarkPlayed,
    MediaReceived,
    StreamConnected,
    StreamStarted,
    StreamStopped,
    UnknownCarrierEvent,
)

__all__ = ["CallerAudio", "MediaStream", "PlayedUpTo", "StreamEvent"]

logger = logging.getLogger("voxengine.serve.telephony")

_MARK_PREFIX: Final = "vx"


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerAudio:
    """The caller's audio as PCM16 mono at the stream's ``input_rate``.

    ``timestamp`` is the carrier's stream time of the chunk (seconds), if it sent one.
    """

    pcm: bytes
    timestamp: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayedUpTo:
    """The caller has now heard ``seconds`` of outbound audio (the stream's timeline)."""

    seconds: float


StreamEvent: TypeAlias = StreamStarted | CallerAudio | PlayedUpTo | DtmfReceived | StreamStopped
"""What :meth:`MediaStream.receive_frame` reports to the endpoint."""


@final
class MediaStream:
    """The shared state machine of one carrier media stream (see the module docstring).

    Args:
        serializer: the carrier's wire format.
        input_rate: sample rate (Hz) of the PCM16 the engine wants from the caller.
        output_rate: sample rate (Hz) of the PCM16 the engine plays to the caller.
        chunk_seconds: outbound audio per media frame (and per mark): the precision
            of the played position. 20 ms by default, as carriers send.
        max_frame_bytes: largest inbound frame accepted.
        max_payload_bytes: largest decoded inbound media payload accepted.

    Raises:
        ConfigError: a rate, size or chunk length that is not positive.
    """

    __slots__ = (
        "_chunk_bytes",
        "_downsampler",
        "_input_rate",
        "_mark_count",
        "_marks_received",
        "_max_frame_bytes",
        "_max_payload_bytes",
        "_outbox",
        "_pending_marks",
        "_played",
        "_sent",
        "_serializer",
        "_started",
        "_stopped",
        "_stray_marks",
        "_upsampler",
    )

    def __init__(
        self,
        serializer: CarrierSerializer,
        *,
        input_rate: int,
        output_rate: int,
        chunk_seconds: float = 0.02,
        max_frame_bytes: int = 64 * 1024,
        max_payload_bytes: int = 16_000,
    ) -> None:
        wire = serializer.wire_audio
        if not 0.0 < chunk_seconds <= 10.0:
            raise ConfigError(f"chunk_seconds must be in (0, 10], got {chunk_seconds!r}")
        if max_frame_bytes <= 0 or max_payload_bytes <= 0:
            raise ConfigError("max_frame_bytes and max_payload_bytes must be positive")
        self._serializer = serializer
        self._input_rate = input_rate
        self._upsampler = LowDelayResampler(wire.sample_rate, input_rate)
        self._downsampler = LowDelayResampler(output_rate, wire.sample_rate)
        # the outbox holds PCM16 at the wire rate: 2 bytes a sample
        self._chunk_bytes = 2 * max(1, round(chunk_seconds * wire.sample_rate))
        self._max_frame_bytes = max_frame_bytes
        self._max_payload_bytes = max_payload_bytes
        self._outbox = bytearray()
        self._pending_marks: dict[str, float] = {}
        self._mark_count = 0
        self._marks_received = 0
        self._stray_marks = 0  # acknowledgements still owed for cleared or implied marks
        self._sent = 0.0
        self._played = 0.0
        self._started: StreamStarted | None = None
        self._stopped = False

    # -- state ----------------------------------------------------------------------------

    @property
    def serializer(self) -> CarrierSerializer:
        """The carrier's wire format."""
        return self._serializer

    @property
    def started(self) -> StreamStarted | None:
        """The stream's *start* metadata, ``None`` until it arrived."""
        return self._started

    @property
    def stopped(self) -> bool:
        """True once the carrier sent *stop*."""
        return self._stopped

    @property
    def sent_seconds(self) -> float:
        """Outbound audio sent to the carrier and not cleared (seconds, whole stream)."""
        return self._sent

    @property
    def played_seconds(self) -> float:
        """Outbound audio the carrier confirmed as played (seconds, whole stream)."""
        return self._played

    @property
    def queued_seconds(self) -> float:
        """Outbound audio sent but not yet confirmed played (the carrier's queue)."""
        return self._sent - self._played

    @property
    def marks_received(self) -> int:
        """Mark acknowledgements accepted so far (they are bounded by the marks sent)."""
        return self._marks_received

    @property
    def input_rate(self) -> int:
        """Sample rate (Hz) of the :class:`CallerAudio` this stream produces."""
        return self._input_rate

    def set_input_rate(self, rate: int) -> None:
        """Produce caller audio at ``rate`` Hz from now on (e.g. the provider's own
        rate once the call's engine is known, so audio is resampled once).

        Raises:
            ConfigError: a rate that is not a positive int.
        """
        if rate != self._input_rate:
            self._upsampler = LowDelayResampler(self._serializer.wire_audio.sample_rate, rate)
            self._input_rate = rate

    # -- inbound --------------------------------------------------------------------------

    def receive_frame(self, frame: str | bytes) -> list[StreamEvent]:
        """Take one inbound WebSocket frame; return what it means for the call.

        Returns:
            Zero or more events: :class:`StreamStarted` once, :class:`CallerAudio`
            for media (all of it: the resampler holds nothing back),
            :class:`PlayedUpTo` when a
            mark moves the played position, :class:`DtmfReceived`,
            :class:`StreamStopped`.

        Raises:
            CarrierFrameError: a frame the carrier's protocol does not allow here
                (see the module docstring); the stream should be closed.
        """
        if self._stopped:
            raise CarrierFrameError(f"{self._serializer.name}: frame after stop")
        if len(frame) > self._max_frame_bytes:
            raise CarrierFrameError(
                f"{self._serializer.name}: frame of {len(frame)} bytes exceeds the "
                f"{self._max_frame_bytes}-byte limit"
            )
        event = self._serializer.parse(frame)
        match event:
            case MediaReceived():
                return self._receive_media(event)
            case MarkPlayed():
                self._check_stream(event.stream_id, "mark")
                events = self._receive_mark(event.name)
                self._marks_received += 1
                return events
            case StreamStarted():
                if self._started is not None:
                    raise CarrierFrameError(f"{self._serializer.name}: second start message")
                self._check_format(event)
                self._started = event
                return [event]
            case DtmfReceived():
                self._check_stream(None, "dtmf")
                return [event]
            case StreamStopped():
                self._stopped = True
                return [event]
            case StreamConnected():
                if self._started is not None:
                    raise CarrierFrameError(f"{self._serializer.name}: connected after start")
                return []
            case UnknownCarrierEvent():
                logger.debug("%s: ignoring unknown event %r", self._serializer.name, event.event)
                return []

    def _check_stream(self, stream_id: str | None, what: str) -> None:
        if self._started is None:
            raise CarrierFrameError(f"{self._serializer.name}: {what} before start")
        if stream_id is not None and stream_id != self._started.stream_id:
            raise CarrierFrameError(f"{self._serializer.name}: {what} for another stream")

    def _check_format(self, started: StreamStarted) -> None:
        wire = self._serializer.wire_audio
        if (
            started.encoding != wire.encoding
            or started.sample_rate != wire.sample_rate
            or started.channels != 1
        ):
            raise CarrierFrameError(
                f"{self._serializer.name}: unsupported media format {started.encoding!r} "
                f"{started.sample_rate} Hz x{started.channels} (expected {wire.encoding} "
                f"{wire.sample_rate} Hz mono)"
            )

    def _receive_media(self, media: MediaReceived) -> list[StreamEvent]:
        self._check_stream(media.stream_id, "media")
        payload = media.payload
        if len(payload) > self._max_payload_bytes:
            raise CarrierFrameError(
                f"{self._serializer.name}: media payload of {len(payload)} bytes exceeds "
                f"the {self._max_payload_bytes}-byte limit"
            )
        if self._serializer.wire_audio.encoding == "mulaw":
            pcm = ulaw_to_pcm16(payload)
        elif len(payload) % 2:
            raise CarrierFrameError(f"{self._serializer.name}: PCM16 payload of odd length")
        else:
            pcm = payload
        pcm = self._upsampler.process(pcm)
        if not pcm:
            return []
        return [CallerAudio(pcm=pcm, timestamp=media.timestamp)]

    def _receive_mark(self, name: str) -> list[StreamEvent]:
        position = self._pending_marks.get(name)
        if position is None:  # cleared (or implied by a later one): nothing heard because of it
            if self._stray_marks <= 0:
                raise CarrierFrameError(f"{self._serializer.name}: mark that was never sent")
            self._stray_marks -= 1
            return []
        # marks are acknowledged in order: this one implies every earlier one
        for pending in list(self._pending_marks):
            del self._pending_marks[pending]
            if pending == name:
                break
            self._stray_marks += 1
        self._played = max(self._played, position)
        return [PlayedUpTo(seconds=self._played)]

    # -- outbound -------------------------------------------------------------------------

    def send_audio(self, pcm: bytes, *, partial: bool = False) -> list[str | bytes]:
        """Frames that play ``pcm`` (PCM16 mono at ``output_rate``) to the caller.

        Audio is cut into ``chunk_seconds`` media frames, each followed by a mark; a
        remainder shorter than one chunk waits for the next call or :meth:`flush`,
        unless ``partial`` (then it leaves now as a shorter frame: no added delay).

        Raises:
            InvalidState: before *start* (no stream id yet) or after *stop*.
            AudioError: ``pcm`` is not whole PCM16 samples.
        """
        stream_id = self._outbound_stream_id()
        self._outbox += self._downsampler.process(pcm)
        return self._drain(stream_id, whole_chunks_only=not partial)

    def flush(self) -> list[str | bytes]:
        """Frames for all outbound audio still held back (the resampler's tail and a
        partial chunk): call at the end of a reply.

        Raises:
            InvalidState: before *start* or after *stop*.
        """
        stream_id = self._outbound_stream_id()
        self._outbox += self._downsampler.flush()
        return self._drain(stream_id, whole_chunks_only=False)

    def clear(self) -> list[str | bytes]:
        """Frames that stop playback now (barge-in): the carrier drops its queue.

        Outbound audio held here is dropped too, pending marks are forgotten, and
        ``sent_seconds`` falls back to ``played_seconds``: the caller's played
        position at the moment of the clear is :attr:`played_seconds`.

        Raises:
            InvalidState: before *start* or after *stop*.
        """
        stream_id = self._outbound_stream_id()
        self._outbox.clear()
        self._downsampler.reset()
        self._stray_marks += len(self._pending_marks)
        self._pending_marks.clear()
        self._sent = self._played
        return [self._serializer.clear(stream_id)]

    def _outbound_stream_id(self) -> str:
        if self._started is None:
            raise InvalidState("the carrier stream has not started yet")
        if self._stopped:
            raise InvalidState("the carrier stream has stopped")
        return self._started.stream_id

    def _drain(self, stream_id: str, *, whole_chunks_only: bool) -> list[str | bytes]:
        wire = self._serializer.wire_audio
        frames: list[str | bytes] = []
        size = self._chunk_bytes
        outbox = self._outbox
        while len(outbox) >= size or (outbox and not whole_chunks_only):
            chunk = bytes(outbox[:size])
            del outbox[:size]
            payload = pcm16_to_ulaw(chunk) if wire.encoding == "mulaw" else chunk
            self._sent += len(chunk) / (2 * wire.sample_rate)
            self._mark_count += 1
            name = f"{_MARK_PREFIX}{self._mark_count}"
            self._pending_marks[name] = self._sent
            frames.append(self._serializer.media(stream_id, payload))
            frames.append(self._serializer.mark(stream_id, name))
        return frames
