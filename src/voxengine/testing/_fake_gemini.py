"""A protocol-faithful fake of the Gemini Live server, as a sans-I/O state machine.

One :class:`FakeGeminiServer` models the server side of ONE ``BidiGenerateContent``
WebSocket connection of the Developer API, built from the fake-server checklist of the
shared notes (``gemini-live.md`` §11) and the transcripts of §12. It does no I/O: a
driver calls :meth:`~FakeGeminiServer.receive_connect` with the upgrade request, feeds
every frame to :meth:`~FakeGeminiServer.receive_message`, sends what
:meth:`~FakeGeminiServer.data_to_send` returns (binary frames by default, like the real
server, §1) and closes once :meth:`~FakeGeminiServer.close_to_send` returns a code.
``voxengine.testing.run_fake_gemini_server`` is such a driver.

What it checks (§11): the endpoint path and API key (bad key → close 1007 when the
first message arrives; the upgrade itself succeeds), ``setup``
first and exactly once (else 1007), the model (unknown → 1008), every setup field
name (unknown → 1007, like the proto parser), one top-level key per message and one
field per ``realtimeInput``; camelCase and snake_case are both accepted at every level.
What it does: text turns (``clientContent``/``realtimeInput.text``), audio turns with
an energy VAD on 16 kHz PCM16 (§5) or ``activityStart``/``activityEnd`` when activity
detection is disabled, barge-in (``interrupted`` → ``toolCallCancellation`` →
``turnComplete``, §12.5), function calls that block until the ``toolResponse``
(§6), input/output transcription, ``usageMetadata``, resumption handles that a later
connection can resume (§7), and ``goAway`` on request.

What the assistant says comes from the same :data:`~voxengine.testing.Responder` as
the fake OpenAI server, so one responder scripts both fakes.

Contract: public methods never raise on anything a *client* sends (bad input closes
the connection with the real close code and reason, §9); they raise ``RuntimeError``
only on driver misuse. A responder exception closes with 1011 and is kept in
:attr:`FakeGeminiServer.responder_errors`.
"""

from __future__ import annotations

import base64
import binascii
import copy
import itertools
import json
import math
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np

from voxengine import _json
from voxengine.audio.resample import StreamResampler

from ._fake_openai import FakeReply, FakeToolCall, FakeTurn, Responder, default_responder
from ._speechlike import decode_to_float, synthesize_words

__all__ = ["FakeGeminiConfig", "FakeGeminiServer", "FakeGeminiSessions"]

Json = dict[str, Any]

_OUTPUT_RATE: Final = 24_000  # §1
_INPUT_RATE: Final = 16_000
#: Input rates the fake accepts in ``audio/pcm;rate=N`` (resampled to 16 kHz, §1).
_MIN_INPUT_RATE: Final = 8_000
_MAX_INPUT_RATE: Final = 192_000
_BASE64_ALPHABET: Final = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_URL_SAFE: Final = str.maketrans("-_", "+/")
_AUDIO_TOKENS_PER_SECOND: Final = 32  # Gemini bills audio at 32 tokens per second
_PATH = re.compile(
    r"^/ws/google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\.GenerativeService\."
    r"BidiGenerateContent$"
)

#: §8 model ids; the native-audio ones (and 3.x Live) answer only with AUDIO.
DEFAULT_MODELS: Final = frozenset(
    {
        "gemini-2.5-flash-native-audio-preview-09-2025",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-latest",
        "gemini-3.1-flash-live-preview",
        "gemini-3.8-live",
        "gemini-live-2.5-flash-preview",
        "gemini-2.0-flash-live-001",
    }
)

