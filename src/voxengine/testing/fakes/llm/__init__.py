"""The fake HTTP APIs of the cascaded pipeline: Anthropic Messages, OpenAI Chat
Completions, OpenAI transcription and speech.

:mod:`.types` holds what users script (responder, replies, config) and read back
(recorded requests); :mod:`.requests` validates request bodies like the services do;
:mod:`.server` answers the four endpoints (streaming included) over the small
HTTP/1.1 server of :mod:`voxengine.testing._http_server`.
"""

from __future__ import annotations

from .server import FakeLLMServer, run_fake_llm_server
from .types import (
    FakeLLMConfig,
    FakeLLMReply,
    FakeLLMResponder,
    FakeLLMToolCall,
    FakeLLMTurn,
    RecordedRequest,
    echo_llm_responder,
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
