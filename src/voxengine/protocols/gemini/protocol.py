"""The Gemini Live client protocol as a sans-I/O state machine.

Implements gemini-live.md §1-§3 (connect, ``setup``, client messages), §4-§6 (server
messages, turn-taking, function calls), §7 (resumption, ``goAway``) and §9 (close
codes) for the Developer API.

Lifecycle: the ``setup`` message is queued at construction (§1: the client speaks
first), the state is ``CONNECTING`` until the server's ``setupComplete``, then ``OPEN``
(a :class:`~voxengine.events.SessionReady` marks it). Commands sent while
``CONNECTING`` are checked at once, buffered, and go out in order right after the
handshake. After ``CLOSING``/``CLOSED`` every command raises
:class:`~voxengine.errors.InvalidState`.

Command mapping (Gemini has no ``response.create``, no cancel, truncate or delete):

* :class:`SendText` / :class:`SendAudioMessage` add a ``clientContent`` turn (user
  role; ``Role.ASSISTANT`` text becomes a ``model`` turn, ``Role.SYSTEM`` text a user
  turn since Live turns have only the two roles). The turn is *held* until the frames
  are collected: a :class:`CreateResponse` issued before :meth:`data_to_send` merges
  the held turns into ONE ``clientContent`` with ``turnComplete: true`` (transcript
  §12.2); otherwise they go out with ``turnComplete: false`` (context only, §3.2).
* Reply policy (:class:`~voxengine.config.ReplyPolicy`): any ``clientContent``
  interrupts a model turn in progress (§3.2). Under ``QUEUE`` (default), a
  :class:`CreateResponse` issued while a model turn is streaming (or requested and
  not complete) is deferred with its held turns until that turn's ``turnComplete``,
  so the streaming answer completes and the new message gets its own; under
  ``INTERRUPT`` it goes out at once and the streaming turn ends with
  ``ResponseDone(CANCELLED, "interrupted")``. Deferred turns
  lost to a close are reported by ``ProviderErrorEvent(code="response_request_dropped")``.
* :class:`CreateResponse` without held turns sends ``{"clientContent":
  {"turnComplete": true}}``, unless something already asked the model to answer
  (``toolResponse``, ``activityEnd``, ``audioStreamEnd``) since the last turn began:
  then it is a no-op, because Gemini continues by itself (§3.3, §6).
* :class:`SendAudio` → ``realtimeInput.audio`` at 16 kHz; with the server's activity
  detection disabled (``LOCAL_VAD``/``MANUAL``) an ``activityStart`` precedes the first
  chunk of each user turn. :class:`CommitAudio` → ``activityEnd`` (manual; a no-op
  when no audio was sent, since an empty activity is closed with 1007, §3.3) or
  ``audioStreamEnd`` (automatic).
* :class:`SendToolResult` → ``toolResponse`` with the call's ``id`` and ``name``.
* :class:`RestoreItem` (conversation replay after a reconnect without a resumption
  handle) is held like text: messages as ``user``/``model`` text turns, function calls
  as ``model`` ``functionCall`` parts, outputs as ``user`` ``functionResponse`` parts.
* :class:`CancelResponse` sends nothing (there is no cancel message, §5): the rest of
  the current model turn is dropped here (:meth:`GeminiLiveProtocol.discard_response`).
* A :class:`SendText` followed by :class:`CreateResponse` before the frames are
  collected (:meth:`~GeminiLiveProtocol.data_to_send`) goes out as ONE ``clientContent``
  with ``turnComplete: true`` (§3.2, §12.2): the session hands commands sent together
  to the protocol before collecting frames.
* :class:`ClearAudio`, :class:`TruncateItem`,
  :class:`DeleteItem`, :class:`UpdateSession` and per-response ``instructions`` raise
  :class:`~voxengine.errors.ConfigError`: the service has no such message (§5, §3.1:
  configuration is fixed per connection).

Event mapping: each model turn gets synthetic, stable ids (``gemini-resp-N``,
``gemini-item-N``): :class:`ResponseStarted` at its first content, audio/text/
transcript deltas, :class:`AudioDone`/:class:`TextDone` at ``generationComplete``,
then :class:`TranscriptDone`/:class:`ItemDone`/:class:`ResponseDone` at
``turnComplete`` (transcripts may lag generation, §4.1). A ``toolCall`` ends the
current response after its :class:`ToolCall` events (the model waits for the
``toolResponse``; its continuation is a new response, as with OpenAI). ``interrupted``
ends the response at once with ``ResponseDone(CANCELLED, reason="interrupted")``,
preceded by :class:`SpeechStarted` when the server's VAD caused it (§5). The usage of
a response is the last ``usageMetadata`` seen before it ended (§4.2).

Layout: this module keeps the lifecycle and dispatches frames and commands;
:mod:`._outbound` carries out the command mapping, :mod:`._turns` the event mapping,
:mod:`._close` maps close frames to exceptions, and :mod:`._wire` / :mod:`._decode`
hold the JSON shapes.

Contract: ``receive_message`` never raises; ``send`` raises only
:class:`InvalidState`, :class:`ConfigError` and (for SendAudio) nothing else.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, final

from voxengine import _json
from voxengine.audio.format import PCM16_16K, PCM16_24K, AudioFormat
from voxengine.commands import (
    CancelResponse,
    Command,
)
from voxengine.config import Modality, ReplyPolicy, SessionConfig
from voxengine.errors import (
    InvalidState,
    SessionExpired,
    VoxError,
)
from voxengine.events import (
    Event,
    GoAway,
    ProviderErrorEvent,
    ResponseStatus,
    ResumptionUpdate,
    SessionClosed,
    SessionReady,
    ToolCallCancelled,
    UnknownEvent,
)
from voxengine.protocols import ConnectRequest, ProtocolState
from voxengine.protocols.gemini import _wire
from voxengine.protocols.gemini._close import close_exception
from voxengine.protocols.gemini._decode import (
    get,
    get_map,
    parse_duration,
    parse_frame,
    parse_function_calls,
    parse_usage,
)
from voxengine.protocols.gemini._outbound import Outbound
from voxengine.protocols.gemini._turns import ModelTurn, UserTurn
from voxengine.protocols.gemini._wire import SetupOptions
from voxengine.redaction import redact, secrets_in

__all__ = ["GeminiLiveProtocol", "SetupOptions", "close_exception"]

logger = logging.getLogger("voxengine.protocols.gemini")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


@final
class GeminiLiveProtocol:
    """Client side of one Gemini Live WebSocket connection.

    Args:
        url: full ``…BidiGenerateContent`` WebSocket URL (with ``?key=`` when the key
            travels in the query).
        headers: handshake headers, credentials included; never logged.
        model: model id (``models/`` is prefixed when it has no path).
        session: settings sent in the ``setup`` message (fixed for the connection).
        options: resumption and context-compression settings.
        id_prefix: prefix of the synthetic response and item ids.
        known_calls: function calls (id → name) issued on an earlier connection of a
            resumed session, whose outputs this connection may send.

    Raises:
        ConfigError: if ``session`` holds settings Gemini Live cannot express.
    """

    def __init__(
        self,
        *,
        url: str,
        headers: Mapping[str, str],
        model: str,
        session: SessionConfig,
        options: SetupOptions | None = None,
        id_prefix: str = "gemini",
        known_calls: Mapping[str, str] | None = None,
    ) -> None:
        options = options if options is not None else SetupOptions()
        self._request = ConnectRequest(url=url, headers=dict(headers))
        self._secrets = secrets_in(url, headers)  # close reasons may quote the key
        self._model = model
        self._setup = _wire.encode_setup(model, session, options)  # validates now
        self._manual = _wire.uses_manual_activity(session)
        self._modality = Modality.AUDIO if _wire.responds_with_audio(session) else Modality.TEXT
        self._state = ProtocolState.CONNECTING
        self._close_exc: VoxError | None = None
        self._events: list[Event] = []
        self._pending: list[Command] = []
        # call id -> function name; a resumed session's pending calls come from the
        # connection that issued them (``known_calls``), so their outputs can be sent
        self._call_names: dict[str, str] = dict(known_calls or {})
        self._go_away = False
        # the synthetic ids' prefix differs per connection, so ids never repeat
        self._turn = ModelTurn(
            id_prefix, self._modality, emit=self._event, on_start=self._model_answers
        )
        self._user = UserTurn(id_prefix, emit=self._event)
        self._out = Outbound(
            _json.dumps(self._setup),
            ids=id_prefix,
            manual=self._manual,
            modality=self._modality,
            reply_policy=session.reply_policy or ReplyPolicy.QUEUE,
            call_names=self._call_names,
            turn=self._turn,
            emit=self._event,
        )
        #: ``setupComplete.sessionId`` (may stay empty).
        self.session_id: str = ""
        #: The latest resumable handle (§7), starting with the one we resumed from.
        self.resumption_handle: str | None = options.resumption_handle

    def __repr__(self) -> str:
        return f"GeminiLiveProtocol(state={self._state.name}, request={self._request!r})"

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
        """PCM16 mono 16 kHz (§1)."""
        return PCM16_16K

    @property
    def output_format(self) -> AudioFormat:
        """PCM16 mono 24 kHz (§1)."""
        return PCM16_24K

    @property
    def setup_message(self) -> dict[str, Any]:
        """The ``setup`` message this protocol sends first (a copy)."""
        copied: dict[str, Any] = json.loads(_json.dumps(self._setup))
        return copied

    @property
    def active_response_id(self) -> str | None:
        """The synthetic id of the model turn in progress, if any."""
        return self._turn.response_id

    def connect_request(self) -> ConnectRequest:
        """URL and headers for the WebSocket handshake."""
        return self._request

    # -- outbound -------------------------------------------------------------------

    def send(self, command: Command) -> None:
        """Queue the wire message(s) for ``command`` (see the module docstring).

        Raises:
            InvalidState: the protocol is closing or closed.
            ConfigError: Gemini Live has no message for ``command`` (or its contents).
        """
        if self._state in (ProtocolState.CLOSING, ProtocolState.CLOSED):
            raise InvalidState(
                f"cannot send {type(command).__name__}: session is {self._state.value}"
            )
        if type(command) is CancelResponse:
            self.discard_response()  # §5: no cancel message; the turn is dropped here
            return
        self._out.check(command)
        if self._state is ProtocolState.CONNECTING:
            self._pending.append(command)
            return
        self._out.send(command)

    def data_to_send(self) -> list[str | bytes]:
        """Frames to write to the socket, in order; clears the queue.

        Held ``clientContent`` turns are released here with ``turnComplete: false``.
        """
        return self._out.take(release_held=self._state is ProtocolState.OPEN)

    def events_received(self) -> list[Event]:
        """Events decoded since the last call, in order; clears the queue."""
        out, self._events = self._events, []
        return out

    def start_closing(self) -> None:
        """Mark that the client is closing; further commands raise InvalidState."""
        if self._state is not ProtocolState.CLOSED:
            self._state = ProtocolState.CLOSING

    def discard_response(self) -> str | None:
        """Drop the rest of the current model turn locally; returns its response id.

        Gemini has no cancel message (§5): the server keeps generating. Until that turn
        ends, its audio, text and transcript deltas are dropped here (tool calls still
        pass: the server waits for their answers), and it ends with
        ``ResponseDone(status=CANCELLED, reason="client_interrupted")``. No-op (``None``)
        when no turn is in progress. Produces no events by itself.
        """
        return self._turn.discard()

    # -- inbound --------------------------------------------------------------------

    def receive_message(self, data: str | bytes) -> None:
        """Decode one text or binary frame from the server (§1, §4). Never raises."""
        if self._state is ProtocolState.CLOSED:
            return
        msg = parse_frame(data)
        if msg is None:
            self._events.append(
                ProviderErrorEvent(
                    code="malformed_frame",
                    message="server sent a frame that is not a JSON object; ignored",
                    error_type="protocol_violation",
                )
            )
            return
        parts = {_camel(key): value for key, value in msg.items()}
        handlers = (
            ("setupComplete", self._on_setup_complete),
            ("usageMetadata", self._on_usage),
            ("serverContent", self._on_server_content),
            ("toolCall", self._on_tool_call),
            ("toolCallCancellation", self._on_tool_call_cancellation),
            ("voiceActivity", self._user.voice_activity),
            ("voiceActivityDetectionSignal", self._user.vad_signal),
            ("sessionResumptionUpdate", self._on_resumption_update),
            ("goAway", self._on_go_away),
        )
        for key, handler in handlers:
            value = parts.pop(key, None)
            if value is not None:
                handler(value if isinstance(value, Mapping) else {})
        if parts:
            raw = data if isinstance(data, str) else data.decode("utf-8", "replace")
            for key in parts:
                logger.debug("unknown server message field %s", key)
                self._events.append(UnknownEvent(name=key, raw=raw))

    def _on_setup_complete(self, body: Mapping[str, Any]) -> None:
        if self._state is not ProtocolState.CONNECTING:
            logger.debug("ignoring a repeated setupComplete")
            return
        session_id = get(body, "sessionId")
        self.session_id = session_id if isinstance(session_id, str) else ""
        self._state = ProtocolState.OPEN
        self._events.append(SessionReady(session_id=self.session_id, model=self._model))
        pending, self._pending = self._pending, []
        for command in pending:
            self._out.send(command)

    def _event(self, event: Event) -> None:
        self._events.append(event)

    def _on_usage(self, body: Mapping[str, Any]) -> None:
        usage = parse_usage(body)
        if usage is not None:
            self._turn.usage = usage

    def _on_server_content(self, content: Mapping[str, Any]) -> None:
        user = get_map(content, "inputTranscription")
        if user:
            self._user.add_transcription(user)
        model_turn = get_map(content, "modelTurn")
        if model_turn:
            self._turn.add_parts(model_turn)
        spoken = get_map(content, "outputTranscription")
        text = get(spoken, "text")
        if isinstance(text, str) and text:
            self._turn.add_transcript(text)
        if get(content, "interrupted") is True:
            self._on_interrupted()
        if get(content, "generationComplete") is True:
            self._turn.end_generation()
        if get(content, "turnComplete") is True:
            reason = get(content, "turnCompleteReason")
            self._on_turn_complete(reason.lower() if isinstance(reason, str) else None)

    # ---- the model turn

    def _model_answers(self) -> None:
        self._user.speech_active = False  # the user's turn is over once the model answers
        self._out.answer_requested = False

    def _on_interrupted(self) -> None:
        """§5 barge-in: stop now; the server follows with ``turnComplete``."""
        if not self._manual and not self._turn.client_interrupted:
            self._user.speech_started(0.0)
        self._turn.end(ResponseStatus.CANCELLED, "interrupted")

    def _on_turn_complete(self, reason: str | None) -> None:
        self._turn.end(ResponseStatus.COMPLETED, reason)
        self._user.finish()
        self._out.answer_requested = False
        if self._state is ProtocolState.OPEN:
            self._out.release_deferred()

    def _on_tool_call(self, body: Mapping[str, Any]) -> None:
        """§6: run these calls; the model continues after our ``toolResponse``."""
        calls = parse_function_calls(body)
        if not calls:
            return
        for call in calls:
            self._call_names[call.call_id] = call.name
        self._turn.add_calls(calls)
        self._turn.end(ResponseStatus.COMPLETED, None)

    def _on_tool_call_cancellation(self, body: Mapping[str, Any]) -> None:
        ids = get(body, "ids")
        call_ids = tuple(i for i in (ids if isinstance(ids, list) else []) if isinstance(i, str))
        if call_ids:
            self._events.append(ToolCallCancelled(call_ids=call_ids))

    # ---- session management (§7)

    def _on_resumption_update(self, body: Mapping[str, Any]) -> None:
        handle = get(body, "newHandle")
        handle = handle if isinstance(handle, str) and handle else None
        resumable = get(body, "resumable") is True
        if handle is not None and resumable:
            self.resumption_handle = handle
        self._events.append(ResumptionUpdate(handle=handle, resumable=resumable))

    def _on_go_away(self, body: Mapping[str, Any]) -> None:
        self._go_away = True
        self._events.append(GoAway(time_left=parse_duration(get(body, "timeLeft"))))

    def receive_close(self, code: int | None, reason: str) -> None:
        """The connection closed with ``code``/``reason`` (``None`` = no close frame, §9)."""
        if self._state is ProtocolState.CLOSED:
            return
        reason = redact(reason, self._secrets)
        was_closing = self._state is ProtocolState.CLOSING
        exc: VoxError | None
        if was_closing and code in (1000, 1001, 1005, None):
            exc = None
        elif self._go_away and code in (1000, 1001, 1006, None):
            # §7: the connection reached its lifetime after the goAway warning.
            exc = SessionExpired("go_away", reason or "connection lifetime reached; resume")
        else:
            exc = close_exception(code, reason)
        # A turn cut off by the close gets no ResponseDone, as with every provider: the
        # provider link asks for it again after reconnecting, or the session ends.
        self._state = ProtocolState.CLOSED
        if self._close_exc is None:
            self._close_exc = exc
        self._pending.clear()
        if self._out.close():
            self._events.append(
                ProviderErrorEvent(
                    code="response_request_dropped",
                    message="a requested response was not created: the session closed "
                    "while the model was answering",
                    error_type="client",
                )
            )
        self._events.append(SessionClosed(code=code, reason=reason))
