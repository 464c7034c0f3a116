"""A protocol-faithful fake of the OpenAI Realtime server, as a sans-I/O state machine.

One :class:`FakeOpenAIServer` models the server side of ONE WebSocket connection
(protocol notes ``openai-realtime.md``, GA interface; beta/Azure-preview names with
``dialect="beta"``). It does no I/O and imports neither asyncio nor websockets: a
driver feeds it the upgrade request (:meth:`FakeOpenAIServer.receive_connect`) and
every received frame (:meth:`~FakeOpenAIServer.receive_message`), then sends the
frames returned by :meth:`~FakeOpenAIServer.data_to_send` and, once
:meth:`~FakeOpenAIServer.close_to_send` returns a value, closes with that code and
reason. ``voxengine.testing.run_fake_openai_server`` is such a driver.

What the assistant "says" comes from a :data:`Responder` (deterministic by default).
Everything else follows the notes: handshake failures (§2.1), envelope and
validation rules (§3, §10), session object (§4), event order (§9, §15), function
calls (§15.4), server VAD and barge-in (§9, §15.5), usage (§8.3).

Contract: the public methods never raise on anything a *client* sends (bad input
becomes an ``error`` event, exactly like the live server). They raise
``RuntimeError`` only on driver misuse (e.g. ``receive_message`` before
``receive_connect``). Exceptions raised by a responder are caught: the response
ends with ``status: "failed"`` and the exception is kept in
:attr:`FakeOpenAIServer.responder_errors`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import math
import random
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np

from voxengine import _json

from ._faults import FakeServerError
from ._openai_schema import GA_VOICES, Enum, SchemaError, validate_client_event
from ._openai_wire import (
    BETA_EVENT_NAMES,
    EAGERNESS_SILENCE_MS,
    ENCODINGS,
    MIN_COMMIT_MS,
    PCM_FORMAT,
    RATE_LIMIT_TOKENS,
    AudioBlob,
    Json,
    ResponseRun,
    bytes_per_ms,
    default_session,
    rate,
    response_object,
    sample_width,
    split_arguments,
    split_pieces,
    turn_detection_with_defaults,
    word_tokens,
)
from ._speechlike import Encoding, decode_to_float, encode_from_int16, speech_chunks

__all__ = [
    "AUDIO_DONE_ORDERS",
    "TRANSCRIPTION_TIMINGS",
    "FakeOpenAIConfig",
    "FakeOpenAIServer",
    "FakeReply",
    "FakeToolCall",
    "FakeTurn",
    "Responder",
    "default_responder",
]


# --- public value types --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeToolCall:
    """A function call the fake assistant makes; ``arguments`` is JSON text (§7)."""

    name: str
    arguments: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeReply:
    """What the fake assistant answers: optional text (spoken or written) and tool calls."""

    text: str = ""
    tool_calls: tuple[FakeToolCall, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeTurn:
    """What a responder sees when a response is created.

    Attributes:
        kind: ``"text"`` (last input is a user text message), ``"audio"`` (a user
            audio message) or ``"tool_output"`` (a ``function_call_output`` item).
        text: the user text, the audio transcript (``""`` when there is none) or the
            tool output string.
        audio_seconds: duration of the user audio (0.0 for other kinds).
        history: the conversation items the response reads (wire dicts, audio bytes
            omitted), oldest first.
    """

    kind: Literal["text", "audio", "tool_output"]
    text: str
    audio_seconds: float
    history: tuple[Json, ...]


Responder = Callable[[FakeTurn], FakeReply]
"""Turns a :class:`FakeTurn` into a :class:`FakeReply`; called once per response."""


def default_responder(turn: FakeTurn) -> FakeReply:
    """Deterministic echo persona.

    * text turn -> ``"You said: <text>"`` (``"Hello! How can I help you?"`` if empty)
    * audio turn -> ``"I heard <N.N> seconds of audio."``
    * tool output turn -> ``"The tool returned <output>."``
    """
    if turn.kind == "audio":
        return FakeReply(text=f"I heard {turn.audio_seconds:.1f} seconds of audio.")
    if turn.kind == "tool_output":
        return FakeReply(text=f"The tool returned {turn.text}.")
    if not turn.text:
        return FakeReply(text="Hello! How can I help you?")
    return FakeReply(text=f"You said: {turn.text}")


_DEFAULT_MODELS: Final = frozenset(
    {
        "gpt-realtime",
        "gpt-realtime-mini",
        "gpt-realtime-1.5",
        "gpt-realtime-2",
        "gpt-4o-realtime-preview",
    }
)

TranscriptionTiming = Literal["random", "before_response", "after_response"]
#: The accepted values of :attr:`FakeOpenAIConfig.transcription_timing`.
TRANSCRIPTION_TIMINGS: Final[tuple[TranscriptionTiming, ...]] = (
    "random",
    "before_response",
    "after_response",
)
AudioDoneOrder = Literal["random", "audio_first", "transcript_first"]
#: The accepted values of :attr:`FakeOpenAIConfig.audio_done_order`.
AUDIO_DONE_ORDERS: Final[tuple[AudioDoneOrder, ...]] = (
    "random",
    "audio_first",
    "transcript_first",
)
#: ``transcription_timing="random"`` completes a transcription 0 to this many steps late.
_MAX_TRANSCRIPTION_DELAY_STEPS: Final = 12


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeOpenAIConfig:
    """Configuration shared by all connections of a fake server.

    The defaults behave like the live service: a response streams from its own steps
    (the driver advances them from a separate task, so client events interleave with
    it), one response at a time writes to the conversation, and input transcription
    completes asynchronously relative to the response.

    Attributes:
        api_keys: accepted keys; ``None`` accepts any non-empty key.
        models: accepted ``model=``/``deployment=`` values, plus anything starting
            with ``gpt-realtime``.
        voices: accepted GA voice names (custom ``{"id": ...}`` voices are always
            accepted); ``None`` accepts any name. Default: the service's voices (§4).
        responder: produces the assistant reply for each response.
        audio_chunk_seconds: audio duration carried by each ``output_audio.delta``.
        seconds_per_word: length of synthesized reply audio per word.
        paced: ``True`` (default, like the live service): a response advances one
            step per :meth:`FakeOpenAIServer.step` call; the WebSocket driver steps
            every ``pace_seconds`` (0 by default: as fast as the event loop allows,
            still interleaved with the client's events). ``False``: a whole response
            is generated inside the call that creates it (a legacy burst mode: a
            ``response.cancel`` can then never meet a live response).
        transcription_timing: when input transcription (§6) completes, relative to
            the response the same user turn started. The live order is not documented
            ("may arrive before or after the response events"), so every order is
            possible: ``"before_response"`` (right after the item events, before
            ``response.created``), ``"after_response"`` (after the running
            response's ``response.done``), ``"random"`` (default: 0 to 12 steps late,
            chosen by a generator seeded from ``seed`` and the connection index, so a
            run is reproducible).
        audio_done_order: which of ``response.output_audio.done`` and
            ``response.output_audio_transcript.done`` comes first; the live order "is
            not guaranteed" (§9), so ``"random"`` (default, seeded) varies it per
            response; ``"audio_first"`` / ``"transcript_first"`` fix it.
        seed: seeds the ``"random"`` choices (with the connection index).
        dialect: ``"ga"`` or ``"beta"`` (Azure preview / legacy names, §12, §15.6).
        clock: wall clock in Unix seconds, used only for ``expires_at``.
        record_received: keep every parsed client event in
            :attr:`FakeOpenAIServer.received`. That list grows without bound (each
            audio append is kept); turn it off for load and soak runs.
        record_sent: keep every frame the server sends in
            :attr:`FakeOpenAIServer.sent` (to validate them against a client
            library's models in tests).
    """

    api_keys: frozenset[str] | None = None
    models: frozenset[str] = _DEFAULT_MODELS
    voices: frozenset[str] | None = frozenset(GA_VOICES)
    responder: Responder = default_responder
    audio_chunk_seconds: float = 0.1
    seconds_per_word: float = 0.3
    paced: bool = True
    transcription_timing: TranscriptionTiming = "random"
    audio_done_order: AudioDoneOrder = "random"
    seed: int = 0
    dialect: Literal["ga", "beta"] = "ga"
    clock: Callable[[], float] = time.time
    record_received: bool = True
    record_sent: bool = False

    def __post_init__(self) -> None:
        if self.audio_chunk_seconds <= 0 or self.seconds_per_word <= 0:
            raise ValueError("audio_chunk_seconds and seconds_per_word must be positive")
        if self.transcription_timing not in TRANSCRIPTION_TIMINGS:
            raise ValueError(f"transcription_timing must be one of {TRANSCRIPTION_TIMINGS}")
        if self.audio_done_order not in AUDIO_DONE_ORDERS:
            raise ValueError(f"audio_done_order must be one of {AUDIO_DONE_ORDERS}")


_DEFAULT_CONFIG: Final = FakeOpenAIConfig()


class FakeOpenAIServer:
    """Server side of one OpenAI Realtime WebSocket connection (sans-I/O).

    Attributes:
        config: the shared configuration.
        received: every parsed client event (valid or not), in arrival order; stays
            empty when ``config.record_received`` is off.
        session: the current effective session object (wire shape of the dialect).
        items: the default conversation, oldest first (wire dicts, audio omitted).
        responder_errors: exceptions raised by the responder (each failed a response).
        sent: every frame sent, in order, when ``config.record_sent`` is on.

    Args:
        config: shared by every connection of one server.
        connection: this connection's index on its server (0 for the first). Server
            ids (``event_``, ``item_``, ``resp_``, ...) carry it from the second
            connection on (``resp_0001``, then ``resp_2_0001``), so that, as on the
            live service, no id repeats across the reconnects of one test.
    """

    def __init__(self, config: FakeOpenAIConfig = _DEFAULT_CONFIG, *, connection: int = 0) -> None:
        self.config = config
        self._id_infix = f"{connection + 1}_" if connection else ""
        self.received: list[Json] = []
        self.session: Json = {}
        self.items: list[Json] = []
        self.responder_errors: list[BaseException] = []
        self.sent: list[str] = []
        self._state: Literal["new", "open", "closed"] = "new"
        self._outbox: list[str] = []
        self._close: tuple[int, str] | None = None
        self._counters: dict[str, int] = {}
        self._conversation_id = ""
        self._audio: dict[str, AudioBlob] = {}
        self._runs: list[ResponseRun] = []
        #: Background work advanced by :meth:`step` beside the responses (transcriptions).
        self._jobs: list[Generator[None, None, None]] = []
        self._rng = random.Random(f"{config.seed}:{connection}")
        self._audio_output_started = False
        self._tokens_used = 0
        self._last_input_tokens = 0
        # input audio buffer (§5) and energy VAD (§14 item 9)
        self._buffer = bytearray()
        self._buffer_start_ms = 0.0
        self._total_ms = 0.0
        self._vad_pending = np.zeros(0, dtype=np.float64)
        self._vad_clock_ms = 0.0
        self._vad_speaking = False
        self._vad_silence_ms = 0.0
        self._vad_item_id: str | None = None
        self._vad_start_ms = 0
        self._handlers: dict[str, Callable[[Json, str | None], None]] = {
            "session.update": self._on_session_update,
            "session.close": self._on_session_close,
            "input_audio_buffer.append": self._on_append,
            "session.input_audio_buffer.append": self._on_append,
            "input_audio_buffer.commit": self._on_commit,
            "input_audio_buffer.clear": self._on_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.retrieve": self._on_item_retrieve,
            "conversation.item.truncate": self._on_item_truncate,
            "conversation.item.delete": self._on_item_delete,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
            "output_audio_buffer.clear": self._on_output_audio_buffer_clear,
        }

    # --- driver API ----------------------------------------------------------------------------

    def receive_connect(self, path: str, headers: Mapping[str, str]) -> None:
        """Process the WebSocket upgrade request (§2, §14 items 1-2).

        ``path`` includes the query string. Header names are matched
        case-insensitively. The upgrade is always accepted; a refusal is an
        ``error`` event followed by :meth:`close_to_send` (3000 auth, 4000 model
        or beta header, as in the §2.1 table).

        Raises:
            RuntimeError: called twice.
        """
        if self._state != "new":
            raise RuntimeError("receive_connect() may be called only once")
        self._state = "open"
        lowered = {name.lower(): value for name, value in headers.items()}
        url = urlsplit(path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        key = self._find_api_key(lowered, query)
        if not key:
            self._fatal(
                None,
                "Missing bearer or basic authentication in header",
                3000,
                "invalid_request_error",
            )
            return
        if self.config.api_keys is not None and key not in self.config.api_keys:
            redacted = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
            self._fatal(
                "invalid_api_key",
                f"Incorrect API key provided: {redacted}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                3000,
                "invalid_request_error.invalid_api_key",
            )
            return
        if self.config.dialect == "ga" and "realtime" in lowered.get("openai-beta", ""):
            self._fatal(  # §12: the beta shape is shut down on GA
                "beta_api_shape_disabled",
                "The Realtime Beta API is no longer supported. Please use the GA Realtime API.",
                4000,
                "invalid_request_error.beta_api_shape_disabled",
            )
            return
        if not url.path.rstrip("/").endswith("/realtime"):
            self._fatal(  # the live server answers HTTP 404 here; the fake stays in-band
                "not_found",
                f"Unknown endpoint '{url.path}'; the Realtime API lives at /v1/realtime.",
                4000,
                "invalid_request_error.not_found",
            )
            return
        model = query.get("model") or query.get("deployment")
        if not model:
            self._fatal(
                "missing_model",
                "You must provide a model parameter (e.g. ?model=gpt-realtime).",
                4000,
                "invalid_request_error.missing_model",
            )
            return
        if model not in self.config.models and not model.startswith("gpt-realtime"):
            self._fatal(
                "invalid_model",
                f"Invalid model: {model}. The model does not exist or you do not have access.",
                4000,
                "invalid_request_error.invalid_model",
            )
            return
        self._conversation_id = self._new_id("conv")
        self.session = default_session(
            self.config.dialect, self._new_id("sess"), model, int(self.config.clock()) + 3600
        )
        self._emit("session.created", session=self.session)
        if self.config.dialect == "beta":  # §12: beta announces the conversation
            self._emit(
                "conversation.created",
                conversation={"id": self._conversation_id, "object": "realtime.conversation"},
            )

    def receive_message(self, data: str | bytes) -> None:
        """Process one received WebSocket frame (text or binary).

        Frames arriving after the connection is closing or closed are ignored.

        Raises:
            RuntimeError: called before :meth:`receive_connect`.
        """
        if self._state == "new":
            raise RuntimeError("receive_connect() must be called first")
        if self._state == "closed" or self._close is not None:
            return
        if not isinstance(data, str):  # §3: text frames only
            self._error(
                "invalid_event",
                "Binary frames are not supported; send each event as a JSON text frame.",
            )
            return
        try:
            event = _json.loads(data)
        except ValueError as exc:
            self._error("invalid_json", f"Invalid JSON in client event: {exc}.")
            return
        if not isinstance(event, dict):
            self._error("invalid_type", "Expected a client event: a JSON object with a 'type'.")
            return
        if self.config.record_received:
            self.received.append(event)
        event_id = event.get("event_id")
        event_id = event_id if isinstance(event_id, str) else None
        try:
            validate_client_event(event, self.config.dialect)
        except SchemaError as exc:  # §3 / §10: reject, never close, discard entirely
            self._error(exc.code, exc.message, exc.param, event_id)
            return
        self._handlers[event["type"]](event, event_id)
        if not self.config.paced:  # burst mode: background work finishes in this call too
            while self._jobs and self._close is None:
                self._step_jobs()

    def receive_close(self) -> None:
        """The peer closed (or the transport died): stop everything, drop pending frames."""
        self._state = "closed"
        for run in self._runs:
            if run.steps is not None:
                run.steps.close()
        self._runs.clear()
        for job in self._jobs:
            job.close()
        self._jobs.clear()
        self._outbox.clear()

    def data_to_send(self) -> list[str]:
        """Drain and return the queued outgoing JSON text frames, oldest first."""
        frames, self._outbox = self._outbox, []
        if self.config.record_sent:
            self.sent += frames
        return frames

    def close_to_send(self) -> tuple[int, str] | None:
        """``(code, reason)`` once the server wants to close, else ``None``.

        The driver sends the frames from :meth:`data_to_send` first, then closes.
        """
        return self._close

    def step(self) -> None:
        """Paced mode: advance every active response and background job by one step.

        A step is one audio delta with its transcript deltas (one text delta in
        text modality), one whole function call item, or the closing sequence; a
        pending input transcription waits some steps, then completes in one.
        No-op when nothing is active.
        """
        for run in list(self._runs):
            self._advance(run)
        self._step_jobs()

    def run_until_idle(self, max_steps: int = 100_000) -> None:
        """Call :meth:`step` until no response or job is active (what the WebSocket
        driver does with ``pace_seconds=0`` when the client sends nothing meanwhile).

        Raises:
            RuntimeError: still busy after ``max_steps`` steps.
        """
        for _ in range(max_steps):
            if not self.response_active or self._close is not None:
                return
            self.step()
        raise RuntimeError(f"still active after {max_steps} steps")

    @property
    def response_active(self) -> bool:
        """True while a response has not sent ``response.done`` or a background job
        (an input transcription) is pending: the driver keeps stepping meanwhile."""
        return bool(self._runs or self._jobs)

    def _step_jobs(self) -> None:
        for job in list(self._jobs):
            try:
                next(job)
            except StopIteration:
                self._jobs.remove(job)

    def inject_speech_started(self) -> None:
        """Act as if the VAD detected speech now (§15.5), whatever the audio says.

        Emits ``input_audio_buffer.speech_started`` and, if a response is active
        and ``interrupt_response`` is on (or turn detection is off), cancels it with
        reason ``turn_detected``.
        """
        if self._state != "open" or self._close is not None or self._vad_speaking:
            return
        self._speech_started(self._vad_clock_ms + len(self._vad_pending) * 1000.0 / self._in_rate)

    def expire_session(self) -> None:
        """Hit the 60-minute limit now: ``session_expired`` error, then close 1001 (§2.1)."""
        if self._state != "open" or self._close is not None:
            return
        message = "Your session hit the maximum duration of 60 minutes."
        self._fatal("session_expired", message, 1001, message)

    # --- emission helpers ---------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        count = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = count
        return f"{prefix}_{self._id_infix}{count:04d}"

    def _emit(self, kind: str, **fields: Any) -> None:
        """Queue one server event; GA names are renamed in the beta dialect (§12)."""
        if self.config.dialect == "beta":
            kind = BETA_EVENT_NAMES.get(kind, kind)
        event: Json = {"type": kind, "event_id": self._new_id("event"), **fields}
        self._outbox.append(_json.dumps(event))

    def _obfuscation(self) -> str:
        """Deterministic padding for ``obfuscation`` (§3: clients must ignore it)."""
        seed = self._counters.get("event", 0)
        digest = hashlib.blake2s(str(seed).encode(), digest_size=8).hexdigest()
        return digest[: 3 + seed % 10]

    def _error(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        event_id: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        """Queue an ``error`` event in the exact shape of §10."""
        self._emit(
            "error",
            error={
                "type": error_type,
                "code": code,
                "message": message,
                "param": param,
                "event_id": event_id,
            },
        )

    def _fatal(self, code: str | None, message: str, close_code: int, reason: str) -> None:
        self._error(code, message)
        self._close = (close_code, reason)

    def _emit_item_added(self, item: Json, previous_item_id: str | None) -> None:
        # GA: conversation.item.added; beta: the single conversation.item.created (§12)
        name = "conversation.item.added" if self._ga else "conversation.item.created"
        self._emit(name, previous_item_id=previous_item_id, item=item)

    def _emit_item_done(self, item: Json, previous_item_id: str | None) -> None:
        if self._ga:
            self._emit("conversation.item.done", previous_item_id=previous_item_id, item=item)

    # --- session (§4, §12) --------------------------------------------------------------------

    @property
    def _ga(self) -> bool:
        return self.config.dialect == "ga"

    @staticmethod
    def _find_api_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            return authorization[7:].strip()
        if headers.get("api-key"):  # Azure (§2.2)
            return headers["api-key"].strip()
        if query.get("api-key"):
            return query["api-key"]
        for offered in headers.get("sec-websocket-protocol", "").split(","):
            offered = offered.strip()  # browser-style auth (§2.1)
            if offered.startswith("openai-insecure-api-key."):
                return offered.removeprefix("openai-insecure-api-key.")
        return None

    @property
    def _turn_detection(self) -> Json | None:
        if self._ga:
            detection: Json | None = self.session["audio"]["input"]["turn_detection"]
            return detection
        beta_detection: Json | None = self.session["turn_detection"]
        return beta_detection

    @property
    def _in_encoding(self) -> Encoding:
        if self._ga:
            return ENCODINGS[self.session["audio"]["input"]["format"]["type"]]
        return ENCODINGS[self.session["input_audio_format"]]

    @property
    def _in_rate(self) -> int:
        return rate(self._in_encoding)

    @property
    def _transcription(self) -> Json | None:
        if self._ga:
            transcription: Json | None = self.session["audio"]["input"]["transcription"]
            return transcription
        beta_transcription: Json | None = self.session["input_audio_transcription"]
        return beta_transcription

    def _on_session_update(self, event: Json, event_id: str | None) -> None:
        # §4 / §14 item 4: partial update, semantic checks, full echo in session.updated
        update: Json = event["session"]
        current_voice = (
            self.session["audio"]["output"]["voice"] if self._ga else self.session["voice"]
        )
        if self._ga:
            if update["type"] != "realtime":
                self._error(
                    "invalid_value",
                    "Cannot change the session type of a realtime session.",
                    "session.type",
                    event_id,
                )
                return
            new_voice = update.get("audio", {}).get("output", {}).get("voice", current_voice)
            voice_param = "session.audio.output.voice"
        else:
            new_voice = update.get("voice", current_voice)
            voice_param = "session.voice"
        if not self._voice_ok(new_voice, voice_param, event_id):
            return
        if "model" in update and update["model"] != self.session["model"]:
            self._error(
                "invalid_value", "The session model cannot be changed.", "session.model", event_id
            )
            return
        if new_voice != current_voice and self._audio_output_started:
            self._error(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
                voice_param,
                event_id,
            )
            return
        new = copy.deepcopy(self.session)
        if self._ga:
            for key, value in update.items():
                if key == "audio":
                    for side, settings in value.items():
                        for name, setting in settings.items():
                            if name == "turn_detection":
                                setting = turn_detection_with_defaults(setting, ga=True)
                            elif name == "format" and setting["type"] == "audio/pcm":
                                setting = {**PCM_FORMAT, **setting}
                            new["audio"][side][name] = copy.deepcopy(setting)
                elif key == "tools":
                    new["tools"] = [{"type": "function", **tool} for tool in value]
                else:
                    new[key] = copy.deepcopy(value)
        else:
            for key, value in update.items():
                if key == "turn_detection":
                    value = turn_detection_with_defaults(value, ga=False)
                new[key] = copy.deepcopy(value)
        detection_changed = self._turn_detection != (
            new["audio"]["input"]["turn_detection"] if self._ga else new["turn_detection"]
        )
        self.session = new
        if detection_changed:
            self._vad_reset()
        self._emit("session.updated", session=self.session)

    def _voice_ok(self, voice: Any, param: str, event_id: str | None) -> bool:
        """§4: a built-in voice must be one the service has (custom ``{"id"}`` voices pass)."""
        voices = self.config.voices
        if not self._ga or voices is None or not isinstance(voice, str) or voice in voices:
            return True
        try:
            Enum(tuple(v for v in GA_VOICES if v in voices) or tuple(sorted(voices))).check(
                voice, param
            )
        except SchemaError as exc:
            self._error(exc.code, exc.message, exc.param, event_id)
        return False

    def _on_session_close(self, event: Json, event_id: str | None) -> None:
        self._close = (1000, "")  # §3: accepted by the live server

    def _on_output_audio_buffer_clear(self, event: Json, event_id: str | None) -> None:
        self._error(  # §5: WebRTC/SIP only
            "invalid_value",
            "output_audio_buffer.clear is only supported for WebRTC and SIP connections.",
            "type",
            event_id,
        )

    # --- input audio buffer and server VAD (§5, §9, §14 item 9) -------------------------------

    def _vad_reset(self) -> None:
        self._vad_pending = np.zeros(0, dtype=np.float64)
        self._vad_clock_ms = self._total_ms
        self._vad_speaking = False
        self._vad_silence_ms = 0.0
        self._vad_item_id = None

    def _on_append(self, event: Json, event_id: str | None) -> None:
        encoding = self._in_encoding
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            self._error("invalid_value", "Invalid 'audio': not valid base64.", "audio", event_id)
            return
        if len(data) % sample_width(encoding):
            self._error(
                "invalid_value",
                "Invalid 'audio': PCM16 audio must contain an even number of bytes.",
                "audio",
                event_id,
            )
            return
        self._buffer += data
        self._total_ms += len(data) / bytes_per_ms(encoding)
        detection = self._turn_detection
        if detection is None:
            self._vad_clock_ms = self._total_ms
            return
        samples = decode_to_float(data, encoding)
        if len(self._vad_pending):
            samples = np.concatenate([self._vad_pending, samples])
        self._run_vad(samples, detection)

    def _run_vad(self, samples: np.ndarray[Any, np.dtype[np.float64]], detection: Json) -> None:
        """Energy VAD over 10 ms windows: speech if RMS > 0.02 * threshold / 0.5."""
        window = self._in_rate // 100
        threshold = 0.02 * float(detection.get("threshold", 0.5)) / 0.5
        if detection["type"] == "server_vad":
            silence_needed = float(detection["silence_duration_ms"])
        else:
            silence_needed = float(EAGERNESS_SILENCE_MS[detection["eagerness"]])
        count = len(samples) // window
        frames = samples[: count * window].reshape(count, window)
        # mean square per window in one call; compared squared, no square root needed
        energy = np.einsum("ij,ij->i", frames, frames) / window
        for loud in (energy > threshold * threshold).tolist():
            start_ms = self._vad_clock_ms
            self._vad_clock_ms += 10.0
            if not self._vad_speaking:
                if loud:
                    self._speech_started(start_ms)
            elif loud:
                self._vad_silence_ms = 0.0
            else:
                self._vad_silence_ms += 10.0
                if self._vad_silence_ms >= silence_needed:
                    self._speech_stopped(self._vad_clock_ms)
        self._vad_pending = samples[count * window :].copy()

    def _speech_started(self, at_ms: float) -> None:
        detection = self._turn_detection or {}
        prefix = float(detection.get("prefix_padding_ms", 300))
        self._vad_speaking = True
        self._vad_silence_ms = 0.0
        self._vad_item_id = self._new_id("item")
        self._vad_start_ms = round(max(self._buffer_start_ms, at_ms - prefix))
        self._emit(
            "input_audio_buffer.speech_started",
            audio_start_ms=self._vad_start_ms,
            item_id=self._vad_item_id,
        )
        active = self._default_run()
        if active is not None and detection.get("interrupt_response", True):
            self._cancel(active, "turn_detected")  # §15.5 barge-in

    def _speech_stopped(self, at_ms: float) -> None:
        detection = self._turn_detection or {}
        item_id = self._vad_item_id or self._new_id("item")
        end_ms = round(at_ms)
        self._emit("input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id)
        per_ms = bytes_per_ms(self._in_encoding)
        width = sample_width(self._in_encoding)

        def offset(ms: float) -> int:
            raw = int((ms - self._buffer_start_ms) * per_ms)
            return max(0, min(len(self._buffer), raw - raw % width))

        data = bytes(self._buffer[offset(self._vad_start_ms) : offset(end_ms)])
        del self._buffer[: offset(end_ms)]
        self._buffer_start_ms = float(end_ms)
        self._vad_speaking = False
        self._vad_item_id = None
        self._commit_user_audio(item_id, data)
        if detection.get("create_response", True) and self._default_run() is None:
            self._create_response({}, None)

    def _on_commit(self, event: Json, event_id: str | None) -> None:
        buffered_ms = len(self._buffer) / bytes_per_ms(self._in_encoding)
        if buffered_ms < MIN_COMMIT_MS:
            self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                None,
                event_id,
            )
            return
        item_id = self._vad_item_id or self._new_id("item")
        data = bytes(self._buffer)
        self._clear_buffer()
        self._commit_user_audio(item_id, data)

    def _clear_buffer(self) -> None:
        self._buffer.clear()
        self._buffer_start_ms = self._total_ms
        self._vad_speaking = False
        self._vad_silence_ms = 0.0
        self._vad_item_id = None

    def _on_clear(self, event: Json, event_id: str | None) -> None:
        self._clear_buffer()
        self._emit("input_audio_buffer.cleared")

    def _commit_user_audio(self, item_id: str, data: bytes) -> None:
        """Buffer -> user ``input_audio`` item: committed, item added/done (§9)."""
        previous = self.items[-1]["id"] if self.items else None
        item: Json = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items.append(item)
        self._audio[item_id] = AudioBlob(data, self._in_encoding)
        self._emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        self._emit_item_added(item, previous)
        self._emit_item_done(item, previous)
        self._transcribe(item)

    def _transcribe(self, item: Json) -> None:
        """Input transcription, if configured (§6), timed by ``config.transcription_timing``.

        It runs asynchronously relative to the response (§9): unless the timing is
        ``"before_response"`` it becomes a job that :meth:`step` completes later.
        """
        if self._transcription is None:
            return
        timing = self.config.transcription_timing
        if timing == "before_response":
            self._emit_transcription(item)
            return
        delay = 0
        if timing == "random":
            delay = self._rng.randint(-1, _MAX_TRANSCRIPTION_DELAY_STEPS)
            if delay < 0:  # sometimes it is already done before the response starts
                self._emit_transcription(item)
                return
        self._jobs.append(self._transcription_job(item, delay, timing == "after_response"))

    def _transcription_job(
        self, item: Json, delay: int, after_response: bool
    ) -> Generator[None, None, None]:
        for _ in range(delay):
            yield
        while after_response and self._default_run() is not None:
            yield
        self._emit_transcription(item)

    def _emit_transcription(self, item: Json) -> None:
        """A deterministic transcript ``(N.N s of audio)`` with delta, completed and usage."""
        blob = self._audio.get(item["id"])
        seconds = blob.ms / 1000.0 if blob else 0.0
        transcript = f"({seconds:.1f} s of audio)"
        self._emit(
            "conversation.item.input_audio_transcription.delta",
            item_id=item["id"],
            content_index=0,
            delta=transcript,
            obfuscation=self._obfuscation(),
        )
        extra: Json = {}
        if self._ga:
            audio_tokens = math.ceil(seconds * 10)
            text_tokens = word_tokens(transcript)
            extra["usage"] = {
                "type": "tokens",
                "total_tokens": audio_tokens + text_tokens,
                "input_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                "output_tokens": text_tokens,
            }
        self._emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=item["id"],
            content_index=0,
            transcript=transcript,
            **extra,
        )
        for part in item["content"]:
            if part.get("type") == "input_audio":
                part["transcript"] = transcript
                break

    # --- conversation items (§5, §7) ----------------------------------------------------------

    def _find_item(self, item_id: str) -> Json | None:
        return next((item for item in self.items if item.get("id") == item_id), None)

    def _on_item_create(self, event: Json, event_id: str | None) -> None:
        item: Json = copy.deepcopy(event["item"])
        if "id" in item and self._find_item(item["id"]) is not None:
            self._error(
                "invalid_value",
                f"Item with id '{item['id']}' already exists.",
                "item.id",
                event_id,
            )
            return
        audio = bytearray()
        if item["type"] == "message":
            for index, part in enumerate(item["content"]):
                if part["type"] in ("output_audio", "audio") and item["role"] == "assistant":
                    self._error(  # §5: assistant audio cannot be created by the client
                        "invalid_value",
                        "Assistant messages cannot contain audio content created by the client.",
                        f"item.content[{index}].type",
                        event_id,
                    )
                    return
                if part["type"] == "input_audio":
                    try:
                        data = base64.b64decode(part.pop("audio", ""), validate=True)
                        valid = len(data) % sample_width(self._in_encoding) == 0
                    except (binascii.Error, ValueError):
                        data, valid = b"", False
                    if not valid:
                        self._error(
                            "invalid_value",
                            "Invalid audio: not valid base64 audio in the input format.",
                            f"item.content[{index}].audio",
                            event_id,
                        )
                        return
                    audio += data
                    part.setdefault("transcript", None)
        elif item["type"] == "function_call_output" and not any(
            known.get("type") == "function_call" and known.get("call_id") == item["call_id"]
            for known in self.items
        ):
            self._error(  # §9: the output must answer a call in the conversation
                "invalid_value",
                f"Tool call ID '{item['call_id']}' not found in conversation.",
                "item.call_id",
                event_id,
            )
            return
        position = len(self.items)
        anchor = event.get("previous_item_id")
        if anchor == "root":
            position = 0
        elif anchor is not None:
            found = next((i for i, x in enumerate(self.items) if x.get("id") == anchor), None)
            if found is None:
                self._error(
                    "invalid_value",
                    f"Previous item with id '{anchor}' not found.",
                    "previous_item_id",
                    event_id,
                )
                return
            position = found + 1
        if item["type"] == "function_call":
            item.setdefault("call_id", self._new_id("call"))
        item.pop("object", None)
        item = {  # the server's key order: id, type, status, then the rest (§15.2)
            "id": item.pop("id", None) or self._new_id("item"),
            "type": item.pop("type"),
            "status": item.pop("status", "completed"),
            **item,
        }
        previous = self.items[position - 1]["id"] if position > 0 else None
        self.items.insert(position, item)
        if audio:
            self._audio[item["id"]] = AudioBlob(bytes(audio), self._in_encoding)
        self._emit_item_added(item, previous)
        self._emit_item_done(item, previous)
        if audio and all(p.get("transcript") is None for p in item["content"]):
            self._transcribe(item)

    def _item_not_found(self, item_id: str, event_id: str | None) -> None:
        self._error(
            "invalid_value", f"Item with item_id '{item_id}' not found.", "item_id", event_id
        )

    def _on_item_retrieve(self, event: Json, event_id: str | None) -> None:
        item = self._find_item(event["item_id"])
        if item is None:
            self._item_not_found(event["item_id"], event_id)
            return
        full = copy.deepcopy(item)
        blob = self._audio.get(item["id"])
        if blob is not None:  # §5: retrieve includes the audio bytes
            for part in full.get("content", []):
                if part.get("type") in ("input_audio", "output_audio", "audio"):
                    part["audio"] = base64.b64encode(blob.data).decode("ascii")
                    break
        self._emit("conversation.item.retrieved", item=full)

    def _on_item_delete(self, event: Json, event_id: str | None) -> None:
        item = self._find_item(event["item_id"])
        if item is None:
            self._item_not_found(event["item_id"], event_id)
            return
        self.items.remove(item)
        self._audio.pop(item["id"], None)
        self._emit("conversation.item.deleted", item_id=item["id"])

    def _on_item_truncate(self, event: Json, event_id: str | None) -> None:
        # §5 / §15.5: validate, cut audio, drop the unplayed part of the transcript
        item = self._find_item(event["item_id"])
        if item is None:
            self._item_not_found(event["item_id"], event_id)
            return
        if item.get("type") != "message" or item.get("role") != "assistant":
            self._error(
                "invalid_value", "Only assistant messages can be truncated.", "item_id", event_id
            )
            return
        index = event["content_index"]
        content = item["content"]
        blob = self._audio.get(item["id"])
        if (
            index >= len(content)
            or content[index].get("type") not in ("output_audio", "audio")
            or blob is None
        ):
            self._error(
                "invalid_value",
                f"Content part {index} of item '{item['id']}' has no audio to truncate.",
                "content_index",
                event_id,
            )
            return
        end_ms = event["audio_end_ms"]
        length_ms = blob.ms
        if end_ms > length_ms:
            self._error(
                "invalid_value",
                f"Audio content of {math.floor(length_ms)}ms is already shorter than {end_ms}ms.",
                "audio_end_ms",
                event_id,
            )
            return
        width = sample_width(blob.encoding)
        cut = int(end_ms * bytes_per_ms(blob.encoding))
        blob.data = blob.data[: cut - cut % width]
        pieces = split_pieces(content[index].get("transcript") or "")
        keep = math.ceil(len(pieces) * end_ms / length_ms) if length_ms > 0 else 0
        content[index]["transcript"] = "".join(pieces[:keep]).rstrip()
        self._emit(
            "conversation.item.truncated",
            item_id=item["id"],
            content_index=index,
            audio_end_ms=end_ms,
        )

    # --- responses (§8, §9, §15) --------------------------------------------------------------

    def _default_run(self) -> ResponseRun | None:
        return next((run for run in self._runs if run.in_conversation), None)

    def _on_response_create(self, event: Json, event_id: str | None) -> None:
        self._create_response(event.get("response") or {}, event_id)

    def _on_response_cancel(self, event: Json, event_id: str | None) -> None:
        wanted = event.get("response_id")
        if wanted is None:
            run = self._default_run()
        else:
            run = next((r for r in self._runs if r.id == wanted), None)
        if run is None:
            self._error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
                None,
                event_id,
            )
            return
        self._cancel(run, "client_cancelled")

    def _resolve_input(self, entries: list[Json], event_id: str | None) -> list[Json] | None:
        """``response.input`` (§8.1): inline items and references to conversation items."""
        context: list[Json] = []
        for index, entry in enumerate(entries):
            if entry["type"] == "item_reference":
                found = self._find_item(entry["id"])
                if found is None:
                    self._error(
                        "invalid_value",
                        f"Item with id '{entry['id']}' not found.",
                        f"response.input[{index}].id",
                        event_id,
                    )
                    return None
                context.append(found)
            else:
                context.append(entry)
        return context

    def _turn_for(self, context: list[Json]) -> FakeTurn:
        history = tuple(copy.deepcopy(context))
        for item in reversed(context):
            if item.get("type") == "function_call_output":
                return FakeTurn(
                    kind="tool_output", text=item["output"], audio_seconds=0.0, history=history
                )
            if item.get("type") != "message" or item.get("role") == "system":
                continue
            if item.get("role") != "user":
                break
            parts = item.get("content", [])
            texts = [p.get("text", "") for p in parts if p.get("type") == "input_text"]
            if texts:
                return FakeTurn(
                    kind="text", text=" ".join(texts), audio_seconds=0.0, history=history
                )
            blob = self._audio.get(item.get("id", ""))
            transcript = next((p.get("transcript") for p in parts if p.get("transcript")), "")
            return FakeTurn(
                kind="audio",
                text=transcript or "",
                audio_seconds=blob.ms / 1000.0 if blob else 0.0,
                history=history,
            )
        return FakeTurn(kind="text", text="", audio_seconds=0.0, history=history)

    def _input_tokens(
        self, context: list[Json], instructions: str, tools: list[Json]
    ) -> tuple[int, int]:
        """(text, audio) input tokens: words of all text, audio ms/100 user, ms/50 assistant."""
        text = word_tokens(instructions) + (word_tokens(json.dumps(tools)) if tools else 0)
        audio = 0.0
        for item in context:
            blob = self._audio.get(item.get("id", ""))
            if blob is not None:
                audio += blob.ms / (50.0 if item.get("role") == "assistant" else 100.0)
            for part in item.get("content", []):
                text += word_tokens(part.get("text") or "")
                if blob is None:
                    text += word_tokens(part.get("transcript") or "")
            for key in ("name", "arguments", "output"):
                text += word_tokens(str(item.get(key, "")))
        return text, round(audio)

    def _create_response(self, params: Json, event_id: str | None) -> None:
        """Start a response (``response.create`` or VAD ``create_response``, §8.1, §9)."""
        in_conversation = params.get("conversation", "auto") != "none"
        active = self._default_run()
        if in_conversation and active is not None:
            self._error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {active.id}. "
                "Wait until the response is finished before creating a new one.",
                None,
                event_id,
            )
            return
        context: list[Json] = list(self.items)
        if "input" in params:
            resolved = self._resolve_input(params["input"], event_id)
            if resolved is None:
                return
            context = resolved
        session = self.session
        modalities: list[str]
        output_format: Any
        if self._ga:
            modalities = params.get("output_modalities") or session["output_modalities"]
            audio_out = {**session["audio"]["output"], **params.get("audio", {}).get("output", {})}
            voice, output_format = audio_out["voice"], audio_out["format"]
            if not self._voice_ok(voice, "response.audio.output.voice", event_id):
                return
            if output_format["type"] == "audio/pcm":
                output_format = {**PCM_FORMAT, **output_format}
            encoding = ENCODINGS[output_format["type"]]
            max_tokens = params.get("max_output_tokens", session["max_output_tokens"])
        else:
            modalities = params.get("modalities") or session["modalities"]
            voice = params.get("voice", session["voice"])
            output_format = params.get("output_audio_format", session["output_audio_format"])
            encoding = ENCODINGS[str(output_format)]
            max_tokens = params.get(
                "max_response_output_tokens",
                params.get("max_output_tokens", session["max_response_output_tokens"]),
            )
        instructions: str = (
            params["instructions"] if "instructions" in params else session["instructions"]
        )
        tools: list[Json] = params["tools"] if "tools" in params else session["tools"]
        text_in, audio_in = self._input_tokens(context, instructions, tools)
        cached = min(self._last_input_tokens, text_in + audio_in) // 64 * 64
        run = ResponseRun(
            id=self._new_id("resp"),
            in_conversation=in_conversation,
            modality="audio" if "audio" in modalities else "text",
            voice=voice,
            output_format=output_format,
            encoding=encoding,
            max_output_tokens=max_tokens,
            metadata=params.get("metadata"),
            input_text_tokens=text_in,
            input_audio_tokens=audio_in,
            cached_tokens=cached,
        )
        self._runs.append(run)
        self._emit("response.created", response=self._response_object(run, "in_progress", None))
        try:
            reply = self.config.responder(self._turn_for(context))
        except Exception as exc:  # §10: response-level failure -> response.done "failed"
            if isinstance(exc, FakeServerError):
                code, message = exc.code, exc.message
            else:  # a responder bug: keep it for the test, fail like a model error
                self.responder_errors.append(exc)
                code, message = "server_error", f"The responder raised {exc!r}."
            self._error(code, message, None, None, error_type="server_error")
            error = {"type": "server_error", "code": code, "message": message}
            self._complete(run, "failed", {"type": "failed", "error": error})
            return
        run.steps = self._response_steps(run, reply)
        self._advance(run)
        if not self.config.paced:
            while not run.done:
                self._advance(run)

    def _response_object(self, run: ResponseRun, status: str, details: Json | None) -> Json:
        return response_object(
            run,
            status,
            details,
            dialect=self.config.dialect,
            conversation_id=self._conversation_id,
            temperature=self.session.get("temperature", 0.8),
        )

    def _advance(self, run: ResponseRun) -> None:
        if run.steps is not None and not run.done:
            next(run.steps, None)

    def _plan(
        self, run: ResponseRun, reply: FakeReply
    ) -> tuple[list[str], list[FakeToolCall], bool]:
        """Apply ``max_output_tokens`` (§8.2 ``incomplete``); returns (pieces, calls, cut)."""
        pieces = split_pieces(reply.text)
        calls = list(reply.tool_calls)
        if run.max_output_tokens == "inf":
            return pieces, calls, False
        budget = int(run.max_output_tokens)
        per_word = 1 + (
            self.config.seconds_per_word * 1000.0 / 50.0 if run.modality == "audio" else 0
        )
        keep = min(len(pieces), int(budget // per_word))
        budget -= math.ceil(keep * per_word)
        if keep < len(pieces):
            return pieces[:keep], [], True
        kept: list[FakeToolCall] = []
        for call in calls:
            cost = word_tokens(call.name) + max(1, len(call.arguments) // 4)
            if cost > budget:
                return pieces, kept, True
            budget -= cost
            kept.append(call)
        return pieces, kept, False

    def _response_steps(self, run: ResponseRun, reply: FakeReply) -> Generator[None, None, None]:
        """The §9 event sequence of one response, suspended at each paced step."""
        pieces, calls, cut = self._plan(run, reply)
        if pieces:
            yield from self._message_steps(run, pieces)
            self._end_message(run, "incomplete" if cut else "completed")
        for call in calls:
            if run.output:
                yield
            self._function_call(run, call)
        if cut:
            self._complete(run, "incomplete", {"type": "incomplete", "reason": "max_output_tokens"})
        else:
            self._complete(run, "completed", None)

    def _add_output_item(self, run: ResponseRun, item: Json) -> None:
        run.output.append(item)
        self._emit(
            "response.output_item.added",
            response_id=run.id,
            output_index=len(run.output) - 1,
            item=item,
        )
        if run.in_conversation:
            previous = self.items[-1]["id"] if self.items else None
            self.items.append(item)
            self._emit_item_added(item, previous)

    def _item_previous(self, item: Json) -> str | None:
        index = next((i for i, x in enumerate(self.items) if x is item), 0)
        return self.items[index - 1]["id"] if index > 0 else None

    def _done_output_item(self, run: ResponseRun, item: Json, output_index: int) -> None:
        if run.in_conversation and any(x is item for x in self.items):
            self._emit_item_done(item, self._item_previous(item))
        self._emit(
            "response.output_item.done", response_id=run.id, output_index=output_index, item=item
        )

    def _message_steps(self, run: ResponseRun, pieces: list[str]) -> Generator[None, None, None]:
        """Assistant message: item/part added, deltas (one step each), §9 / §15.2-15.3."""
        item: Json = {
            "id": self._new_id("item"),
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        run.message = item
        run.message_index = len(run.output)
        self._add_output_item(run, item)
        ids: Json = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": run.message_index,
            "content_index": 0,
        }
        audio = run.modality == "audio"
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        self._emit("response.content_part.added", **ids, part=part)
        if not audio:
            for piece in pieces:
                yield
                run.pieces_sent.append(piece)
                run.output_text_tokens += 1
                self._emit(
                    "response.output_text.delta",
                    **ids,
                    delta=piece,
                    obfuscation=self._obfuscation(),
                )
            yield
            return
        sample_rate = rate(run.encoding)
        words = [piece.strip() for piece in pieces]
        slot = round(self.config.seconds_per_word * sample_rate)
        chunk = max(1, round(self.config.audio_chunk_seconds * sample_rate))
        chunks = speech_chunks(
            words,
            seconds_per_word=self.config.seconds_per_word,
            sample_rate=sample_rate,
            chunk=chunk,
        )
        sent_words = 0
        end = 0
        for samples in chunks:  # rendered one step at a time, as a live server streams
            yield
            end += len(samples)
            while sent_words < len(pieces) and sent_words * slot < end:
                run.pieces_sent.append(pieces[sent_words])
                run.output_text_tokens += 1
                self._emit(
                    "response.output_audio_transcript.delta",
                    **ids,
                    delta=pieces[sent_words],
                    obfuscation=self._obfuscation(),
                )
                sent_words += 1
            piece_bytes = encode_from_int16(samples, run.encoding)
            run.audio_sent += piece_bytes
            self._audio_output_started = True
            self._emit(
                "response.output_audio.delta",
                **ids,
                delta=base64.b64encode(piece_bytes).decode("ascii"),
            )
        yield

    def _end_message(self, run: ResponseRun, status: str) -> None:
        """Close the open assistant message (also on cancel, with status incomplete)."""
        item = run.message
        if item is None:
            return
        run.message = None
        ids: Json = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": run.message_index,
            "content_index": 0,
        }
        text = "".join(run.pieces_sent)
        if run.modality == "audio":
            order = self.config.audio_done_order
            transcript_first = order == "transcript_first" or (
                order == "random" and self._rng.random() < 0.5
            )
            if transcript_first:  # §9: the relative order is not guaranteed
                self._emit("response.output_audio_transcript.done", **ids, transcript=text)
            self._emit("response.output_audio.done", **ids)
            if not transcript_first:
                self._emit("response.output_audio_transcript.done", **ids, transcript=text)
            self._emit(
                "response.content_part.done", **ids, part={"type": "audio", "transcript": text}
            )
            content = {"type": "output_audio" if self._ga else "audio", "transcript": text}
            if run.in_conversation:
                self._audio[item["id"]] = AudioBlob(bytes(run.audio_sent), run.encoding)
        else:
            self._emit("response.output_text.done", **ids, text=text)
            self._emit("response.content_part.done", **ids, part={"type": "text", "text": text})
            content = {"type": "output_text" if self._ga else "text", "text": text}
        item["status"] = status
        item["content"] = [content]
        self._done_output_item(run, item, run.message_index)

    def _function_call(self, run: ResponseRun, call: FakeToolCall) -> None:
        """One function call item, start to finish (§15.4)."""
        item: Json = {
            "id": self._new_id("item"),
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": self._new_id("call"),
            "arguments": "",
        }
        self._add_output_item(run, item)
        ids: Json = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": len(run.output) - 1,
            "call_id": item["call_id"],
        }
        for fragment in split_arguments(call.arguments):
            self._emit("response.function_call_arguments.delta", **ids, delta=fragment)
        self._emit(
            "response.function_call_arguments.done", **ids, name=call.name, arguments=call.arguments
        )
        item["status"] = "completed"
        item["arguments"] = call.arguments
        run.output_text_tokens += word_tokens(call.name) + max(1, len(call.arguments) // 4)
        self._done_output_item(run, item, len(run.output) - 1)

    def _complete(self, run: ResponseRun, status: str, details: Json | None) -> None:
        """``response.done`` then ``rate_limits.updated`` (§9, §14 item 6)."""
        run.done = True
        if run in self._runs:
            self._runs.remove(run)
        response = self._response_object(run, status, details)
        self._emit("response.done", response=response)
        usage = response["usage"]
        self._tokens_used += usage["total_tokens"]
        refill_seconds = self._tokens_used * 60 / RATE_LIMIT_TOKENS  # the limit is per minute
        if run.in_conversation:
            self._last_input_tokens = usage["input_tokens"]
        self._emit(
            "rate_limits.updated",
            rate_limits=[
                {
                    "name": "tokens",
                    "limit": RATE_LIMIT_TOKENS,
                    "remaining": max(0, RATE_LIMIT_TOKENS - self._tokens_used),
                    "reset_seconds": max(0.001, round(refill_seconds, 3)),
                }
            ],
        )

    def _cancel(self, run: ResponseRun, reason: str) -> None:
        """Stop a response: close the open item as incomplete, ``cancelled`` done (§15.5)."""
        if run.steps is not None:
            run.steps.close()
        self._end_message(run, "incomplete")
        self._complete(run, "cancelled", {"type": "cancelled", "reason": reason})
