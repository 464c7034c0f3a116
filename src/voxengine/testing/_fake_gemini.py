"""Former home of the fake Gemini Live server, kept as a re-export.

The fake now lives in :mod:`voxengine.testing.fakes.gemini`, one module per concern;
import it from :mod:`voxengine.testing`.
"""

from __future__ import annotations

from voxengine.testing.fakes.gemini import FakeGeminiConfig, FakeGeminiServer, FakeGeminiSessions

__all__ = ["FakeGeminiConfig", "FakeGeminiServer", "FakeGeminiSessions"]
