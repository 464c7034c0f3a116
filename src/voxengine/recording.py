"""Recording a session's wire frames to a file: re-exported from :mod:`voxengine.record.recording`.

This module keeps the import path users know.
"""

from __future__ import annotations

from voxengine.record.recording import *  # noqa: F403
from voxengine.record.recording import __all__ as __all__
