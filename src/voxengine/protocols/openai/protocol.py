"""The OpenAI Realtime client protocol as a sans-I/O state machine.

Implements openai-realtime.md §2 (connect), §3 (envelope), §5 (client events),
§6 (server events) and §10 (errors) for the GA interface, and the beta shape of §12
for Azure's preview endpoint.

Lifecycle: ``CONNECTING`` until the server's ``session.created`` has been answered
with our ``session.update`` and the server confirmed it with ``session.updated``;
then ``OPEN`` (a :class:`~voxengine.events.SessionReady` event marks it). Commands
sent while ``CONNECTING`` are buffered and go out, in order, right after the
handshake. After ``CLOSED`` every command raises
:class:`~voxengine.errors.InvalidState`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, final

from voxengine import _json
from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.commands import Command, SendAudio, UpdateSession
from voxengine.config import SessionConfig
from voxengine.errors import (
    AuthenticationFailed,
    ConnectionClosedError,
    ConnectionClosedOK,
    InvalidState,
    ProviderError,
    RateLimited,
    SessionExpired,
    VoxError,
)
from voxengine.events import (
    Event,
    ProviderErrorEvent,
    SessionClosed,
    SessionReady,
    SessionUpdated,
    UnknownEvent,
)
from voxengine.protocols import ConnectRequest, ProtocolState
from voxengine.protocols.openai._decode import DECODERS
from voxengine.protocols.openai._wire import Dialect, encode_command

__all__ = ["OpenAIRealtimeProtocol"]

logger = logging.getLogger("voxengine.protocols.openai")

#: Error codes after which the server closes the socket (§10).
_FATAL_CODES = frozenset(
    {
        "invalid_api_key",
        "missing_model",
        "invalid_model",
        "beta_api_shape_disabled",
        "session_expired",
    }
)
_RATE_CODES = frozenset({"rate_limit_exceeded", "insufficient_quota"})
#: The close code the server follows each fatal error with (§10).
_FATAL_CLOSE_CODES = {
    "invalid_api_key": 3000,
    "missing_model": 4000,
    "invalid_model": 4000,
    "beta_api_shape_disabled": 4000,
    "session_expired": 1001,
}


@final
class OpenAIRealtimeProtocol:
    """Client side of one OpenAI Realtime WebSocket session.

    Args:
        url: full WebSocket URL including the ``model`` (or Azure ``deployment``) query.
        headers: handshake headers, credentials included; never logged.
        session: settings sent in the first ``session.update``.
        dialect: ``Dialect.GA`` (OpenAI, Azure v1) or ``Dialect.BETA`` (Azure preview).

    Raises:
        ConfigError: if ``session`` holds settings the dialect cannot express.
    """

    def __init__(
        self,
        *,
        url: str,
        headers: Mapping[str, str],
        session: SessionConfig,
        dialect: Dialect = Dialect.GA,
    ) -> None:
        self._request = ConnectRequest(url=url, headers=dict(headers))
        self._dialect = dialect
        self._session_config = session
        encode_command(UpdateSession(config=session), dialect, None)  # validate now
        self._state = ProtocolState.CONNECTING
        self._close_exc: VoxError | None = None
        self._events: list[Event] = []
        self._outgoing: list[str | bytes] = []
        self._pending: list[Command] = []
        self._next_id = 0
        self._handshake_event_id: str | None = None
        self._last_error: ProviderErrorEvent | None = None
        self.session_id: str = ""
        self.model: str = ""

    # -- properties -----------------------------------------------------------------

    @property
    def state(self) -> ProtocolState:
        """Current lifecycle state."""
        return self._state

    @property
    def close_exc(self) -> VoxError | None:
        """The failure that closed the protocol, if any."""
        return self._close_exc

    @property
    def input_format(self) -> AudioFormat:
        """PCM16 mono 24 kHz (§1)."""
        return PCM16_24K

    @property
    def output_format(self) -> AudioFormat:
        """PCM16 mono 24 kHz (§1)."""
        return PCM16_24K

    @property
    def dialect(self) -> Dialect:
        """The event shape this endpoint speaks."""
        return self._dialect

    def connect_request(self) -> ConnectRequest:
        """URL and headers for the WebSocket handshake."""
        return self._request

    # -- outbound -------------------------------------------------------------------

    def send(self, command: Command) -> None:
        """Queue the wire message(s) for ``command``.

        Buffered while ``CONNECTING``; raises :class:`InvalidState` once closing or closed.
        """
        if self._state in (ProtocolState.CLOSING, ProtocolState.CLOSED):
            raise InvalidState(
                f"cannot send {type(command).__name__}: session is {self._state.value}"
            )
        if self._state is ProtocolState.CONNECTING:
            self._pending.append(command)
            return
        self._emit(command)

    def _emit(self, command: Command) -> None:
        event_id = None if isinstance(command, SendAudio) else self._new_event_id()
        msg = encode_command(command, self._dialect, event_id)
        self._outgoing.append(_json.dumps(msg))

    def _new_event_id(self) -> str:
        self._next_id += 1
        return f"vx_{self._next_id}"

    def data_to_send(self) -> list[str | bytes]:
        """Frames to write to the socket, in order; clears the queue."""
        out, self._outgoing = self._outgoing, []
        return out

    def events_received(self) -> list[Event]:
        """Events decoded since the last call, in order; clears the queue."""
        out, self._events = self._events, []
        return out

    def start_closing(self) -> None:
        """Mark that the client is closing; further commands raise InvalidState."""
        if self._state is not ProtocolState.CLOSED:
            self._state = ProtocolState.CLOSING

    # -- inbound --------------------------------------------------------------------

    def receive_message(self, data: str | bytes) -> None:
        """Decode one frame from the server. Never raises for bad input (§3)."""
        if self._state is ProtocolState.CLOSED:
            return
        try:
            msg = _json.loads(data)
        except (ValueError, UnicodeDecodeError):
            self._events.append(
                ProviderErrorEvent(
                    code="malformed_frame",
                    message="server sent a frame that is not JSON; ignored",
                    error_type="protocol_violation",
                )
            )
            return
        kind = msg.get("type") if isinstance(msg, dict) else None
        if not isinstance(kind, str):
            self._events.append(
                ProviderErrorEvent(
                    code="malformed_frame",
                    message="server sent JSON without a string 'type'; ignored",
                    error_type="protocol_violation",
                )
            )
            return
        decoder = DECODERS.get(kind)  # first: audio and text deltas are nearly every frame
        if decoder is not None:
            self._events.extend(decoder(msg))
        elif kind == "session.created":
            self._on_session_created(msg)
        elif kind == "session.updated":
            self._on_session_updated(msg)
        elif kind == "error":
            self._on_error(msg)
        else:
            logger.debug("unknown server event %s", kind)
            raw = data if isinstance(data, str) else data.decode("utf-8", "replace")
            self._events.append(UnknownEvent(name=kind, raw=raw))

    def _on_session_created(self, msg: Mapping[str, Any]) -> None:
        session = msg.get("session")
        if isinstance(session, Mapping):
            self.session_id = str(session.get("id") or "")
            self.model = str(session.get("model") or "")
        if self._state is ProtocolState.CONNECTING and self._handshake_event_id is None:
            # Handshake: answer session.created with our configuration (§15.1).
            self._handshake_event_id = self._new_event_id()
            update = encode_command(
                UpdateSession(config=self._session_config), self._dialect, self._handshake_event_id
            )
            self._outgoing.append(_json.dumps(update))

    def _on_session_updated(self, msg: Mapping[str, Any]) -> None:
        if self._state is ProtocolState.CONNECTING and self._handshake_event_id is not None:
            self._state = ProtocolState.OPEN
            self._events.append(SessionReady(session_id=self.session_id, model=self.model))
            pending, self._pending = self._pending, []
            for command in pending:
                self._emit(command)
        else:
            self._events.append(SessionUpdated(session_id=self.session_id))

    def _on_error(self, msg: Mapping[str, Any]) -> None:
        error = msg.get("error")
        error = error if isinstance(error, Mapping) else {}

        def text(key: str) -> str | None:
            value = error.get(key)
            return value if isinstance(value, str) else None

        event = ProviderErrorEvent(
            code=text("code"),
            message=text("message") or "unspecified provider error",
            error_type=text("type"),
            param=text("param"),
            client_event_id=text("event_id"),
        )
        self._last_error = event
        if (
            self._state is ProtocolState.CONNECTING
            and event.client_event_id is not None
            and event.client_event_id == self._handshake_event_id
        ):
            # The server discarded our initial session.update (§3): fail the connect.
            self._fail(
                ProviderError(event.code, f"session configuration rejected: {event.message}")
            )
            return
        if event.code in _FATAL_CODES:
            # §10: the server closes right after a fatal error. Close now rather than
            # wait: a server (or proxy) that never sends the close would otherwise
            # leave a half-open session that accepts commands and answers none.
            code = _FATAL_CLOSE_CODES.get(event.code or "")
            self.receive_close(code, f"{event.code}: {event.message}")
            return
        self._events.append(event)

    def receive_close(self, code: int | None, reason: str) -> None:
        """The connection closed with ``code``/``reason`` (``None`` = no close frame)."""
        if self._state is ProtocolState.CLOSED:
            return
        was_closing = self._state is ProtocolState.CLOSING
        last = self._last_error
        exc: VoxError | None
        if code == 3000 or (last is not None and last.code == "invalid_api_key"):
            exc = AuthenticationFailed(
                f"authentication refused by the server ({last.message if last else reason})"
            )
        elif last is not None and last.code == "session_expired":
            exc = SessionExpired(last.code, last.message)
        elif last is not None and last.code in _FATAL_CODES:
            exc = ProviderError(last.code, last.message)
        elif code == 4000:
            exc = ProviderError(reason.rpartition(".")[2] or None, reason or "request refused")
        elif last is not None and last.code in _RATE_CODES and code not in (1000, None):
            exc = RateLimited(last.code, last.message)
        elif code in (1000, 1001) or was_closing:
            exc = ConnectionClosedOK(code, reason) if not was_closing else None
        else:
            exc = ConnectionClosedError(code, reason)
        self._fail(exc)
        self._events.append(SessionClosed(code=code, reason=reason))

    def _fail(self, exc: VoxError | None) -> None:
        self._state = ProtocolState.CLOSED
        if self._close_exc is None:
            self._close_exc = exc
        self._pending.clear()
