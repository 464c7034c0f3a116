"""Replaying a recording: re-exported from :mod:`voxengine.record.replay`.

This module keeps the import path users know.
"""

from __future__ import annotations

from voxengine.record.replay import *  # noqa: F403
from voxengine.record.replay import __all__ as __all__
