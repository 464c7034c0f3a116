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

Contract: ``receive_message`` never raises; ``send`` raises only
:class:`InvalidState`, :class:`ConfigError` and (for SendAudio) nothing else.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, final

from voxengine import _json
from voxengine.audio.format import PCM16_16K, PCM16_24K, AudioFormat
from voxengine.audio.pcm16 import b64encode_pcm16
from voxengine.commands import (
    CancelResponse,
    ClearAudio,
    Command,
    CommitAudio,
    CreateResponse,
    DeleteItem,
    RestoreItem,
    SendAudio,
    SendAudioMessage,
    SendText,
    SendToolResult,
    TruncateItem,
    UpdateSession,
)
from voxengine.config import Modality, ReplyPolicy, SessionConfig
from voxengine.errors import (
    AuthenticationFailed,
    ConfigError,
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
    AudioDone,
    ConversationItem,
    Event,
    GoAway,
    ItemAdded,
    ItemDone,
    ItemKind,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    ResumptionUpdate,
    Role,
    SessionClosed,
    SessionReady,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallCancelled,
    TranscriptDelta,
    TranscriptDone,
    UnknownEvent,
    Usage,
)
from voxengine.protocols import ConnectRequest, ProtocolState
from voxengine.protocols.gemini import _wire
from voxengine.protocols.gemini._decode import (
    AudioPart,
    TextPart,
    get,
    get_map,
    parse_duration,
    parse_frame,
    parse_function_calls,
    parse_parts,
    parse_usage,
)
from voxengine.protocols.gemini._wire import SetupOptions
from voxengine.redaction import redact, secrets_in

__all__ = ["GeminiLiveProtocol", "SetupOptions", "close_exception"]

logger = logging.getLogger("voxengine.protocols.gemini")

_AUTH_REASON = re.compile(r"api[ _-]?key|permission[ _]denied|unauthenticated|credential", re.I)
_QUOTA_REASON = re.compile(r"quota|rate[ _-]?limit|resource[ _]exhausted|too many requests", re.I)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def close_exception(code: int | None, reason: str) -> VoxError:
    """The exception for a close frame the server initiated (§9).

    * any code whose reason names the API key / credentials → :class:`AuthenticationFailed`
      (the Developer API reports a bad or expired key as 1007);
    * 1007 → ``ProviderError("invalid_argument" | "failed_precondition")`` (bad setup,
      bad message, empty manual activity);
    * 1008 → ``ProviderError("not_found" | "policy_violation")`` (unknown model, ...);
    * 1011 with a quota/rate reason → :class:`RateLimited` (``"resource_exhausted"``),
      otherwise ``ProviderError("internal" | "unavailable")``;
    * 1000/1001 → :class:`ConnectionClosedOK`; anything else (1006, ``None``) →
      :class:`ConnectionClosedError`.
    """
    text = reason or ""
    if code in (1007, 1008, 1011) and _AUTH_REASON.search(text):
        return AuthenticationFailed(f"the server refused the API key (close {code}: {text})")
    if code == 1007:
        precondition = "precondition" in text.lower()
        name = "failed_precondition" if precondition else "invalid_argument"
        return ProviderError(name, text or "Request contains an invalid argument.")
    if code == 1008:
        name = "not_found" if "not found" in text.lower() else "policy_violation"
        return ProviderError(name, text or "policy violation")
    if code == 1011:
        if _QUOTA_REASON.search(text):
            return RateLimited("resource_exhausted", text)
        name = "unavailable" if "unavailable" in text.lower() else "internal"
        return ProviderError(name, text or "Internal error occurred.")
    if code in (1000, 1001):
        return ConnectionClosedOK(code, reason)
    return ConnectionClosedError(code, reason)


