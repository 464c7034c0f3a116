"""Sans-I/O protocol state machines: wire messages in, typed events out.

A protocol never does I/O and never imports asyncio or websockets. The session layer
feeds it what arrives on the socket and sends what it asks to send::

    protocol.receive_message(frame)
    for frame in protocol.data_to_send(): await ws.send(frame)
    for event in protocol.events_received(): deliver(event)
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from voxengine.audio.format import AudioFormat
from voxengine.commands import Command
from voxengine.errors import VoxError
from voxengine.events import AudioDelta, Event
from voxengine.redaction import redact_headers, redact_url

__all__ = [
    "AudioTap",
    "AudioTapping",
    "ConnectRequest",
    "HotPath",
    "ProtocolState",
    "RealtimeProtocol",
    "TapProgress",
    "redact_url",
]


class ProtocolState(enum.Enum):
    """Lifecycle of a protocol: handshake, usable, closing, closed."""

    CONNECTING = "connecting"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """Where and how to open the WebSocket. Its repr never shows credentials."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = redact_headers(self.headers)
        return f"ConnectRequest(url={redact_url(self.url)!r}, headers={shown!r})"


class RealtimeProtocol(Protocol):
    """What the session layer needs from a provider's wire protocol.

    Contract: ``send`` and ``receive_*`` never do I/O and never block; the only
    exception ``send`` raises is :class:`~voxengine.errors.InvalidState` (and
    :class:`~voxengine.errors.AudioError` / :class:`~voxengine.errors.ConfigError`
    for invalid command contents). ``receive_message`` turns anything the peer
    sends, even garbage, into events; it does not raise.
    """

    @property
    def state(self) -> ProtocolState: ...

    @property
    def close_exc(self) -> VoxError | None:
        """Why the protocol closed, when it closed because of a failure."""
        ...

    @property
    def input_format(self) -> AudioFormat: ...

    @property
    def output_format(self) -> AudioFormat: ...

    def connect_request(self) -> ConnectRequest: ...

    def receive_message(self, data: str | bytes) -> None: ...

    def receive_close(self, code: int | None, reason: str) -> None: ...

    def send(self, command: Command) -> None: ...

    def start_closing(self) -> None:
        """The client is closing: later commands raise InvalidState."""
        ...

    def events_received(self) -> list[Event]: ...

    def data_to_send(self) -> list[str | bytes]: ...


@runtime_checkable
class HotPath(Protocol):
    """Optional shortcuts a protocol offers for the frames that are nearly all traffic:
    assistant audio in, user audio out (50 of each a second). A session uses them when
    the protocol has them (fast mode pays for nothing else per frame); they must give
    exactly what the general path gives.
    """

    def receive_audio(self, data: str | bytes) -> AudioDelta | None:
        """Decode one frame like :meth:`RealtimeProtocol.receive_message`, except that
        when the frame is an audio delta that decodes cleanly while ``OPEN`` its
        :class:`~voxengine.events.AudioDelta` is returned instead of queued (it is then
        the frame's only event, and nothing is to be sent). Otherwise the frame is
        handled exactly as ``receive_message`` handles it and ``None`` is returned."""
        ...

    def encode_audio(self, audio: bytes) -> bytes | None:
        """The UTF-8 text frame that ``send(SendAudio(audio=audio))`` would queue, for
        the caller to write itself, when it can go out now (``OPEN``, nothing queued);
        else ``None`` (use :meth:`RealtimeProtocol.send`). ``audio`` is already valid
        PCM16 (``bytes`` of whole samples): the caller checked it."""
        ...


@dataclass(frozen=True, slots=True)
class AudioTap:
    """The application's callbacks for what a session hands over straight from its
    socket, and what to do when they misbehave (see :mod:`voxengine.session.tap`).

    Attributes:
        callback: called with each chunk of assistant audio (PCM16 at the provider's
            output rate), inside the socket's read callback: it must not block.
        failed: called with the callback that raised (``callback`` or ``text``),
            inside the ``except`` block; the session goes on.
        pending: called with what a callback returned when that is an awaitable (a
            callback that turned out to be asynchronous), to await it elsewhere.
        text: when set, called the same way with each assistant text or transcript
            delta (what ``TextDelta.delta`` / ``TranscriptDelta.delta`` would carry);
            ``None``: those keep coming as events.
    """

    callback: Callable[[bytes], object]
    failed: Callable[[Callable[..., object]], None]
    pending: Callable[[Awaitable[object]], None]
    text: Callable[[str], object] | None = None


class TapProgress(Protocol):
    """What a tap records of the frames it takes (the session's response tracker):
    ``progress_at`` is the clock's time of the last one; ``audio_item_id`` the item
    whose audio came last and ``audio_bytes`` how much of it arrived."""

    progress_at: float
    audio_item_id: str | None
    audio_bytes: int


@runtime_checkable
class AudioTapping(Protocol):
    """A protocol that can decode its hottest frames straight from the socket's bytes.

    For a session whose audio (and, optionally, text) goes to one plain callback (fast
    mode): the tap decodes an audio delta and calls the application with nothing built
    in between, no event object, no other Python frame.
    """

    def audio_tap(
        self, tap: AudioTap, progress: TapProgress, clock: Callable[[], float]
    ) -> Callable[[bytes | bytearray | memoryview], bool]:
        """A text-frame tap (``voxengine.transport.TextTap``) for ``tap``.

        Given a whole text frame's raw payload, while the protocol is not ``CLOSED``:

        * a well-formed audio delta (exactly the audio :meth:`HotPath.receive_audio`
          would return in its :class:`~voxengine.events.AudioDelta`) goes to
          ``tap.callback``;
        * with ``tap.text`` set, a well-formed assistant text or transcript delta goes
          to ``tap.text`` with the ``delta`` its event would carry;

        then ``progress`` is updated as :class:`~voxengine.session.tracker.ResponseTracker`
        does for those events (``progress_at = clock()``; for audio, the item and its
        byte count) and the tap returns True. A callback's exception goes to
        ``tap.failed`` and an awaitable it returns to ``tap.pending``. Any other frame
        changes nothing and returns False: it then takes the general path
        (:meth:`RealtimeProtocol.receive_message`). The tap may decline any frame (e.g.
        one with a field missing), never take one the general path would turn into
        anything else. It never raises.
        """
        ...
