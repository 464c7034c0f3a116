"""Configuration and resumable sessions shared by the connections of one fake Gemini server."""

from __future__ import annotations

import base64
import copy
import itertools
from dataclasses import dataclass, field
from typing import Final

from voxengine.testing.fakes.openai.replies import (
    Responder,
    default_responder,
)

from .wire import DEFAULT_MODELS, Json


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
