"""Which provider an engine talks to: built from its config, or a fallback taking over.

:func:`build_provider` makes the configured provider (or a named fallback) and checks,
before any I/O, that it supports every setting the config asks for;
:func:`fail_over` moves a conversation whose session ended for good to the next
fallback that connects, and :func:`restore_history` gives it the conversation so far.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from voxengine.engine_config import VoiceEngineConfig
from voxengine.errors import ConfigError, VoxError
from voxengine.events import Event, ItemKind, ProviderSwitched, Role, SessionClosed
from voxengine.providers.base import BaseProvider, Capability
from voxengine.providers.registry import get_provider
from voxengine.session.history import HistoryEntry

__all__ = ["build_provider", "fail_over", "restore_history"]

logger = logging.getLogger("voxengine.engine")


def build_provider(config: VoiceEngineConfig, name: str | None = None) -> BaseProvider:
    """Provider ``name`` (default ``config.provider``) built from ``config``.

    Fallback providers get the same settings; their API keys come from their
    environment variables (``config.api_key`` belongs to the primary provider).

    Raises:
        ConfigError: unknown provider, or a setting it does not support.
    """
    primary = name is None or name == config.provider
    name = name or config.provider
    cls = get_provider(name)
    session = config.session_config()
    audio_in = Capability.AUDIO_INPUT in cls.capabilities  # turn settings need audio
    needs = {
        Capability.TEMPERATURE: session.temperature is not None,
        Capability.TEXT_OUTPUT: config.output_modality == "text",
        Capability.FUNCTION_CALLING: bool(session.tools),
        Capability.INPUT_TRANSCRIPTION: session.input_transcription_model is not None,
        Capability.SEMANTIC_VAD: audio_in and config.vad_enabled and config.vad_type == "semantic",
        Capability.SERVER_VAD: audio_in and config.vad_enabled and config.vad_type == "server",
        Capability.MANUAL_TURNS: audio_in
        and (not config.vad_enabled or config.vad_type == "client"),
    }
    for capability, needed in needs.items():
        if needed and capability not in cls.capabilities:
            raise ConfigError(f"provider {name!r} does not support {capability.value}")
    provider_config = cls.config_type(**config.provider_settings(primary=primary))
    return cls(provider_config)


async def restore_history(provider: BaseProvider, history: list[HistoryEntry]) -> int:
    """Give a fallback provider the conversation so far, as messages; returns how many.

    Tool calls and results become short system notes, since the new provider never
    issued those calls.
    """
    if not history or Capability.CONTEXT_INJECTION not in provider.capabilities:
        return 0
    restored = 0
    for entry in history:
        if entry.kind is ItemKind.MESSAGE and entry.text:
            await provider.add_message(entry.text, role=entry.role)
        elif entry.kind is ItemKind.FUNCTION_CALL:
            await provider.add_message(
                f"(earlier, tool {entry.name} was called with {entry.text})", role=Role.SYSTEM
            )
        elif entry.kind is ItemKind.FUNCTION_CALL_OUTPUT:
            await provider.add_message(
                f"(tool call {entry.call_id} returned {entry.text})", role=Role.SYSTEM
            )
        else:
            continue
        restored += 1
    return restored


async def fail_over(
    fallbacks: list[BaseProvider | str],
    config: VoiceEngineConfig,
    closed: SessionClosed,
    previous: BaseProvider,
    history: list[HistoryEntry],
    *,
    start: Callable[[BaseProvider], Awaitable[None]],
    closing: Callable[[], bool],
    emit: Callable[[Event], Awaitable[None]],
) -> None:
    """Start the first of ``fallbacks`` (taken from the list) that connects, give it
    ``history`` and emit :class:`ProviderSwitched`; when none is left (or ``closing()``),
    emit ``closed``: the application learns the session ended."""
    reason = closed.reason or f"session closed (code {closed.code})"
    while fallbacks and not closing():
        candidate = fallbacks.pop(0)
        try:
            provider = (
                candidate
                if isinstance(candidate, BaseProvider)
                else build_provider(config, candidate)
            )
            await start(provider)
        except VoxError as exc:
            logger.warning("failover to %s failed: %s", candidate, exc)
            continue
        restored = await restore_history(provider, history)
        await emit(
            ProviderSwitched(
                previous=previous.name,
                current=provider.name,
                reason=reason,
                restored_items=restored,
            )
        )
        return
    await emit(closed)  # nothing left to fail over to
