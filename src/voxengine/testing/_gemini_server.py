"""Former home of the fake Gemini server's WebSocket driver, kept as a re-export: it now lives in
:mod:`voxengine.testing.fakes.gemini.serve`; import it from :mod:`voxengine.testing`."""

from __future__ import annotations

from voxengine.testing.fakes.gemini.serve import *  # noqa: F403
from voxengine.testing.fakes.gemini.serve import __all__ as __all__
