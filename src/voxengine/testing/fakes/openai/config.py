"""Configuration shared by every connection of one fake OpenAI Realtime server."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from .replies import Responder, default_responder
from .schema import GA_VOICES

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