# Field names per message part (§3); snake_case spellings are derived.
_SETUP_FIELDS: Final = frozenset(
    {
        "model",
        "generationConfig",
        "systemInstruction",
        "tools",
        "realtimeInputConfig",
        "inputAudioTranscription",
        "outputAudioTranscription",
        "sessionResumption",
        "contextWindowCompression",
        "proactivity",
        "historyConfig",
        "safetySettings",
    }
)
_GENERATION_FIELDS: Final = frozenset(
    {
        "responseModalities",
        "speechConfig",
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "seed",
        "candidateCount",
        "presencePenalty",
        "frequencyPenalty",
        "mediaResolution",
        "thinkingConfig",
        "enableAffectiveDialog",
        "translationConfig",
    }
)
_NESTED_FIELDS: Final[dict[str, frozenset[str]]] = {
    "realtimeInputConfig": frozenset(
        {"automaticActivityDetection", "activityHandling", "turnCoverage"}
    ),
    "automaticActivityDetection": frozenset(
        {
            "disabled",
            "startOfSpeechSensitivity",
            "endOfSpeechSensitivity",
            "prefixPaddingMs",
            "silenceDurationMs",
        }
    ),
    "sessionResumption": frozenset({"handle"}),
    "contextWindowCompression": frozenset({"triggerTokens", "slidingWindow"}),
    "inputAudioTranscription": frozenset({"languageCodes"}),
    "outputAudioTranscription": frozenset(),
    "clientContent": frozenset({"turns", "turnComplete"}),
    "realtimeInput": frozenset(
        {"audio", "video", "text", "activityStart", "activityEnd", "audioStreamEnd", "mediaChunks"}
    ),
    "toolResponse": frozenset({"functionResponses"}),
}
_ENUMS: Final[dict[str, frozenset[str]]] = {
    "startOfSpeechSensitivity": frozenset(
        {"START_SENSITIVITY_UNSPECIFIED", "START_SENSITIVITY_HIGH", "START_SENSITIVITY_LOW"}
    ),
    "endOfSpeechSensitivity": frozenset(
        {"END_SENSITIVITY_UNSPECIFIED", "END_SENSITIVITY_HIGH", "END_SENSITIVITY_LOW"}
    ),
    "activityHandling": frozenset(
        {"ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"}
    ),
}
_TOOL_KINDS: Final = frozenset(
    {"functionDeclarations", "googleSearch", "codeExecution", "urlContext", "googleMaps"}
)
#: Keys whose values are user data: their own keys are never renamed.
_AUDIO_ONLY: Final = frozenset({"gemini-3.1-flash-live-preview", "gemini-3.8-live"})
_OPAQUE: Final = frozenset({"args", "response", "parametersJsonSchema", "default", "example"})

_INVALID_ARGUMENT: Final = "Request contains an invalid argument."
_BAD_KEY: Final = "API key not valid. Please pass a valid API key."


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _normalize(value: Any, key: str = "") -> Any:
    """Rename snake_case keys to camelCase at every level, except inside user data."""
    if isinstance(value, list):
        return [_normalize(item, key) for item in value]
    if not isinstance(value, dict) or key in _OPAQUE:
        return value
    if key == "properties":  # schema property names are user data; their schemas are not
        return {name: _normalize(schema) for name, schema in value.items()}
    return {_camel(k): _normalize(v, _camel(k)) for k, v in value.items()}


def _words(text: str) -> int:
    return len(text.split())


def _decode_base64(data: object) -> bytes:
    """Standard or URL-safe base64, with or without padding (proto3 JSON bytes)."""
    if not isinstance(data, str) or not _BASE64_ALPHABET.match(data):
        raise _Close(1007, _INVALID_ARGUMENT)
    text = data.rstrip("=").translate(_URL_SAFE)
    if len(text) % 4 == 1:
        raise _Close(1007, _INVALID_ARGUMENT)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _Close(1007, _INVALID_ARGUMENT) from None


