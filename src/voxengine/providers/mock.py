"""Moved: the mock provider lives in :mod:`voxengine.testing.mock`, beside its fakes.

This module re-exports it for code that imports ``voxengine.providers.mock``; prefer
``from voxengine.providers import MockConfig, MockProvider``, which imports the fakes
only on first use.
"""

from __future__ import annotations

from voxengine.testing.mock import MockConfig, MockProvider

__all__ = ["MockConfig", "MockProvider"]
