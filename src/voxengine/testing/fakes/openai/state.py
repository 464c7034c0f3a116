"""The state of one fake OpenAI Realtime connection and how it emits server events (§3, §10)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Generator
from typing import Any, Literal

import numpy as np

from voxengine import _json
from voxengine.testing._speechlike import Encoding

from .config import FakeOpenAIConfig
from .schema import GA_VOICES
from .specs import Enum, SchemaError
from .wire import (
    BETA_EVENT_NAMES,
    ENCODINGS,
    AudioBlob,
    Json,
    ResponseRun,
    rate,
)


class _State:
    """The connection's state and the emission helpers every layer of the fake uses.

    The fake is built in layers, each a class over the one below and using only what
    sits below it: this state, then responses (:mod:`.responses`), the input audio
    buffer with its VAD and transcription (:mod:`.audio`), conversation items
    (:mod:`.items`), session updates (:mod:`.session`), and the driver API
    (:class:`~.server.FakeOpenAIServer`).
    """

    def __init__(self, config: FakeOpenAIConfig, *, connection: int) -> None:
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

    # --- session views (§4, §12) ---------------------------------------------------------------

    @property
    def _ga(self) -> bool:
        return self.config.dialect == "ga"

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

    def _find_item(self, item_id: str) -> Json | None:
        return next((item for item in self.items if item.get("id") == item_id), None)

    def _default_run(self) -> ResponseRun | None:
        return next((run for run in self._runs if run.in_conversation), None)
