"""Former home of the fake Gemini server's WebSocket driver, kept as a re-export.

It now lives in :mod:`voxengine.testing.fakes.gemini.serve`; import it from
:mod:`voxengine.testing`.
"""

from __future__ import annotations

from voxengine.testing.fakes.gemini.serve import FakeGeminiServerHandle, run_fake_gemini_server

__all__ = ["FakeGeminiServerHandle", "run_fake_gemini_server"]
