"""Sans-I/O protocol state machines: wire messages in, typed events out.

A protocol never does I/O and never imports asyncio or websockets. The session layer
feeds it what arrives on the socket and sends what it asks to send::

    protocol.receive_message(frame)
    for frame in protocol.data_to_send(): await ws.send(frame)
    for event in protocol.events_received(): deliver(event)
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from voxengine.audio.format import AudioFormat
from voxengine.commands import Command
from voxengine.errors import VoxError
from voxengine.events import AudioDelta, Event
from voxengine.redaction import redact_headers, redact_url

__all__ = [
    "AudioDeliver",
    "AudioTapping",
    "ConnectRequest",
    "HotPath",
    "ProtocolState",
    "RealtimeProtocol",
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


#: Takes a clean audio delta's ``response_id``, ``item_id`` and PCM16 audio.
AudioDeliver = Callable[[str, str, bytes], None]


@runtime_checkable
class AudioTapping(Protocol):
    """A protocol that can decode its audio frames straight from the socket's bytes.

    For a session whose audio goes to one plain callback (fast mode): the tap decodes
    an audio delta and hands it on with nothing built in between, no event object.
    """

    def audio_tap(self, deliver: AudioDeliver) -> Callable[[bytes | bytearray | memoryview], bool]:
        """A text-frame tap (``voxengine.transport.TextTap``): given a whole text
        frame's raw payload, when it is a well-formed audio delta while the protocol
        is not ``CLOSED``, call ``deliver(response_id, item_id, audio)`` with exactly
        what :meth:`HotPath.receive_audio` would return in its
        :class:`~voxengine.events.AudioDelta`, and return True. Otherwise change
        nothing and return False: the frame then takes the general path
        (:meth:`RealtimeProtocol.receive_message`). It may decline any frame (e.g.
        one with a field missing), never one ``receive_audio`` would not return. It
        never raises for bad input; ``deliver``'s exceptions propagate."""
        ...
