"""The built-in voices of the OpenAI Realtime service (openai-realtime.md §4), in its
documented order; marin and cedar are recommended. The provider offers them and the
fake server accepts them (custom voices, ``{"id": "voice_..."}``, are separate)."""

from __future__ import annotations

from typing import Final

__all__ = ["VOICES"]

VOICES: Final[tuple[str, ...]] = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
