"""Former home of the fake OpenAI Realtime server, kept as a re-export: it now lives in
:mod:`voxengine.testing.fakes.openai`; import it from :mod:`voxengine.testing`."""

from __future__ import annotations

from voxengine.testing.fakes.openai import *  # noqa: F403
from voxengine.testing.fakes.openai import __all__ as __all__
