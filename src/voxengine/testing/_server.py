"""Former home of the fake OpenAI server's WebSocket driver, kept as a re-export.

It now lives in :mod:`voxengine.testing.fakes.openai.serve`; import it from
:mod:`voxengine.testing`.
"""

from __future__ import annotations

from voxengine.testing.fakes.openai.serve import (
    FakeOpenAIServerHandle,
    run_fake_openai_server,
    serve_fake_connection,
)

__all__ = ["FakeOpenAIServerHandle", "run_fake_openai_server", "serve_fake_connection"]
