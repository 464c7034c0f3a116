"""Wire logging for the CLI: re-exported from :mod:`voxengine.record.logs`.

This module keeps the import path users know.
"""

from __future__ import annotations

from voxengine.record.logs import (
    AUDIO_FIELDS,
    TraceFilter,
    configure_cli_logging,
    is_audio_field,
    shorten_audio,
    trace_connector,
    wire_logger,
)

__all__ = [
    "AUDIO_FIELDS",
    "TraceFilter",
    "configure_cli_logging",
    "is_audio_field",
    "shorten_audio",
    "trace_connector",
    "wire_logger",
]
