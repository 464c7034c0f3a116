"""Settings of a voice server: :class:`ServeConfig`.

Frozen and validated at construction, so a bad value fails before the server binds a
port. The provider is named as everywhere else in voxengine (``"openai"``,
``"gemini"``, ``"pipeline"``, ``"mock"``, any registered name), plus ``"offline"``:
the default offline stack (the local voice AI when the ``local`` extra is installed,
else the rule-based fallback), built per call by
:func:`voxengine.serve.factory.default_session_factory`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from voxengine.errors import ConfigError
from voxengine.providers.registry import get_provider
from voxengine.serve.auth import MIN_SECRET_CHARS
from voxengine.serve.limits import Limits

__all__ = ["OFFLINE", "ServeConfig"]

#: The provider name of the default offline stack.
OFFLINE = "offline"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeConfig:
    """How ``voxengine serve`` (or :func:`voxengine.serve.build_app`) serves calls.

    Attributes:
        host, port: where the server listens (``voxengine serve`` only).
        provider: the provider every call talks to (see the module docstring).
        model, voice, instructions: the session's settings (provider defaults if ``None``).
        engine: further :class:`~voxengine.VoiceEngineConfig` fields for every call
            (e.g. ``{"vad_type": "client"}``); the application's session factory can
            override anything per call.
        secret: the deployment secret that signs call tokens (share it between the
            workers of one deployment). ``None``: a random one per process (tokens
            then only work on the process that issued them). Never in repr or logs.
        public_tokens: the token endpoint gives tokens to anyone who asks (rate
            limited per address), so the served page works by itself. Turn off when
            your own backend hands out tokens (it calls ``POST /token`` with the secret).
        token_ttl: seconds a token stays valid to open a call.
        limits: per-caller and per-process limits.
        drain_timeout: on shutdown, seconds calls in progress get to finish before
            they are closed with ``going_away``.
        page: serve the browser page at ``/``.
        state_url: where calls keep their resumable state: ``None`` / ``memory://``
            (this process only) or ``redis://host:port/db`` (shared by every worker;
            see docs/scaling.md).
        state_ttl: seconds a call's state outlives its last refresh: how long a
            caller has to resume after its worker died.
        state_required: refuse new calls while the state store is unreachable
            (default: accept them with a warning; they cannot resume elsewhere).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    provider: str = OFFLINE
    model: str | None = None
    voice: str | None = None
    instructions: str | None = None
    engine: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    secret: str | None = field(default=None, repr=False)
    public_tokens: bool = True
    token_ttl: float = 60.0
    limits: Limits = field(default_factory=Limits)
    drain_timeout: float = 10.0
    page: bool = True
    state_url: str | None = field(default=None, repr=False)
    state_ttl: float = 60.0
    state_required: bool = False

    def __post_init__(self) -> None:
        if self.provider != OFFLINE:
            get_provider(self.provider)  # unknown names fail here, listing the known ones
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535, got {self.port!r}")
        if not isinstance(self.limits, Limits):
            raise ConfigError("limits must be a voxengine.serve.limits.Limits")
        for name, least in (("token_ttl", 1e-3), ("drain_timeout", 0.0), ("state_ttl", 1e-3)):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < least:
                qualifier = "positive" if least else "non-negative"
                raise ConfigError(f"{name} must be {qualifier} seconds, got {value!r}")
        if self.secret is not None and len(self.secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"the deployment secret needs at least {MIN_SECRET_CHARS} characters")
        reserved = {"provider", "model", "voice", "instructions", "audio_backend"}
        clash = sorted(reserved & set(self.engine))
        if clash:
            raise ConfigError(f"set {clash} as ServeConfig fields, not in engine=")
