"""Test tools for applications: protocol-faithful fake servers you can run in CI.

``run_fake_openai_server()`` serves :class:`FakeOpenAIServer` — a sans-I/O model of
the OpenAI Realtime GA service built from its wire reference — over real WebSockets
on 127.0.0.1. Point any client at ``handle.url`` (voxengine's ``base_url``, or the
official SDK's ``websocket_base_url``). ``run_fake_gemini_server()`` does the same for
Gemini Live (plain or TLS). Replies come from one responder type shared by both
fakes, and :class:`Fault` entries inject drops, stalls, garbage and refusals.
:mod:`voxengine.testing.conformance` checks any provider against its promises.

Layout: one package per fake service under :mod:`voxengine.testing.fakes` (``openai``,
``gemini``, ``llm``), split by concern; the I/O loop every fake shares
(:mod:`._driver`), wire faults (:mod:`._faults`) and speech-like audio
(:mod:`._speechlike`) beside them; the mock provider (:mod:`.mock`), replay checks
(:mod:`.replay`) and the conformance suite (:mod:`.conformance`) on top.
"""

from __future__ import annotations

from voxengine.testing._driver import FakePeer, serve_fake_peer
from voxengine.testing._faults import FakeServerError, Fault, FaultAction
from voxengine.testing._speechlike import synthesize_words
from voxengine.testing.fakes.gemini import (
    FakeGeminiConfig,
    FakeGeminiServer,
    FakeGeminiServerHandle,
    FakeGeminiSessions,
    run_fake_gemini_server,
)
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
from voxengine.testing.fakes.openai import (
    FakeOpenAIConfig,
    FakeOpenAIServer,
    FakeOpenAIServerHandle,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    Responder,
    default_responder,
    run_fake_openai_server,
    serve_fake_connection,
)

__all__ = [
    "FakeGeminiConfig",
    "FakeGeminiServer",
    "FakeGeminiServerHandle",
    "FakeGeminiSessions",
    "FakeLLMConfig",
    "FakeLLMReply",
    "FakeLLMResponder",
    "FakeLLMServer",
    "FakeLLMToolCall",
    "FakeLLMTurn",
    "FakeOpenAIConfig",
    "FakeOpenAIServer",
    "FakeOpenAIServerHandle",
    "FakePeer",
    "FakeReply",
    "FakeServerError",
    "FakeToolCall",
    "FakeTurn",
    "Fault",
    "FaultAction",
    "RecordedRequest",
    "Responder",
    "default_responder",
    "echo_llm_responder",
    "run_fake_gemini_server",
    "run_fake_llm_server",
    "run_fake_openai_server",
    "serve_fake_connection",
    "serve_fake_peer",
    "synthesize_speech",
]


def synthesize_speech(
    text: str, *, sample_rate: int = 24_000, seconds_per_word: float = 0.3
) -> bytes:
    """Deterministic speech-like PCM16 mono audio for ``text``: one voiced burst per word.

    It is not intelligible speech; it has the energy pattern of speech, so voice
    activity detectors (the fake server's, or voxengine's) treat it as such.
    """
    words = text.split() or ["..."]
    samples = synthesize_words(words, seconds_per_word=seconds_per_word, sample_rate=sample_rate)
    return samples.astype("<i2").tobytes()
