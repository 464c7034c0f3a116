"""Former home of the fake LLM/STT/TTS HTTP server, kept as a re-export.

The fake now lives in :mod:`voxengine.testing.fakes.llm`; import it from
:mod:`voxengine.testing`.
"""

from __future__ import annotations

from voxengine.testing.fakes.llm import (
    FakeLLMConfig,
    FakeLLMReply,
    FakeLLMResponder,
    FakeLLMServer,
    FakeLLMToolCall,
    FakeLLMTurn,
    RecordedRequest,
    echo_llm_responder,
    run_fake_llm_server,
)

__all__ = [
    "FakeLLMConfig",
    "FakeLLMReply",
    "FakeLLMResponder",
    "FakeLLMServer",
    "FakeLLMToolCall",
    "FakeLLMTurn",
    "RecordedRequest",
    "echo_llm_responder",
    "run_fake_llm_server",
]