def _dumps(msg: Mapping[str, Any]) -> str:
    return _json.dumps(msg)


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
        #: Prefix of the synthetic ids; differs per connection so ids never repeat.
        self._ids = id_prefix
        self._request = ConnectRequest(url=url, headers=dict(headers))
        self._secrets = secrets_in(url, headers)  # close reasons may quote the key
        self._model = model
        self._setup = _wire.encode_setup(model, session, options)  # validates now
        self._manual = _wire.uses_manual_activity(session)
        self._modality = Modality.AUDIO if _wire.responds_with_audio(session) else Modality.TEXT
        self._state = ProtocolState.CONNECTING
        self._close_exc: VoxError | None = None
        self._events: list[Event] = []
        self._outgoing: list[str | bytes] = [_dumps(self._setup)]
        self._pending: list[Command] = []
        self._held_turns: list[dict[str, Any]] = []
        self._reply_policy = session.reply_policy or ReplyPolicy.QUEUE
        #: Turns of a reply request deferred until the streaming model turn completes.
        self._deferred_turns: list[dict[str, Any]] | None = None
        self._echoed = 0
        self._activity_open = False
        self._answer_requested = False
        self._client_interrupts = False
        # call id -> function name; a resumed session's pending calls come from the
        # connection that issued them (``known_calls``), so their outputs can be sent
        self._call_names: dict[str, str] = dict(known_calls or {})
        self._go_away = False
        # the model turn in progress (§4.1)
        self._responses = 0
        self._response_id: str | None = None
        self._item_id: str | None = None
        self._item_audio = False
        self._audio_done = False
        self._text: list[str] = []
        self._transcript: list[str] = []
        self._output: list[ConversationItem] = []
        self._discarding = False
        self._usage: Usage | None = None
        # the user turn, as far as transcription and VAD reveal it (§5)
        self._users = 0
        self._user_item_id: str | None = None
        self._user_text: list[str] = []
        self._speech_active = False
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
        copied: dict[str, Any] = json.loads(_dumps(self._setup))
        return copied

    @property
    def active_response_id(self) -> str | None:
        """The synthetic id of the model turn in progress, if any."""
        return self._response_id

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
        self._check(command)
        if self._state is ProtocolState.CONNECTING:
            self._pending.append(command)
            return
        self._emit(command)

    def _check(self, command: Command) -> None:
        match command:
            case ClearAudio():
                raise ConfigError("Gemini Live has no input buffer to clear (§3.3)")
            case TruncateItem():
                raise ConfigError("Gemini Live has no truncate message (§5)")
            case DeleteItem():
                raise ConfigError("Gemini Live cannot delete conversation items")
            case UpdateSession():
                raise ConfigError(
                    "Gemini Live fixes the configuration per connection (§3.1); reconnect instead"
                )
            case SendText(role=Role.TOOL):
                raise ConfigError("tool output is sent with SendToolResult")
            case CreateResponse(instructions=instructions, modalities=modalities):
                if instructions is not None:
                    raise ConfigError("Gemini Live has no per-response instructions")
                if modalities is not None and self._modality not in modalities:
                    raise ConfigError(
                        f"this session answers with {self._modality.name}; Gemini Live "
                        "cannot change the modality per response"
                    )
            case SendToolResult(call_id=call_id):
                if call_id not in self._call_names:
                    raise ConfigError(f"unknown function call id {call_id!r}")
            case _:
                pass

    def _queue(self, msg: Mapping[str, Any]) -> None:
        self._outgoing.append(_dumps(msg))

    def _release_held(self, *, turn_complete: bool) -> None:
        if self._held_turns or turn_complete:
            self._queue(_wire.client_content(self._held_turns, turn_complete=turn_complete))
            self._held_turns = []

    def _emit(self, command: Command) -> None:
        if not isinstance(command, SendText | SendAudioMessage | RestoreItem | CreateResponse):
            self._release_held(turn_complete=False)
        match command:
            case SendAudio(audio=audio):
                if self._manual and not self._activity_open:
                    if self._response_id is not None:
                        self._client_interrupts = True
                    self._queue(_wire.activity_start())
                    self._activity_open = True
                self._queue(_wire.realtime_audio(audio))
            case CommitAudio():
                if not self._manual:
                    self._queue(_wire.audio_stream_end())
                    self._answer_requested = True
                elif self._activity_open:
                    self._queue(_wire.activity_end())
                    self._activity_open = False
                    self._answer_requested = True
                else:
                    logger.debug("commit with no audio since the last commit: nothing to end")
            case SendText(text=text, role=role, item_id=item_id):
                wire_role = "model" if role is Role.ASSISTANT else "user"
                self._held_turns.append({"role": wire_role, "parts": [{"text": text}]})
                self._echo(text, role, item_id)
            case SendAudioMessage(audio=audio):
                blob = {"mimeType": _wire.INPUT_MIME, "data": b64encode_pcm16(audio)}
                self._held_turns.append({"role": "user", "parts": [{"inlineData": blob}]})
            case RestoreItem(item=item):
                self._held_turns.append(self._restored_turn(item))
            case SendToolResult(call_id=call_id, output=output):
                name = self._call_names.get(call_id, "")
                self._queue(_wire.tool_response([_wire.function_response(call_id, name, output)]))
                self._answer_requested = True
            case CreateResponse() if self._defers_reply():
                # §3.2: sending now would interrupt the streaming turn; wait for its end
                self._deferred_turns = [*(self._deferred_turns or []), *self._held_turns]
                self._held_turns = []
            case CreateResponse():
                if self._held_turns or not self._answer_requested:
                    if self._response_id is not None:
                        self._client_interrupts = True  # §3.2: clientContent interrupts
                    self._release_held(turn_complete=True)
                    self._answer_requested = True
            case _:  # rejected by _check
                raise AssertionError(f"unexpected command {command!r}")

    def _defers_reply(self) -> bool:
        """QUEUE: a reply request that would send a turn while the model is answering
        (a turn streaming, or asked for and not complete) waits for ``turnComplete``."""
        if self._reply_policy is not ReplyPolicy.QUEUE:
            return False
        if self._deferred_turns is not None:
            return True  # keep the order of requests
        would_send = bool(self._held_turns) or not self._answer_requested
        return would_send and (self._response_id is not None or self._answer_requested)

    def _echo(self, text: str, role: Role, item_id: str | None) -> None:
        """Report a message we added: Gemini never echoes client turns, and the
        conversation history (and a reconnect without a resumption handle) needs them."""
        self._echoed += 1
        item = ConversationItem(
            item_id=item_id or f"{self._ids}-client-{self._echoed}",
            kind=ItemKind.MESSAGE,
            role=role,
            status="completed",
            text=text,
        )
        self._events.append(ItemAdded(item=item))
        self._events.append(ItemDone(item=item))

    def _restored_turn(self, item: ConversationItem) -> dict[str, Any]:
        call_id = item.call_id or ""
        if item.kind is ItemKind.FUNCTION_CALL:
            name = item.name or ""
            self._call_names[call_id] = name
            try:
                args = json.loads(item.arguments or "{}")
            except ValueError:
                args = {}
            call = {"id": call_id, "name": name, "args": args if isinstance(args, dict) else {}}
            return {"role": "model", "parts": [{"functionCall": call}]}
        if item.kind is ItemKind.FUNCTION_CALL_OUTPUT:
            name = item.name or self._call_names.get(call_id, "")
            answer = _wire.function_response(call_id, name, item.output or "")
            return {"role": "user", "parts": [{"functionResponse": answer}]}
        role = "model" if item.role is Role.ASSISTANT else "user"
        return {"role": role, "parts": [{"text": item.text or ""}]}

    def data_to_send(self) -> list[str | bytes]:
        """Frames to write to the socket, in order; clears the queue.

        Held ``clientContent`` turns are released here with ``turnComplete: false``.
        """
        if self._state is ProtocolState.OPEN:
            self._release_held(turn_complete=False)
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

    def discard_response(self) -> str | None:
        """Drop the rest of the current model turn locally; returns its response id.

        Gemini has no cancel message (§5): the server keeps generating. Until that turn
        ends, its audio, text and transcript deltas are dropped here (tool calls still
        pass: the server waits for their answers), and it ends with
        ``ResponseDone(status=CANCELLED, reason="client_interrupted")``. No-op (``None``)
        when no turn is in progress. Produces no events by itself.
        """
        if self._response_id is None:
            return None
        self._discarding = True
        return self._response_id

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
            ("voiceActivity", self._on_voice_activity),
            ("voiceActivityDetectionSignal", self._on_vad_signal),
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
            self._emit(command)

    def _on_usage(self, body: Mapping[str, Any]) -> None:
        usage = parse_usage(body)
        if usage is not None:
            self._usage = usage

    def _on_server_content(self, content: Mapping[str, Any]) -> None:
        user = get_map(content, "inputTranscription")
        if user:
            self._on_input_transcription(user)
        model_turn = get_map(content, "modelTurn")
        if model_turn:
            self._on_model_turn(model_turn)
        spoken = get_map(content, "outputTranscription")
        text = get(spoken, "text")
        if isinstance(text, str) and text:
            self._start_item()
            self._transcript.append(text)
            if not self._discarding:
                assert self._response_id is not None
                assert self._item_id is not None
                self._events.append(
                    TranscriptDelta(
                        role=Role.ASSISTANT,
                        item_id=self._item_id,
                        delta=text,
                        response_id=self._response_id,
                    )
                )
        if get(content, "interrupted") is True:
            self._on_interrupted()
        if get(content, "generationComplete") is True:
            self._end_generation()
        if get(content, "turnComplete") is True:
            reason = get(content, "turnCompleteReason")
            self._on_turn_complete(reason.lower() if isinstance(reason, str) else None)

    # ---- the model turn

    def _start_response(self) -> str:
        if self._response_id is None:
            self._responses += 1
            self._response_id = f"{self._ids}-resp-{self._responses}"
            self._speech_active = False  # the user's turn is over once the model answers
            self._answer_requested = False
            self._events.append(ResponseStarted(response_id=self._response_id))
        return self._response_id

    def _start_item(self) -> None:
        response_id = self._start_response()
        if self._item_id is None:
            self._item_id = response_id.replace("resp", "item", 1)
            self._events.append(
                ItemAdded(
                    item=ConversationItem(
                        item_id=self._item_id,
                        kind=ItemKind.MESSAGE,
                        role=Role.ASSISTANT,
                        status="in_progress",
                    )
                )
            )

    def _on_model_turn(self, model_turn: Mapping[str, Any]) -> None:
        for part in parse_parts(model_turn):
            self._start_item()
            assert self._response_id is not None
            assert self._item_id is not None
            if isinstance(part, AudioPart):
                self._item_audio = True
                if not self._discarding:
                    self._events.append(
                        AudioDelta(
                            response_id=self._response_id, item_id=self._item_id, audio=part.audio
                        )
                    )
            elif isinstance(part, TextPart):
                self._text.append(part.text)
                if not self._discarding:
                    self._events.append(
                        TextDelta(
                            response_id=self._response_id, item_id=self._item_id, delta=part.text
                        )
                    )
            else:
                self._events.append(
                    ProviderErrorEvent(
                        code="malformed_audio",
                        message="server sent inline audio that is not base64 PCM16; dropped",
                        error_type="protocol_violation",
                    )
                )

    def _end_generation(self) -> None:
        """``generationComplete`` (§4.1): the audio/text of the item is complete."""
        if self._item_id is None or self._audio_done:
            return
        assert self._response_id is not None
        self._audio_done = True
        if self._item_audio:
            self._events.append(AudioDone(response_id=self._response_id, item_id=self._item_id))
        if self._text:
            self._events.append(
                TextDone(
                    response_id=self._response_id, item_id=self._item_id, text="".join(self._text)
                )
            )

    def _end_item(self, status: str) -> None:
        self._end_generation()
        if self._item_id is None:
            return
        assert self._response_id is not None
        transcript = "".join(self._transcript)
        if self._transcript or (self._item_audio and self._modality is Modality.AUDIO):
            self._events.append(
                TranscriptDone(
                    role=Role.ASSISTANT,
                    item_id=self._item_id,
                    transcript=transcript,
                    response_id=self._response_id,
                )
            )
        item = ConversationItem(
            item_id=self._item_id,
            kind=ItemKind.MESSAGE,
            role=Role.ASSISTANT,
            status=status,
            text=transcript or "".join(self._text),
        )
        self._output.insert(0, item)
        self._events.append(ItemDone(item=item))
        self._item_id = None
        self._item_audio = False
        self._audio_done = False
        self._text = []
        self._transcript = []

    def _end_response(self, status: ResponseStatus, reason: str | None) -> None:
        if self._response_id is None:
            return
        if self._discarding and status is ResponseStatus.COMPLETED:
            status, reason = ResponseStatus.CANCELLED, "client_interrupted"
        self._end_item("completed" if status is ResponseStatus.COMPLETED else "incomplete")
        self._events.append(
            ResponseDone(
                response_id=self._response_id,
                status=status,
                reason=reason,
                usage=self._usage,
                output=tuple(self._output),
            )
        )
        self._response_id = None
        self._output = []
        self._usage = None
        self._discarding = False
        self._client_interrupts = False

    def _on_interrupted(self) -> None:
        """§5 barge-in: stop now; the server follows with ``turnComplete``."""
        if not self._manual and not self._client_interrupts and not self._speech_active:
            self._speech_active = True
            self._events.append(SpeechStarted(item_id=self._user_item()))
        self._end_response(ResponseStatus.CANCELLED, "interrupted")
        self._client_interrupts = False

    def _on_turn_complete(self, reason: str | None) -> None:
        self._end_response(ResponseStatus.COMPLETED, reason)
        self._finish_user_turn()
        self._answer_requested = False
        if self._deferred_turns is not None and self._state is ProtocolState.OPEN:
            turns, self._deferred_turns = self._deferred_turns, None
            self._release_held(turn_complete=False)
            self._queue(_wire.client_content(turns, turn_complete=True))
            self._answer_requested = True

    def _on_tool_call(self, body: Mapping[str, Any]) -> None:
        """§6: run these calls; the model continues after our ``toolResponse``."""
        calls = parse_function_calls(body)
        if not calls:
            return
        response_id = self._start_response()
        for call in calls:
            self._call_names[call.call_id] = call.name
            item_id = f"{self._ids}-call-{call.call_id}"
            self._output.append(
                ConversationItem(
                    item_id=item_id,
                    kind=ItemKind.FUNCTION_CALL,
                    role=None,
                    status="completed",
                    call_id=call.call_id,
                    name=call.name,
                    arguments=call.arguments,
                )
            )
            self._events.append(
                ToolCall(
                    call_id=call.call_id,
                    name=call.name,
                    arguments=call.arguments,
                    item_id=item_id,
                    response_id=response_id,
                )
            )
        self._end_response(ResponseStatus.COMPLETED, None)

    def _on_tool_call_cancellation(self, body: Mapping[str, Any]) -> None:
        ids = get(body, "ids")
        call_ids = tuple(i for i in (ids if isinstance(ids, list) else []) if isinstance(i, str))
        if call_ids:
            self._events.append(ToolCallCancelled(call_ids=call_ids))

    # ---- the user turn

    def _user_item(self) -> str:
        if self._user_item_id is None:
            self._users += 1
            self._user_item_id = f"{self._ids}-user-{self._users}"
        return self._user_item_id

    def _on_input_transcription(self, body: Mapping[str, Any]) -> None:
        text = get(body, "text")
        if isinstance(text, str) and text:
            item_id = self._user_item()
            self._user_text.append(text)
            self._events.append(TranscriptDelta(role=Role.USER, item_id=item_id, delta=text))
        if get(body, "finished") is True:
            self._finish_user_turn()

    def _finish_user_turn(self) -> None:
        if self._user_item_id is not None and self._user_text:
            self._events.append(
                TranscriptDone(
                    role=Role.USER,
                    item_id=self._user_item_id,
                    transcript="".join(self._user_text),
                )
            )
        if self._user_text:
            self._user_item_id = None
            self._user_text = []

    def _on_voice_activity(self, body: Mapping[str, Any]) -> None:
        kind = get(body, "type") or get(body, "voiceActivityType")
        offset = parse_duration(get(body, "audioOffset")) or 0.0
        if kind == "ACTIVITY_START":
            self._speech_started(offset)
        elif kind == "ACTIVITY_END":
            self._speech_stopped(offset)

    def _on_vad_signal(self, body: Mapping[str, Any]) -> None:
        kind = get(body, "vadSignalType")
        if kind == "VAD_SIGNAL_TYPE_SOS":
            self._speech_started(0.0)
        elif kind == "VAD_SIGNAL_TYPE_EOS":
            self._speech_stopped(0.0)

    def _speech_started(self, at: float) -> None:
        if not self._speech_active:
            self._speech_active = True
            self._events.append(SpeechStarted(item_id=self._user_item(), audio_start=at))

    def _speech_stopped(self, at: float) -> None:
        self._speech_active = False
        self._events.append(SpeechStopped(item_id=self._user_item(), audio_end=at))

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
        self._held_turns.clear()
        if self._deferred_turns is not None:
            self._deferred_turns = None
            self._events.append(
                ProviderErrorEvent(
                    code="response_request_dropped",
                    message="a requested response was not created: the session closed "
                    "while the model was answering",
                    error_type="client",
                )
            )
        self._events.append(SessionClosed(code=code, reason=reason))
