"""Former home of the fake OpenAI Realtime server, kept as a re-export.

The fake now lives in :mod:`voxengine.testing.fakes.openai`, one module per concern;
import it from :mod:`voxengine.testing`.
"""

from __future__ import annotations

from voxengine.testing.fakes.openai import (
    AUDIO_DONE_ORDERS,
    TRANSCRIPTION_TIMINGS,
    FakeOpenAIConfig,
    FakeOpenAIServer,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    Responder,
    default_responder,
)

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
