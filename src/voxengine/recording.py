"""Recording a session's wire frames to a file: re-exported from :mod:`voxengine.record.recording`.

This module keeps the import path users know.
"""

from __future__ import annotations

from voxengine.record.recording import (
    FORMAT_NAME,
    FORMAT_VERSION,
    RecordedAudio,
    RecordedClose,
    RecordedConnect,
    RecordedConnection,
    RecordedFrame,
    Recorder,
    Recording,
    RecordingError,
    load_recording,
    redact_audio_fields,
    restore_audio_fields,
    wrap_provider_connector,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "RecordedAudio",
    "RecordedClose",
    "RecordedConnect",
    "RecordedConnection",
    "RecordedFrame",
    "Recorder",
    "Recording",
    "RecordingError",
    "load_recording",
    "redact_audio_fields",
    "restore_audio_fields",
    "wrap_provider_connector",
]
