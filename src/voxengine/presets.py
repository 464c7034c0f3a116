"""Named starting points for common applications.

A preset is a set of :class:`~voxengine.engine.VoiceEngineConfig` field values; use
``VoiceEngineConfig.from_preset("customer_service", api_key=..., voice="cedar")`` —
keyword arguments override the preset's values.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from voxengine.errors import ConfigError

__all__ = ["PRESETS", "preset_values"]

_VOICE_ASSISTANT: dict[str, Any] = {
    "mode": "big",
    "output_modality": "audio",
    "vad_enabled": True,
    "vad_type": "semantic",
    "instructions": (
        "You are a helpful voice assistant. Answer in one or two short spoken sentences; "
        "never use lists, markdown or emoji. If you did not understand, ask briefly."
    ),
}

_CUSTOMER_SERVICE: dict[str, Any] = {
    "mode": "big",
    "output_modality": "audio",
    "vad_enabled": True,
    "vad_type": "server",
    "vad_speech_end_ms": 700,
    "input_transcription_model": "gpt-4o-mini-transcribe",
    "instructions": (
        "You are a calm, polite customer service agent on a phone line. Confirm what the "
        "caller needs, keep answers short, spell out numbers clearly, and never invent "
        "account details: use the tools you are given or say you will check."
    ),
}

_TRANSCRIPTION: dict[str, Any] = {
    "mode": "provider",
    "output_modality": "text",
    "vad_enabled": True,
    "vad_type": "server",
    "auto_respond": False,
    "input_transcription_model": "gpt-4o-transcribe",
    "instructions": "Do not respond; the session only transcribes the user's speech.",
}

_TUTOR: dict[str, Any] = {
    "mode": "big",
    "output_modality": "audio",
    "vad_enabled": True,
    "vad_type": "semantic",
    "vad_eagerness": "low",
    "instructions": (
        "You are a patient tutor. Ask one question at a time, wait for the answer, give "
        "short encouraging feedback, and explain mistakes simply."
    ),
}

#: Built-in presets by name; read-only.
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "voice_assistant": MappingProxyType(_VOICE_ASSISTANT),
        "customer_service": MappingProxyType(_CUSTOMER_SERVICE),
        "transcription": MappingProxyType(_TRANSCRIPTION),
        "tutor": MappingProxyType(_TUTOR),
    }
)


def preset_values(name: str) -> dict[str, Any]:
    """A copy of preset ``name``'s field values.

    Raises:
        ConfigError: for an unknown preset; the message lists the known ones.
    """
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None
