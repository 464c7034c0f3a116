"""The fake Gemini Live server: a sans-I/O model of one connection and its WebSocket driver.

Layers, each using only those below it: :mod:`.wire` (field tables, pure helpers) and
:mod:`.config`; model turns with the connection's state (:mod:`.turns`); client input
(:mod:`.inputs`); setup and the driver API (:mod:`.server`, :class:`FakeGeminiServer`);
:mod:`.serve` runs it over real WebSockets (plain or TLS). Replies come from the same
responder as the OpenAI fake (:mod:`voxengine.testing.fakes.openai.replies`).
"""

from __future__ import annotations

from .config import FakeGeminiConfig, FakeGeminiSessions
from .serve import FakeGeminiServerHandle, run_fake_gemini_server
from .server import FakeGeminiServer

__all__ = [
    "FakeGeminiConfig",
    "FakeGeminiServer",
    "FakeGeminiServerHandle",
    "FakeGeminiSessions",
    "run_fake_gemini_server",
]
