"""Context injection values: re-exported from :mod:`voxengine.conversation.context`.

This module keeps the import path users know.
"""

from __future__ import annotations

from voxengine.conversation.context import (
    ContextEntry,
    ContextMethod,
    ContextScheduler,
    ContextTiming,
)

__all__ = ["ContextEntry", "ContextMethod", "ContextScheduler", "ContextTiming"]
