"""The per-call hook: :class:`CallContext` in, an unconnected :class:`VoiceEngine` out.

Every call gets its own :class:`~voxengine.VoiceEngine`. The server asks a
:data:`SessionFactory` for it, passing the call's :class:`CallContext`; the
application's factory adds its tools, instructions and event handlers (or picks
another provider) per call. ``voxengine serve --factory module:function`` names one.

A factory may call :func:`default_session_factory` with its own settings, or build
the engine itself::

    def my_factory(context: CallContext) -> VoiceEngine:
        return default_session_factory(
            context, tools=(lookup_order,), instructions="You take orders."
        )

Contract: the engine is returned *unconnected* and without an ``audio_backend``
(the caller is its microphone and speaker); the call connects it. Raising
:class:`~voxengine.errors.VoxError` refuses the call (``provider_failed``) without
affecting others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from voxengine.engine import VoiceEngine
from voxengine.engine_config import VoiceEngineConfig
from voxengine.errors import ConfigError
from voxengine.providers.base import BaseProvider
from voxengine.serve.config import OFFLINE, ServeConfig

__all__ = ["CallContext", "SessionFactory", "default_session_factory"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """What the server knows about a call when it asks for its engine.

    Attributes:
        call_id: unique id of the call (in every log line of it).
        endpoint: which endpoint carries it (``"browser"``, ``"webrtc"``, ``"twilio"``...).
        caller: who the call is for (token subject, or the client address).
        client: the remote address, ``"host:port"``, when known.
        config: the server's settings.
        params: endpoint-specific metadata the client sent (e.g. the browser hello's
            ``"metadata"`` object, Twilio's ``customParameters``); untrusted input.
    """

    call_id: str
    endpoint: str
    caller: str
    config: ServeConfig
    client: str | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


#: Builds one call's engine; may be sync or async.
SessionFactory = Callable[[CallContext], VoiceEngine | Awaitable[VoiceEngine]]


def engine_config(config: ServeConfig, **changes: Any) -> VoiceEngineConfig:
    """The :class:`VoiceEngineConfig` of a call on ``config`` (no audio devices), with
    ``changes`` (any ``VoiceEngineConfig`` field) applied.

    Raises:
        ConfigError: invalid settings, or ``audio_backend`` (the caller is the device).
    """
    name = config.provider
    settings: dict[str, Any] = {
        "provider": "pipeline" if name == OFFLINE else name,
        "model": config.model,
        "voice": None if name == OFFLINE else config.voice,
        "instructions": config.instructions,
        **dict(config.engine),
        **changes,
    }
    if settings.get("audio_backend") is not None:
        raise ConfigError("a call's engine has no audio_backend: the caller is its device")
    return VoiceEngineConfig(**settings)


def _offline_provider(engine: VoiceEngineConfig) -> BaseProvider:
    from voxengine.providers.pipeline._packaged import local_extra_installed
    from voxengine.providers.pipeline.presets import fallback_offline_pipeline, local_pipeline

    session = engine.session_config()
    if local_extra_installed():
        return local_pipeline(session)
    return fallback_offline_pipeline(session)


def default_session_factory(context: CallContext, **changes: Any) -> VoiceEngine:
    """The engine ``context.config`` describes: its provider with its settings, plus
    ``changes`` (``VoiceEngineConfig`` fields: ``tools``, ``instructions``...).

    ``"offline"`` is the local voice AI when the ``local`` extra is installed, else
    the rule-based fallback pipeline; each call loads its own models (a stage serves
    one conversation at a time). Provider keys come from the server's environment
    (``OPENAI_API_KEY``...), never from the caller.

    Raises:
        ConfigError: invalid settings or a missing key.
    """
    config = engine_config(context.config, **changes)
    if context.config.provider == OFFLINE:
        return VoiceEngine(config, provider=_offline_provider(config))
    return VoiceEngine(config)
