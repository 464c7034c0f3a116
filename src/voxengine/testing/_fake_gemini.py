"""Former home of the fake Gemini Live server, kept as a re-export: it now lives in
:mod:`voxengine.testing.fakes.gemini`; import it from :mod:`voxengine.testing`."""

from __future__ import annotations

from voxengine.testing.fakes.gemini import *  # noqa: F403
from voxengine.testing.fakes.gemini import __all__ as __all__
