"""Wire logging for the CLI: re-exported from :mod:`voxengine.record.logs`.

This module keeps the import path users know.
"""

from __future__ import annotations

from voxengine.record.logs import *  # noqa: F403
from voxengine.record.logs import __all__ as __all__
