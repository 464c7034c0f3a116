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

One response at a time (§8.1, §9): the protocol follows ``response.created`` /
``response.done`` and applies the session's :class:`~voxengine.config.ReplyPolicy`
to a :class:`~voxengine.commands.CreateResponse` sent while a response is active or
requested: ``QUEUE`` (default) holds it until that response is done, ``INTERRUPT``
sends ``response.cancel`` first and the ``response.create`` once the cancelled
response is done. A ``response.create`` the server refuses with
``conversation_already_has_active_response`` (a race with a VAD-started response) is
queued again, not reported. Requests still queued when the connection closes are
reported by one ``ProviderErrorEvent(code="response_request_dropped")``.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Callable, Mapping
from inspect import isawaitable
from typing import Any, final

from voxengine import _json
from voxengine.audio.b64 import b64decode_quick, b64decode_strict, b64encode_bytes
from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.audio.pcm16 import b64encode_pcm16
from voxengine.commands import CancelResponse, Command, CreateResponse, SendAudio, UpdateSession
from voxengine.config import ReplyPolicy, SessionConfig
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
    AudioDelta,
    Event,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    SessionClosed,
    SessionReady,
    SessionUpdated,
    UnknownEvent,
    _quick_audio_delta,
)
from voxengine.protocols import AudioTap, ConnectRequest, ProtocolState, TapProgress
from voxengine.protocols.openai._decode import DECODERS, decode_audio_delta
from voxengine.protocols.openai._wire import Dialect, encode_command
from voxengine.redaction import redact, secrets_in

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
#: ``input_audio_buffer.append`` (§5) up to its base64 audio, as ``_json.dumps`` writes it.
_AUDIO_APPEND_HEAD = '{"type":"input_audio_buffer.append","audio":"'
_AUDIO_APPEND_HEAD_UTF8 = _AUDIO_APPEND_HEAD.encode()
_b2a = b64encode_bytes
_a2b = b64decode_strict  # strict base64 (pybase64 when installed): binascii.Error
_loads = _json.loads
_GA_AUDIO = "response.output_audio.delta"
_BETA_AUDIO = "response.audio.delta"
_AUDIO_TYPES = (_GA_AUDIO, _BETA_AUDIO)
_quick_b64 = b64decode_quick
#: The assistant text and transcript deltas (GA and beta names): the text tap's frames.
_TEXT_TYPES = (
    "response.output_audio_transcript.delta",
    "response.output_text.delta",
    "response.audio_transcript.delta",
    "response.text.delta",
)
_CLOSED = ProtocolState.CLOSED
#: The decoder of both audio delta names (GA and beta).
_AUDIO_DELTA = DECODERS["response.output_audio.delta"]
_RATE_CODES = frozenset({"rate_limit_exceeded", "insufficient_quota"})
_ACTIVE_RESPONSE = "conversation_already_has_active_response"
#: How many sent ``response.create`` are remembered, to re-queue one the server refuses.
_RECENT_CREATES = 16
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
        self._url = url
        self._headers = dict(headers)  # the ConnectRequest is built when asked for
        # Servers quote keys back ("Incorrect API key provided: sk-..."): error texts
        # and close reasons are redacted with this connection's own credentials.
        self._secrets = tuple(secrets_in(url, headers))  # a tuple: 1 key, 48 bytes not 216
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
        self._reply_policy = session.reply_policy or ReplyPolicy.QUEUE
        #: Responses started and not done (``response.created`` .. ``response.done``).
        #: (A dict: an empty set takes 216 bytes; made by the first response.)
        self._active: dict[str, None] | None = None
        #: ``response.create`` sent and not yet answered by ``response.created``/``error``.
        #: (Lists, not deques: they hold a request or two, and an empty deque takes
        #: 760 bytes, a list 56; every session keeps them.)
        self._in_flight: list[str] = []
        #: Recently sent ``response.create`` by event id (re-queued if refused as a race;
        #: made by the first one).
        self._sent_creates: dict[str, CreateResponse] | None = None
        #: Reply requests waiting for the active response to end, oldest first.
        self._queued: list[CreateResponse] = []
        self._cancel_sent = False

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
        return ConnectRequest(url=self._url, headers=self._headers)

    # -- outbound -------------------------------------------------------------------

    def send(self, command: Command) -> None:
        """Queue the wire message(s) for ``command``.

        Buffered while ``CONNECTING``; raises :class:`InvalidState` once closing or closed.
        """
        if type(command) is SendAudio and self._state is ProtocolState.OPEN:
            # The hot path (50 a second): the same JSON encode_command + dumps give,
            # built directly; base64 text never needs escaping in a JSON string.
            self._outgoing.append(_AUDIO_APPEND_HEAD + b64encode_pcm16(command.audio) + '"}')
            return
        if self._state in (ProtocolState.CLOSING, ProtocolState.CLOSED):
            raise InvalidState(
                f"cannot send {type(command).__name__}: session is {self._state.value}"
            )
        if self._state is ProtocolState.CONNECTING:
            self._pending.append(command)
            return
        self._emit(command)

    @property
    def reply_policy(self) -> ReplyPolicy:
        """The policy applied to reply requests made while a response is active."""
        return self._reply_policy

    @property
    def queued_replies(self) -> int:
        """Reply requests waiting for the active response to end."""
        return len(self._queued)

    def _emit(self, command: Command) -> None:
        if isinstance(command, CreateResponse):
            self._request_reply(command)
            return
        if isinstance(command, UpdateSession) and command.config.reply_policy is not None:
            self._reply_policy = command.config.reply_policy
            if self._only_reply_policy(command.config):
                return  # a client-side setting: nothing to tell the server
        self._write(command)

    @staticmethod
    def _only_reply_policy(config: SessionConfig) -> bool:
        return config == SessionConfig(reply_policy=config.reply_policy)

    def _write(self, command: Command) -> str | None:
        event_id = None if isinstance(command, SendAudio) else self._new_event_id()
        msg = encode_command(command, self._dialect, event_id)
        self._outgoing.append(_json.dumps(msg))
        return event_id

    @property
    def _busy(self) -> bool:
        return bool(self._active or self._in_flight or self._queued)

    def _request_reply(self, command: CreateResponse) -> None:
        """Send ``command`` now, or apply the reply policy while a response is active."""
        if not self._busy:
            self._send_create(command)
            return
        self._queued.append(command)
        if self._reply_policy is ReplyPolicy.INTERRUPT and self._active and not self._cancel_sent:
            self._cancel_sent = True
            self._write(CancelResponse())

    def _send_create(self, command: CreateResponse) -> None:
        event_id = self._write(command)
        assert event_id is not None
        self._in_flight.append(event_id)
        creates = self._sent_creates
        if creates is None:
            creates = self._sent_creates = {}
        creates[event_id] = command
        while len(creates) > _RECENT_CREATES:
            del creates[next(iter(creates))]

    def _send_next_reply(self) -> None:
        if self._queued and not self._active and not self._in_flight:
            self._send_create(self._queued.pop(0))

    def _track_responses(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ResponseStarted):
                active = self._active
                if active is None:
                    active = self._active = {}
                active[event.response_id] = None
                if self._in_flight:  # our request (or a VAD turn racing it; see _on_error)
                    self._in_flight.pop(0)
            elif isinstance(event, ResponseDone):
                if self._active:
                    self._active.pop(event.response_id, None)
                if not self._active:
                    self._cancel_sent = False
                    self._send_next_reply()

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
        msg = self._parse(data)
        if msg is not None:
            self._handle(msg, data)

    def receive_audio(self, data: str | bytes) -> AudioDelta | None:
        """:meth:`receive_message`, returning a clean audio delta (see ``HotPath``)."""
        if self._state is ProtocolState.CLOSED:
            return None
        try:
            msg = _loads(data)
        except (ValueError, UnicodeDecodeError):
            self.receive_message(data)  # reports it
            return None
        kind = msg.get("type") if type(msg) is dict else None
        if kind in (_GA_AUDIO, _BETA_AUDIO):  # nearly every frame
            # decode_audio_delta, inlined for the clean case
            delta = msg.get("delta")
            text = delta if type(delta) is str else ""
            try:
                audio = _quick_b64(text, None, True)  # no wrapper's frame when clean
            except (ValueError, TypeError):
                try:
                    audio = _a2b(text)  # strict binascii's verdict on what it refused
                except (binascii.Error, ValueError):
                    audio = None
            if audio is not None and not len(audio) & 1:
                response_id, item_id = msg.get("response_id"), msg.get("item_id")
                return _quick_audio_delta(
                    response_id if type(response_id) is str else "",
                    item_id if type(item_id) is str else "",
                    audio,
                )
            self._events.append(decode_audio_delta(msg))  # its malformed_audio report
            return None
        if isinstance(kind, str):
            self._handle(msg, data)
        else:
            self.receive_message(data)  # reports it
        return None

    def audio_tap(
        self, tap: AudioTap, progress: TapProgress, clock: Callable[[], float]
    ) -> Callable[[bytes | bytearray | memoryview], bool]:
        """The text-frame tap for audio (and text) deltas: see ``AudioTapping``.

        One Python frame between the socket's read hook and the application's
        callback: the frame is parsed, checked and decoded here, the callback called,
        and the tracker updated after it (the callback gets its audio first).
        """
        audio_callback, text_callback = tap.callback, tap.text
        failed, pending = tap.failed, tap.pending
        text_types = _TEXT_TYPES if text_callback is not None else ()

        def audio_tap(data: bytes | bytearray | memoryview) -> bool:
            # receive_audio's clean case, on the undecoded payload (orjson checks the
            # UTF-8); anything else (not a dict, a field missing or of another type,
            # base64 the quick decode refuses...) is left to the general path
            if self._state is _CLOSED:
                return False
            audio: bytes | None = None
            try:
                msg = _loads(data)
                kind = msg["type"]
                if kind in _AUDIO_TYPES:
                    audio = _quick_b64(msg["delta"], None, True)
                elif kind in text_types:
                    delta = msg["delta"]
                else:
                    return False
            except (ValueError, KeyError, TypeError):  # binascii.Error is a ValueError
                return False
            if audio is not None:
                size = len(audio)
                if size & 1:
                    return False
                try:
                    result = audio_callback(audio)
                except Exception:
                    failed(audio_callback)
                    result = None
                # ResponseTracker.audio_arrived, inlined (50 frames a second), after the
                # callback: the item's id as the general path reads it
                item_id = msg.get("item_id")
                if type(item_id) is not str:
                    item_id = ""
                progress.progress_at = clock()
                if item_id != progress.audio_item_id:
                    progress.audio_item_id = item_id
                    progress.audio_bytes = 0
                progress.audio_bytes += size
            else:  # a text delta (text_types is empty without a text callback)
                if type(delta) is not str:
                    return False
                assert text_callback is not None
                try:
                    result = text_callback(delta)
                except Exception:
                    failed(text_callback)
                    result = None
                progress.progress_at = clock()
            if result is not None and isawaitable(result):
                pending(result)
            return True

        return audio_tap

    def encode_audio(self, audio: bytes) -> bytes | None:
        """``input_audio_buffer.append`` of ``audio``, as UTF-8 (see ``HotPath``)."""
        if self._state is not ProtocolState.OPEN or self._outgoing:
            return None
        return _AUDIO_APPEND_HEAD_UTF8 + _b2a(audio) + b'"}'

    def _parse(self, data: str | bytes) -> dict[str, Any] | None:
        """The frame's JSON object with a string ``type``; ``None`` (reported) if not."""
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
            return None
        if isinstance(msg, dict) and isinstance(msg.get("type"), str):
            return msg
        self._events.append(
            ProviderErrorEvent(
                code="malformed_frame",
                message="server sent JSON without a string 'type'; ignored",
                error_type="protocol_violation",
            )
        )
        return None

    def _handle(self, msg: dict[str, Any], data: str | bytes) -> None:
        kind: str = msg["type"]
        decoder = DECODERS.get(kind)  # first: audio and text deltas are nearly every frame
        if decoder is _AUDIO_DELTA:  # the hot path: no list of one event to extend with
            self._events.append(decode_audio_delta(msg))
        elif decoder is not None:
            decoded = decoder(msg)
            self._events.extend(decoded)
            if kind == "response.created" or kind == "response.done":
                self._track_responses(decoded)
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
            message=redact(text("message") or "unspecified provider error", self._secrets),
            error_type=text("type"),
            param=text("param"),
            client_event_id=text("event_id"),
        )
        self._last_error = event
        refused = event.client_event_id
        if refused is not None and refused in self._in_flight:
            self._in_flight.remove(refused)
        creates = self._sent_creates or {}
        if event.code == _ACTIVE_RESPONSE and refused in creates:
            # A race (e.g. server VAD started a response as ours was sent): ask again
            # once the active response is done; the message still gets its reply.
            self._queued.insert(0, creates.pop(refused))
            logger.debug("response.create refused while a response is active: queued")
            self._send_next_reply()
            return
        if event.code == "response_cancel_not_active":
            self._cancel_sent = False
        if refused is not None and refused in creates:
            del creates[refused]
            self._send_next_reply()
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
        reason = redact(reason, self._secrets)
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
        dropped = len(self._queued)
        if dropped:
            self._events.append(
                ProviderErrorEvent(
                    code="response_request_dropped",
                    message=f"{dropped} requested response(s) not created: the session closed "
                    "while another response was active",
                    error_type="client",
                )
            )
        self._queued.clear()
        self._pending.clear()
        self._active = None
        self._in_flight.clear()
