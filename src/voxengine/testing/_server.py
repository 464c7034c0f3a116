"""Former home of the fake OpenAI server's WebSocket driver, kept as a re-export: it now lives in
:mod:`voxengine.testing.fakes.openai.serve`; import it from :mod:`voxengine.testing`."""

from __future__ import annotations

from voxengine.testing.fakes.openai.serve import *  # noqa: F403
from voxengine.testing.fakes.openai.serve import __all__ as __all__
