"""The fake OpenAI Realtime server: a sans-I/O model of one connection and its drivers.

Layers, each using only those below it: :mod:`.schema` (client-event validation, over
the spec types of :mod:`.specs`) and :mod:`.wire` (wire shapes, pure helpers);
:mod:`.replies` and :mod:`.config` (what users script); the connection's state
(:mod:`.state`), responses (:mod:`.responses`), input audio (:mod:`.audio`),
conversation items (:mod:`.items`), session updates (:mod:`.session`) and the driver
API (:mod:`.server`, :class:`FakeOpenAIServer`); :mod:`.serve` runs it over real
WebSockets. None of it imports the client stack above ``voxengine.protocols``.
"""

from __future__ import annotations

from .config import AUDIO_DONE_ORDERS, TRANSCRIPTION_TIMINGS, FakeOpenAIConfig
from .replies import FakeReply, FakeToolCall, FakeTurn, Responder, default_responder
from .serve import FakeOpenAIServerHandle, run_fake_openai_server, serve_fake_connection
from .server import FakeOpenAIServer

__all__ = [
    "AUDIO_DONE_ORDERS",
    "TRANSCRIPTION_TIMINGS",
    "FakeOpenAIConfig",
    "FakeOpenAIServer",
    "FakeOpenAIServerHandle",
    "FakeReply",
    "FakeToolCall",
    "FakeTurn",
    "Responder",
    "default_responder",
    "run_fake_openai_server",
    "serve_fake_connection",
]