class _Close(Exception):
    """Internal: stop processing and close with ``code``/``reason`` (§9)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(eq=False)
class FakeGeminiSessions:
    """Resumable sessions shared by the connections of one fake server (§7).

    ``history`` maps each handle the server issued to the conversation (Content
    turns) it resumes.
    """

    history: dict[str, list[Json]] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def issue(self, turns: list[Json]) -> str:
        """Store a copy of ``turns`` under a new opaque handle."""
        number = next(self._counter)
        handle = base64.urlsafe_b64encode(f"fake-gemini-session-{number:06d}".encode()).decode()
        self.history[handle] = copy.deepcopy(turns)
        return handle


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeGeminiConfig:
    """Configuration shared by all connections of a fake Gemini server.

    Attributes:
        api_keys: accepted keys; ``None`` accepts any non-empty key.
        models: accepted model ids (with or without ``models/``).
        responder: produces the assistant reply for each model turn.
        audio_chunk_seconds: audio carried by each ``modelTurn`` message (§11 item 6).
        seconds_per_word: length of synthesized reply audio per word.
        paced: ``True`` (default, like the live service): a turn advances one message
            per :meth:`FakeGeminiServer.step`; the WebSocket driver steps every
            ``pace_seconds`` (0 by default: as fast as the event loop allows, still
            interleaved with the client's messages). ``False``: a whole turn is
            generated inside the call that starts it (legacy burst mode).
        binary_frames: send JSON as binary frames, like the real server (§1, §11 item 4).
        vad_threshold: RMS (full scale = 1.0) above which a 10 ms window is speech;
            ``START_SENSITIVITY_LOW`` doubles it.
        silence_duration: default end-of-speech silence in seconds (setup may override).
        record_sent: keep every frame the server sends in :attr:`FakeGeminiServer.sent`
            (to validate them against a client library's models in tests).
    """

    api_keys: frozenset[str] | None = None
    models: frozenset[str] = DEFAULT_MODELS
    responder: Responder = default_responder
    audio_chunk_seconds: float = 0.1
    seconds_per_word: float = 0.3
    paced: bool = True
    binary_frames: bool = True
    vad_threshold: float = 0.02
    silence_duration: float = 0.5
    record_sent: bool = False

    def __post_init__(self) -> None:
        if self.audio_chunk_seconds <= 0 or self.seconds_per_word <= 0:
            raise ValueError("audio_chunk_seconds and seconds_per_word must be positive")
        if self.vad_threshold <= 0 or self.silence_duration <= 0:
            raise ValueError("vad_threshold and silence_duration must be positive")


_DEFAULT_CONFIG: Final = FakeGeminiConfig()


@dataclass(eq=False)
class _Turn:
    """One model turn in progress (paced by its step generator)."""

    input_text_tokens: int
    input_audio_tokens: int
    steps: Generator[None, None, None] | None = None
    output_tokens: int = 0
    pending_calls: dict[str, str] = field(default_factory=dict)  # id -> name
    answers: list[Json] = field(default_factory=list)
    waiting: bool = False
    done: bool = False


class FakeGeminiServer:
    """Server side of one Gemini Live connection (sans-I/O).

    Attributes:
        config: the shared configuration.
        received: every client message as parsed (original casing), in order.
        setup: the accepted ``setup`` object, camelCased (``{}`` before it arrives).
        history: the conversation as Content turns (``role`` user/model), audio omitted.
        api_version: the version named in the request path.
        resumed_from: the handle this connection resumed, if any.
        responder_errors: exceptions raised by the responder.
        sent: every frame sent, when ``config.record_sent`` is on.
    """

    def __init__(
        self,
        config: FakeGeminiConfig = _DEFAULT_CONFIG,
        sessions: FakeGeminiSessions | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions if sessions is not None else FakeGeminiSessions()
        self.received: list[Json] = []
        self.setup: Json = {}
        self.history: list[Json] = []
        self.api_version = ""
        self.resumed_from: str | None = None
        self.responder_errors: list[BaseException] = []
        #: Every frame sent, in order, when ``config.record_sent`` is on.
        self.sent: list[str | bytes] = []
        self._state: Literal["new", "connected", "open", "closed"] = "new"
        self._outbox: list[str | bytes] = []
        self._close: tuple[int, str] | None = None
        self._turn: _Turn | None = None
        self._calls = itertools.count(1)
        # user audio and VAD (§5)
        self._activity: bytearray | None = None  # manual activity in progress
        self._speech: bytearray | None = None  # VAD speech in progress
        self._pending = np.zeros(0, dtype=np.float64)
        self._silence_ms = 0.0
        self._key_ok = False
        self._resamplers: dict[int, StreamResampler] = {}  # per input rate, streaming

    # --- driver API ----------------------------------------------------------------------

    def receive_connect(self, path: str, headers: Mapping[str, str]) -> None:
        """Process the upgrade request (§2, §11 item 1); ``path`` includes the query.

        Raises:
            RuntimeError: called twice.
        """
        if self._state != "new":
            raise RuntimeError("receive_connect() may be called only once")
        self._state = "connected"
        url = urlsplit(path)
        match = _PATH.match(url.path)
        if match is None:
            self._close = (1008, "Requested entity was not found.")
            return
        self.api_version = match.group(1)
        lowered = {name.lower(): value for name, value in headers.items()}
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        key = lowered.get("x-goog-api-key") or query.get("key")
        # The upgrade succeeds; the refusal comes in-band, when the setup arrives (§9).
        self._key_ok = bool(key) and (self.config.api_keys is None or key in self.config.api_keys)

    def receive_message(self, data: str | bytes) -> None:
        """Process one client frame (text, or binary UTF-8 JSON).

        Raises:
            RuntimeError: called before :meth:`receive_connect`.
        """
        if self._state == "new":
            raise RuntimeError("receive_connect() must be called first")
        if self._state == "closed" or self._close is not None:
            return
        try:
            self._dispatch(data)
        except _Close as close:
            self._close_with(close.code, close.reason)

    def receive_close(self) -> None:
        """The peer closed (or the transport died): stop and drop pending frames."""
        self._state = "closed"
        if self._turn is not None and self._turn.steps is not None:
            self._turn.steps.close()
        self._turn = None
        self._outbox.clear()

    def data_to_send(self) -> list[str | bytes]:
        """Drain the queued frames (binary unless ``config.binary_frames`` is off)."""
        frames, self._outbox = self._outbox, []
        if self.config.record_sent:
            self.sent += frames
        return frames

    def close_to_send(self) -> tuple[int, str] | None:
        """``(code, reason)`` once the server wants to close, else ``None``."""
        return self._close

    @property
    def response_active(self) -> bool:
        """True while a model turn is generating (not waiting for a tool response)."""
        return self._turn is not None and not self._turn.waiting and not self._turn.done

    def step(self) -> None:
        """Paced mode: send the next message of the running turn (no-op when idle)."""
        if self.response_active and self._close is None:
            assert self._turn is not None
            self._advance(self._turn)

    def run_until_idle(self, max_steps: int = 100_000) -> None:
        """Call :meth:`step` until no turn is generating (what the WebSocket driver does
        with ``pace_seconds=0`` when the client sends nothing meanwhile).

        Raises:
            RuntimeError: still busy after ``max_steps`` steps.
        """
        for _ in range(max_steps):
            if not self.response_active or self._close is not None:
                return
            self.step()
        raise RuntimeError(f"still active after {max_steps} steps")

    def go_away(self, time_left: float = 50.0) -> None:
        """Warn that the connection ends in ``time_left`` seconds (§7, §11 item 10)."""
        if self._state == "open" and self._close is None:
            seconds = f"{time_left:g}s"
            self._send({"goAway": {"timeLeft": seconds}})

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection now with ``code``/``reason`` (e.g. after :meth:`go_away`)."""
        if self._state != "closed" and self._close is None:
            self._close_with(code, reason)

    # --- plumbing ----------------------------------------------------------------------------

    def _send(self, msg: Json) -> None:
        text = _json.dumps(msg)
        self._outbox.append(text.encode("utf-8") if self.config.binary_frames else text)

    def _close_with(self, code: int, reason: str) -> None:
        # RFC 6455: a close reason is at most 123 bytes of UTF-8
        reason = reason.encode()[:123].decode("utf-8", "ignore")
        if self._turn is not None and self._turn.steps is not None:
            self._turn.steps.close()
        self._turn = None
        self._close = (code, reason)

    def _dispatch(self, data: str | bytes) -> None:
        try:
            raw = _json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise _Close(1007, "Invalid JSON payload received.") from None
        if not isinstance(raw, dict):
            raise _Close(1007, "Invalid JSON payload received.")
        self.received.append(raw)
        msg = _normalize(raw)
        if len(msg) != 1:  # §1: exactly one top-level key
            raise _Close(1007, _INVALID_ARGUMENT)
        ((kind, body),) = msg.items()
        if not self._key_ok:
            raise _Close(1007, _BAD_KEY)
        if self._state != "open":
            if kind != "setup":  # §11 item 2
                raise _Close(1007, _INVALID_ARGUMENT)
            self._on_setup(body)
            return
        if kind == "setup":
            raise _Close(1007, _INVALID_ARGUMENT)
        if kind not in _NESTED_FIELDS or not isinstance(body, dict):
            raise _Close(
                1007, f'Invalid JSON payload received. Unknown name "{kind}": Cannot find field.'
            )
        self._check_fields(kind, body)
        if kind == "clientContent":
            self._on_client_content(body)
        elif kind == "realtimeInput":
            self._on_realtime_input(body)
        else:
            self._on_tool_response(body)

    @staticmethod
    def _check_fields(where: str, body: Json) -> None:
        allowed = _NESTED_FIELDS.get(where)
        if allowed is None:
            return
        for name, value in body.items():
            if name not in allowed:
                raise _Close(
                    1007,
                    f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                    "Cannot find field.",
                )
            if name in _ENUMS and value not in _ENUMS[name]:
                raise _Close(
                    1007,
                    f"Invalid value at '{where}.{name}', \"{value}\"",
                )
            if isinstance(value, dict):
                FakeGeminiServer._check_fields(name, value)

    # --- setup (§3.1) ------------------------------------------------------------------------

    def _on_setup(self, setup: Any) -> None:
        if not isinstance(setup, dict):
            raise _Close(1007, _INVALID_ARGUMENT)
        for name, value in setup.items():
            if name not in _SETUP_FIELDS:
                raise _Close(
                    1007,
                    f"Invalid JSON payload received. Unknown name \"{name}\" at 'setup': "
                    "Cannot find field.",
                )
            if isinstance(value, dict):
                self._check_fields(name, value)
        generation = setup.get("generationConfig", {})
        for name in generation:
            if name not in _GENERATION_FIELDS:
                raise _Close(
                    1007,
                    f'Invalid JSON payload received. Unknown name "{name}" at '
                    "'setup.generation_config': Cannot find field.",
                )
        for tool in setup.get("tools", []):
            if not isinstance(tool, dict) or not set(tool) <= _TOOL_KINDS:
                raise _Close(1007, _INVALID_ARGUMENT)
            for declaration in tool.get("functionDeclarations", []):
                if not isinstance(declaration, dict) or not declaration.get("name"):
                    raise _Close(1007, _INVALID_ARGUMENT)
        model = setup.get("model")
        if not isinstance(model, str) or not model:
            raise _Close(1007, _INVALID_ARGUMENT)
        model_id = model.removeprefix("models/")
        if model_id not in self.config.models:
            raise _Close(
                1008,
                f"models/{model_id} is not found for API version {self.api_version}, or is "
                "not supported for bidiGenerateContent. Call ListModels to see the list of "
                "available models and their supported methods.",
            )
        modalities = generation.get("responseModalities", ["AUDIO"])
        if not isinstance(modalities, list) or len(modalities) != 1:
            raise _Close(1007, _INVALID_ARGUMENT)
        if modalities[0] not in ("AUDIO", "TEXT"):
            raise _Close(1007, _INVALID_ARGUMENT)
        if model_id in _AUDIO_ONLY or ("native-audio" in model_id and modalities[0] != "AUDIO"):
            raise _Close(1007, "Cannot extract voices from a non-audio request.")
        resumption = setup.get("sessionResumption")
        if isinstance(resumption, dict) and resumption.get("handle"):
            handle = resumption["handle"]
            if handle not in self.sessions.history:
                raise _Close(1007, _INVALID_ARGUMENT)
            self.history = copy.deepcopy(self.sessions.history[handle])
            self.resumed_from = handle
        self.setup = setup
        self._state = "open"
        self._send({"setupComplete": {}})

    @property
    def _audio_out(self) -> bool:
        modalities = self.setup.get("generationConfig", {}).get("responseModalities", ["AUDIO"])
        return bool(modalities == ["AUDIO"])

    @property
    def _detection(self) -> Json:
        config: Json = self.setup.get("realtimeInputConfig", {})
        detection: Json = config.get("automaticActivityDetection", {})
        return detection

    @property
    def _manual(self) -> bool:
        return self._detection.get("disabled") is True

    @property
    def _barge_in(self) -> bool:
        config = self.setup.get("realtimeInputConfig", {})
        return bool(config.get("activityHandling") != "NO_INTERRUPTION")

    # --- client content (§3.2) ---------------------------------------------------------------

    def _on_client_content(self, body: Json) -> None:
        turns = body.get("turns", [])
        if not isinstance(turns, list):
            raise _Close(1007, _INVALID_ARGUMENT)
        if self._turn is not None:  # §3.2: any clientContent interrupts the generation
            self._interrupt()
        for turn in turns:
            if not isinstance(turn, dict) or turn.get("role", "user") not in ("user", "model"):
                raise _Close(1007, _INVALID_ARGUMENT)
            self.history.append(self._stored(turn))
        if body.get("turnComplete") is True:
            self._respond(self._turn_for_history())

    def _stored(self, content: Json) -> Json:
        """A Content turn for :attr:`history`, with inline audio replaced by its length."""
        parts: list[Json] = []
        for part in content.get("parts", []):
            if not isinstance(part, dict):
                raise _Close(1007, _INVALID_ARGUMENT)
            inline = part.get("inlineData")
            if isinstance(inline, dict):
                audio = self._decode_audio(inline)
                parts.append({"audioSeconds": len(audio) / 2 / _INPUT_RATE})
            else:
                parts.append(copy.deepcopy(part))
        return {"role": content.get("role", "user"), "parts": parts}

    def _turn_for_history(self) -> FakeTurn:
        history = tuple(copy.deepcopy(self.history))
        for content in reversed(self.history):
            if content["role"] != "user":
                break
            texts = [p["text"] for p in content["parts"] if isinstance(p.get("text"), str)]
            if texts:
                return FakeTurn(
                    kind="text", text=" ".join(texts), audio_seconds=0.0, history=history
                )
            seconds = sum(p.get("audioSeconds", 0.0) for p in content["parts"])
            if seconds:
                return FakeTurn(kind="audio", text="", audio_seconds=seconds, history=history)
        return FakeTurn(kind="text", text="", audio_seconds=0.0, history=history)

    # --- realtime input (§3.3, §5) -----------------------------------------------------------

    def _decode_audio(self, blob: Json) -> bytes:
        """PCM16 of an ``audio/pcm[;rate=N]`` blob, resampled to 16 kHz (§1, §3.3).

        Like the proto JSON parser, ``data`` may use the standard or the URL-safe
        base64 alphabet (the ``google-genai`` SDK sends URL-safe), padded or not.
        """
        mime = blob.get("mimeType", "")
        if not isinstance(mime, str) or not mime.startswith("audio/pcm"):
            raise _Close(1007, _INVALID_ARGUMENT)
        found = re.search(r"rate=(\d+)", mime)
        rate = int(found.group(1)) if found is not None else _INPUT_RATE
        if not _MIN_INPUT_RATE <= rate <= _MAX_INPUT_RATE:
            raise _Close(1007, _INVALID_ARGUMENT)
        audio = _decode_base64(blob.get("data", ""))
        if len(audio) % 2:
            raise _Close(1007, _INVALID_ARGUMENT)
        if rate == _INPUT_RATE:
            return audio
        resampler = self._resamplers.get(rate)
        if resampler is None:
            resampler = self._resamplers[rate] = StreamResampler(rate, _INPUT_RATE)
        return resampler.process(audio)

    def _on_realtime_input(self, body: Json) -> None:
        if len(body) != 1:  # §3.3: one field per message
            raise _Close(1007, _INVALID_ARGUMENT)
        ((kind, value),) = body.items()
        if kind in ("activityStart", "activityEnd") and not self._manual:
            raise _Close(
                1007,
                "Explicit activity control is not supported when automatic "
                "activity detection is enabled.",
            )
        if kind == "audioStreamEnd" and self._manual:
            raise _Close(1007, _INVALID_ARGUMENT)
        if kind == "audio":
            self._on_audio(self._decode_audio(value if isinstance(value, dict) else {}))
        elif kind == "mediaChunks":
            for chunk in value if isinstance(value, list) else []:
                blob = chunk if isinstance(chunk, dict) else {}
                if str(blob.get("mimeType", "")).startswith("audio/"):
                    self._on_audio(self._decode_audio(blob))
        elif kind == "activityStart":
            if self._activity is None:  # §3.3: nested starts are ignored
                if self._turn is not None and self._barge_in:
                    self._interrupt()
                self._activity = bytearray()
        elif kind == "activityEnd":
            self._end_activity()
        elif kind == "audioStreamEnd":
            if self._speech is not None:
                self._user_audio_turn(bytes(self._speech))
        elif kind == "text":
            if not isinstance(value, str):
                raise _Close(1007, _INVALID_ARGUMENT)
            if self._turn is not None and self._barge_in:
                self._interrupt()
            self.history.append({"role": "user", "parts": [{"text": value}]})
            self._respond(self._turn_for_history())
        # video frames are accepted and ignored

    def _end_activity(self) -> None:
        if self._activity is None:
            return
        audio, self._activity = bytes(self._activity), None
        if not audio:  # §3.3 pitfall: an empty activity is a failed precondition
            self._send({"serverContent": {"turnComplete": True}})
            raise _Close(1007, "Precondition check failed.")
        self._user_audio_turn(audio)

    def _on_audio(self, audio: bytes) -> None:
        if self._manual:
            if self._activity is not None:  # §3.3: audio outside an activity is ignored
                self._activity += audio
            return
        samples = np.concatenate([self._pending, decode_to_float(audio, "pcm16")])
        window = _INPUT_RATE // 100
        threshold = self.config.vad_threshold
        if self._detection.get("startOfSpeechSensitivity") == "START_SENSITIVITY_LOW":
            threshold *= 2
        silence_ms = float(
            self._detection.get("silenceDurationMs", self.config.silence_duration * 1000)
        )
        count = len(samples) // window
        for index in range(count):
            chunk = samples[index * window : (index + 1) * window]
            loud = math.sqrt(float(np.mean(chunk * chunk))) > threshold
            pcm = (np.round(chunk * 32768.0).clip(-32768, 32767).astype("<i2")).tobytes()
            if self._speech is None:
                if loud:
                    self._speech = bytearray(pcm)
                    self._silence_ms = 0.0
                    if self._turn is not None and self._barge_in:
                        self._interrupt()
                continue
            self._speech += pcm
            self._silence_ms = 0.0 if loud else self._silence_ms + 10.0
            if self._silence_ms >= silence_ms:
                self._user_audio_turn(bytes(self._speech))
        self._pending = samples[count * window :].copy()

    def _user_audio_turn(self, audio: bytes) -> None:
        """The user finished speaking: transcribe (if enabled) and answer (§12.3)."""
        self._speech = None
        self._silence_ms = 0.0
        seconds = len(audio) / 2 / _INPUT_RATE
        self.history.append({"role": "user", "parts": [{"audioSeconds": seconds}]})
        if "inputAudioTranscription" in self.setup:
            self._send(
                {"serverContent": {"inputTranscription": {"text": f"({seconds:.1f} s of audio)"}}}
            )
        if self._turn is None:
            self._respond(self._turn_for_history())

    # --- tool responses (§3.4, §6) -----------------------------------------------------------

    def _on_tool_response(self, body: Json) -> None:
        responses = body.get("functionResponses")
        if not isinstance(responses, list) or not responses:
            raise _Close(1007, _INVALID_ARGUMENT)
        turn = self._turn
        for response in responses:
            if not isinstance(response, dict) or not response.get("id"):
                raise _Close(1007, _INVALID_ARGUMENT)  # §6 item 5: id is required
            call_id = response["id"]
            if turn is None or call_id not in turn.pending_calls:
                raise _Close(1008, f"Function response id {call_id!r} does not match a call.")
            name = turn.pending_calls.pop(call_id)
            output = response.get("response", {})
            self.history.append(
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"id": call_id, "name": name, "response": output}}
                    ],
                }
            )
            turn.answers.append(output)
        assert turn is not None
        if not turn.pending_calls and turn.waiting:
            text = json.dumps(turn.answers[0] if len(turn.answers) == 1 else turn.answers)
            reply_turn = FakeTurn(
                kind="tool_output", text=text, audio_seconds=0.0, history=tuple(self.history)
            )
            turn.answers = []
            turn.waiting = False
            reply = self._reply(reply_turn)
            if reply is None:
                return
            turn.steps = self._turn_steps(turn, reply)
            self._run(turn)

    # --- model turns (§4.1, §12) -------------------------------------------------------------

    def _reply(self, turn: FakeTurn) -> FakeReply | None:
        try:
            return self.config.responder(turn)
        except Exception as exc:  # §9: the service reports failures by closing
            self.responder_errors.append(exc)
            self._close_with(1011, "Internal error occurred.")
            return None

    def _input_tokens(self) -> tuple[int, int]:
        text = _words(json.dumps(self.setup.get("systemInstruction", {})))
        text += _words(json.dumps(self.setup.get("tools", [])))
        audio = 0.0
        for content in self.history:
            for part in content["parts"]:
                if "audioSeconds" in part:
                    audio += part["audioSeconds"]
                else:
                    text += _words(json.dumps(part))
        return text, math.ceil(audio * _AUDIO_TOKENS_PER_SECOND)

    def _respond(self, user_turn: FakeTurn) -> None:
        reply = self._reply(user_turn)
        if reply is None:
            return
        text_tokens, audio_tokens = self._input_tokens()
        turn = _Turn(input_text_tokens=text_tokens, input_audio_tokens=audio_tokens)
        turn.steps = self._turn_steps(turn, reply)
        self._turn = turn
        self._run(turn)

    def _run(self, turn: _Turn) -> None:
        self._advance(turn)
        if not self.config.paced:
            while self._turn is turn and not turn.done and not turn.waiting:
                self._advance(turn)

    def _advance(self, turn: _Turn) -> None:
        if turn.steps is not None:
            next(turn.steps, None)

    def _turn_steps(self, turn: _Turn, reply: FakeReply) -> Generator[None, None, None]:
        """§12.2-§12.4: model content, then a blocking toolCall or the turn's end."""
        words = reply.text.split()
        if words:
            yield from self._content_steps(turn, words)
        if reply.tool_calls:
            yield
            self._tool_call(turn, reply.tool_calls)
            return
        yield
        self._send({"serverContent": {"generationComplete": True}})
        yield
        self._finish(turn)

    def _content_steps(self, turn: _Turn, words: list[str]) -> Generator[None, None, None]:
        model_words: list[str] = []
        if not self._audio_out:
            for index, word in enumerate(words):
                yield
                piece = word if index == 0 else f" {word}"
                model_words.append(word)
                turn.output_tokens += 1
                self._send({"serverContent": {"modelTurn": {"parts": [{"text": piece}]}}})
            self.history.append({"role": "model", "parts": [{"text": " ".join(model_words)}]})
            return
        samples = synthesize_words(
            words, seconds_per_word=self.config.seconds_per_word, sample_rate=_OUTPUT_RATE
        )
        data = bytes(samples.astype("<i2").tobytes())
        slot = round(self.config.seconds_per_word * _OUTPUT_RATE)
        chunk = max(1, round(self.config.audio_chunk_seconds * _OUTPUT_RATE))
        transcribe = "outputAudioTranscription" in self.setup
        spoken = 0
        try:
            for start in range(0, len(samples), chunk):
                yield
                end = start + chunk
                chunk_bytes = data[start * 2 : end * 2]
                turn.output_tokens += math.ceil(len(chunk_bytes) / 2 / _OUTPUT_RATE * 25)
                blob = {
                    "mimeType": "audio/pcm;rate=24000",
                    "data": base64.b64encode(chunk_bytes).decode(),
                }
                self._send({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
                fragment = []
                while spoken < len(words) and spoken * slot < end:
                    fragment.append(words[spoken])
                    spoken += 1
                if fragment and transcribe:
                    text = " ".join(fragment)
                    text = text if spoken == len(fragment) else f" {text}"
                    self._send({"serverContent": {"outputTranscription": {"text": text}}})
        finally:  # also on interruption: the model heard itself say this much
            self.history.append({"role": "model", "parts": [{"text": " ".join(words[:spoken])}]})

    def _tool_call(self, turn: _Turn, calls: tuple[FakeToolCall, ...]) -> None:
        """§6: one ``toolCall`` with every call; the turn blocks for the responses."""
        entries = []
        for call in calls:
            call_id = f"function-call-{next(self._calls)}"
            try:
                args = json.loads(call.arguments or "{}")
            except ValueError:
                args = {}
            turn.pending_calls[call_id] = call.name
            turn.output_tokens += _words(call.name) + max(1, len(call.arguments) // 4)
            entries.append({"id": call_id, "name": call.name, "args": args})
            self.history.append(
                {
                    "role": "model",
                    "parts": [{"functionCall": {"id": call_id, "name": call.name, "args": args}}],
                }
            )
        turn.waiting = True
        self._send({"toolCall": {"functionCalls": entries}})

    def _usage(self, turn: _Turn) -> Json:
        """§4.2 Developer API usage for one turn."""
        prompt = turn.input_text_tokens + turn.input_audio_tokens
        prompt_details = [
            {"modality": modality, "tokenCount": count}
            for modality, count in (
                ("TEXT", turn.input_text_tokens),
                ("AUDIO", turn.input_audio_tokens),
            )
            if count
        ]
        usage: Json = {
            "promptTokenCount": prompt,
            "responseTokenCount": turn.output_tokens,
            "totalTokenCount": prompt + turn.output_tokens,
        }
        if prompt_details:
            usage["promptTokensDetails"] = prompt_details
        if turn.output_tokens:
            modality = "AUDIO" if self._audio_out else "TEXT"
            usage["responseTokensDetails"] = [
                {"modality": modality, "tokenCount": turn.output_tokens}
            ]
        return usage

    def _finish(self, turn: _Turn) -> None:
        """``turnComplete`` + ``usageMetadata``, then a resumption handle (§12.2, §11 item 9)."""
        turn.done = True
        if self._turn is turn:
            self._turn = None
        self._send({"serverContent": {"turnComplete": True}, "usageMetadata": self._usage(turn)})
        if "sessionResumption" in self.setup:
            handle = self.sessions.issue(self.history)
            self._send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    def _interrupt(self) -> None:
        """§5 / §12.5 barge-in: ``interrupted``, cancel pending calls, ``turnComplete``."""
        turn = self._turn
        if turn is None:
            return
        if turn.steps is not None:
            turn.steps.close()
        self._send({"serverContent": {"interrupted": True}})
        if turn.pending_calls:
            self._send({"toolCallCancellation": {"ids": list(turn.pending_calls)}})
            turn.pending_calls.clear()
        self._finish(turn)
