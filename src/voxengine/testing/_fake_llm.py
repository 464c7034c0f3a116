"""Former home of the fake LLM/STT/TTS HTTP server, kept as a re-export: it now lives in
:mod:`voxengine.testing.fakes.llm`; import it from :mod:`voxengine.testing`."""

from __future__ import annotations

from voxengine.testing.fakes.llm import *  # noqa: F403
from voxengine.testing.fakes.llm import __all__ as __all__
