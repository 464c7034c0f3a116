"""The application facade: :class:`VoiceEngine` (see :mod:`voxengine.engine.facade`).

The package holds the engine and what it delegates: :mod:`~voxengine.engine.providers`
(which provider it talks to, and a fallback taking over),
:mod:`~voxengine.engine.requests` (one-shot requests: speak a text, transcribe a file),
:mod:`~voxengine.engine.callbacks` (the legacy ``on_*`` attributes) and
:mod:`~voxengine.engine.shutdown` (the bounded parts of ``disconnect()``).
"""

from voxengine.engine.facade import DISCONNECT_TIMEOUT, GRACE, VoiceEngine
from voxengine.engine_config import VoiceEngineConfig

__all__ = ["DISCONNECT_TIMEOUT", "GRACE", "VoiceEngine", "VoiceEngineConfig"]
