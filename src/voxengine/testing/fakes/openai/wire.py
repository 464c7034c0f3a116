"""Wire shapes and pure helpers of the fake OpenAI Realtime server (no I/O, no state).

Default session objects (§4, §12), response objects (§8.2), usage (§8.3), the
dialect's event names (§12) and the small audio/text arithmetic shared by
:mod:`voxengine.testing.fakes.openai`. Every function is pure.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from voxengine.testing._speechlike import Encoding

__all__ = [
    "BETA_EVENT_NAMES",
    "EAGERNESS_SILENCE_MS",
    "ENCODINGS",
    "MIN_COMMIT_MS",
    "PCM_FORMAT",
    "RATE_LIMIT_TOKENS",
    "AudioBlob",
    "Json",
    "ResponseRun",
    "bytes_per_ms",
    "default_session",
    "rate",
    "response_object",
    "sample_width",
    "split_arguments",
    "split_pieces",
    "turn_detection_with_defaults",
    "usage",
    "word_tokens",
]

Json = dict[str, Any]
"""A JSON object as parsed by :func:`json.loads`."""

# --- wire constants (§4, §12) ----------------------------------------------------------------

DEFAULT_INSTRUCTIONS: Final = (
    "Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. "
    "Act like a human, but remember that you aren't a human. Keep answers short."
)
PCM_FORMAT: Final[Json] = {"type": "audio/pcm", "rate": 24_000}
SERVER_VAD_DEFAULTS: Final[Json] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
SEMANTIC_VAD_DEFAULTS: Final[Json] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}
# semantic_vad has no silence knob; the fake maps eagerness to an end-of-turn silence (§4.1)
EAGERNESS_SILENCE_MS: Final = {"low": 1500, "medium": 800, "auto": 800, "high": 300}
ENCODINGS: Final[dict[str, Encoding]] = {
    "audio/pcm": "pcm16",
    "audio/pcmu": "ulaw",
    "audio/pcma": "alaw",
    "pcm16": "pcm16",
    "g711_ulaw": "ulaw",
    "g711_alaw": "alaw",
}
BETA_EVENT_NAMES: Final = {  # §12 / §15.6 renames
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.delta": "response.audio_transcript.delta",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "response.output_text.delta": "response.text.delta",
    "response.output_text.done": "response.text.done",
}
MIN_COMMIT_MS: Final = 100.0  # §1
RATE_LIMIT_TOKENS: Final = 15_000_000
PIECE_RE: Final = re.compile(r"\s*\S+")


def rate(encoding: Encoding) -> int:
    return 24_000 if encoding == "pcm16" else 8_000


def sample_width(encoding: Encoding) -> int:
    return 2 if encoding == "pcm16" else 1


def bytes_per_ms(encoding: Encoding) -> float:
    return rate(encoding) * sample_width(encoding) / 1000.0


@dataclass(slots=True)
class AudioBlob:
    """Audio bytes of one item, in the encoding they were produced/received in."""

    data: bytes
    encoding: Encoding

    @property
    def ms(self) -> float:
        return len(self.data) / bytes_per_ms(self.encoding)


def split_pieces(text: str) -> list[str]:
    """Split text into word deltas that concatenate back to ``text`` (leading spaces kept)."""
    pieces = PIECE_RE.findall(text)
    if pieces:
        pieces[-1] += text[len("".join(pieces)) :]
    return pieces


def split_arguments(arguments: str) -> list[str]:
    """Split JSON text into 2+ fragments (one if it has fewer than 2 characters)."""
    if len(arguments) < 2:
        return [arguments]
    cut = max(1, len(arguments) // 2)
    return [arguments[:cut], arguments[cut:]]


def word_tokens(text: str) -> int:
    """Token estimate used for usage figures: one token per word."""
    return len(text.split())


@dataclass(slots=True, eq=False)
class ResponseRun:
    """Progress of one response (§8); the generator in ``steps`` emits its events."""

    id: str
    in_conversation: bool
    modality: Literal["audio", "text"]
    voice: Any
    output_format: Any
    encoding: Encoding
    max_output_tokens: Any
    metadata: Json | None
    input_text_tokens: int
    input_audio_tokens: int
    cached_tokens: int
    steps: Generator[None, None, None] | None = None
    output: list[Json] = field(default_factory=list)
    message: Json | None = None
    message_index: int = 0
    pieces_sent: list[str] = field(default_factory=list)
    audio_sent: bytearray = field(default_factory=bytearray)
    output_text_tokens: int = 0
    done: bool = False


def default_session(
    dialect: Literal["ga", "beta"], session_id: str, model: str, expires_at: int
) -> Json:
    """The full default session object sent in ``session.created`` (§15.1; beta §12)."""
    if dialect == "ga":
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": model,
            "output_modalities": ["audio"],
            "instructions": DEFAULT_INSTRUCTIONS,
            "tools": [],
            "tool_choice": "auto",
            "max_output_tokens": "inf",
            "tracing": None,
            "truncation": "auto",
            "prompt": None,
            "expires_at": expires_at,
            "audio": {
                "input": {
                    "format": dict(PCM_FORMAT),
                    "transcription": None,
                    "noise_reduction": None,
                    "turn_detection": dict(SERVER_VAD_DEFAULTS),
                },
                "output": {"format": dict(PCM_FORMAT), "voice": "alloy", "speed": 1.0},
            },
            "include": None,
        }
    return {
        "id": session_id,
        "object": "realtime.session",
        "model": model,
        "expires_at": expires_at,
        "modalities": ["text", "audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "voice": "alloy",
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": None,
        "input_audio_noise_reduction": None,
        "turn_detection": turn_detection_with_defaults({"type": "server_vad"}, ga=False),
        "tools": [],
        "tool_choice": "auto",
        "temperature": 0.8,
        "max_response_output_tokens": "inf",
        "speed": 1.0,
        "tracing": None,
    }


def turn_detection_with_defaults(detection: Json | None, *, ga: bool) -> Json | None:
    """A client turn-detection object completed with the server defaults (§4.1)."""
    if detection is None:
        return None
    base = SERVER_VAD_DEFAULTS if detection["type"] == "server_vad" else SEMANTIC_VAD_DEFAULTS
    merged = {**base, **detection}
    if not ga and "idle_timeout_ms" not in detection:
        merged.pop("idle_timeout_ms", None)  # not in the beta session model
    return merged


def response_object(
    run: ResponseRun,
    status: str,
    details: Json | None,
    *,
    dialect: Literal["ga", "beta"],
    conversation_id: str,
    temperature: float,
) -> Json:
    """The §8.2 response object (beta: §12 field names); ``usage`` once finished."""
    base: Json = {
        "object": "realtime.response",
        "id": run.id,
        "status": status,
        "status_details": details,
        "output": copy.deepcopy(run.output) if status != "in_progress" else [],
        "conversation_id": conversation_id if run.in_conversation else None,
    }
    if dialect == "ga":
        base["output_modalities"] = [run.modality]
        base["max_output_tokens"] = run.max_output_tokens
        base["audio"] = {"output": {"format": run.output_format, "voice": run.voice}}
    else:
        base["modalities"] = ["text", "audio"] if run.modality == "audio" else ["text"]
        base["output_audio_format"] = run.output_format
        base["voice"] = run.voice
        base["temperature"] = temperature
        base["max_output_tokens"] = run.max_output_tokens
    base["usage"] = None if status == "in_progress" else usage(run)
    base["metadata"] = run.metadata
    return base


def usage(run: ResponseRun) -> Json:
    """§8.3 usage: audio in = ms/100, audio out = ms/50, text ~ words; cache in 64s."""
    out_audio = round(len(run.audio_sent) / bytes_per_ms(run.encoding) / 50.0)
    out_text = run.output_text_tokens
    text_in, audio_in, cached = run.input_text_tokens, run.input_audio_tokens, run.cached_tokens
    cached_text = min(text_in, cached)
    return {
        "total_tokens": text_in + audio_in + out_text + out_audio,
        "input_tokens": text_in + audio_in,
        "output_tokens": out_text + out_audio,
        "input_token_details": {
            "text_tokens": text_in,
            "audio_tokens": audio_in,
            "image_tokens": 0,
            "cached_tokens": cached,
            "cached_tokens_details": {
                "text_tokens": cached_text,
                "audio_tokens": cached - cached_text,
                "image_tokens": 0,
            },
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }
