"""Sans-I/O protocol state machines: wire messages in, typed events out.

A protocol never does I/O and never imports asyncio or websockets. The session layer
feeds it what arrives on the socket and sends what it asks to send::

    protocol.receive_message(frame)
    for frame in protocol.data_to_send(): await ws.send(frame)
    for event in protocol.events_received(): deliver(event)
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from voxengine.audio.format import AudioFormat
from voxengine.commands import Command
from voxengine.errors import VoxError
from voxengine.events import Event
from voxengine.redaction import redact_headers, redact_url

__all__ = ["ConnectRequest", "ProtocolState", "RealtimeProtocol", "redact_url"]


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
