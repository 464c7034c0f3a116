"""Replaying a recording: re-exported from :mod:`voxengine.record.replay`.

This module keeps the import path users know.
"""

from __future__ import annotations

from voxengine.record.replay import (
    DEFAULT_MATCH,
    DIVERGENCE_CLOSE_CODE,
    FrameMatch,
    ReplayConnection,
    ReplayConnector,
    ReplayDivergence,
)

__all__ = [
    "DEFAULT_MATCH",
    "DIVERGENCE_CLOSE_CODE",
    "FrameMatch",
    "ReplayConnection",
    "ReplayConnector",
    "ReplayDivergence",
]
