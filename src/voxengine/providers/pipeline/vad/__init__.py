"""Voice activity detection for the pipeline's own turn taking (``SERVER_VAD``).

The energy and WebRTC detectors live in :mod:`voxengine.audio.vad`; this package adds
:class:`SileroVAD` (a neural detector, from the ``local`` extra) and
:func:`make_pipeline_vad`, which builds any of the three by name.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from voxengine.audio.vad import VAD, VADConfig, make_vad
from voxengine.errors import ConfigError

from .silero import SileroVAD

__all__ = ["VAD_ENGINES", "SileroVAD", "VADEngine", "make_pipeline_vad"]

VADEngine: TypeAlias = Literal["energy", "webrtc", "silero"]
"""Names of the detectors :func:`make_pipeline_vad` builds."""

VAD_ENGINES: tuple[VADEngine, ...] = ("energy", "webrtc", "silero")


def make_pipeline_vad(kind: VADEngine, config: VADConfig, sample_rate: int) -> VAD:
    """Build detector ``kind`` (``"energy"``, ``"webrtc"`` or ``"silero"``).

    Raises:
        ConfigError: unknown ``kind``, invalid settings, or a missing optional package.
    """
    if kind == "silero":
        return SileroVAD(config, sample_rate)
    if kind in ("energy", "webrtc"):
        return make_vad(kind, config, sample_rate)
    raise ConfigError(f"unknown VAD engine {kind!r}; known: {', '.join(VAD_ENGINES)}")
