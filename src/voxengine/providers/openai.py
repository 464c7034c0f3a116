"""OpenAI Realtime (GA) and Azure OpenAI realtime providers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar, final
from urllib.parse import quote

from voxengine.errors import ConfigError
from voxengine.protocols import RealtimeProtocol
from voxengine.protocols.openai._wire import Dialect
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol
from voxengine.protocols.openai.voices import VOICES
from voxengine.providers.base import Capability, ProviderConfig
from voxengine.providers.endpoint import api_key, websocket_base
from voxengine.providers.realtime import RealtimeProvider

__all__ = [
    "OPENAI_CAPABILITIES",
    "AzureOpenAIConfig",
    "AzureOpenAIProvider",
    "OpenAIConfig",
    "OpenAIProvider",
]

#: The built-in Realtime voices (openai-realtime.md §4); marin and cedar are recommended.
OPENAI_VOICES: tuple[str, ...] = VOICES

OPENAI_CAPABILITIES = frozenset(
    {
        Capability.AUDIO_INPUT,
        Capability.AUDIO_OUTPUT,
        Capability.TEXT_INPUT,
        Capability.TEXT_OUTPUT,
        Capability.SERVER_VAD,
        Capability.SEMANTIC_VAD,
        Capability.MANUAL_TURNS,
        Capability.FUNCTION_CALLING,
        Capability.INPUT_TRANSCRIPTION,
        Capability.OUTPUT_TRANSCRIPTION,
        Capability.INTERRUPTION,
        Capability.TRUNCATION,
        Capability.SESSION_UPDATE,
        Capability.ITEM_DELETION,
        Capability.USAGE,
        Capability.CONTEXT_INJECTION,
        Capability.RECORDED_AUDIO,
        Capability.SPEECH_EVENTS,
    }
)

DEFAULT_OPENAI_URL = "wss://api.openai.com/v1"
DEFAULT_OPENAI_MODEL = "gpt-realtime"


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAIConfig(ProviderConfig):
    """OpenAI Realtime settings. ``api_key`` defaults to ``$OPENAI_API_KEY``;
    ``base_url`` to ``wss://api.openai.com/v1``; ``model`` to ``gpt-realtime``."""


@final
class OpenAIProvider(RealtimeProvider):
    """OpenAI Realtime API over WebSocket (GA interface)."""

    name: ClassVar[str] = "openai"
    config_type: ClassVar[type[ProviderConfig]] = OpenAIConfig
    capabilities: ClassVar[frozenset[Capability]] = OPENAI_CAPABILITIES
    voices: ClassVar[tuple[str, ...] | None] = OPENAI_VOICES

    def make_protocol(self) -> RealtimeProtocol:
        """A GA protocol for ``<base_url>/realtime?model=<model>``."""
        cfg = self.config
        key = api_key(cfg.api_key, ("OPENAI_API_KEY",), "openai")
        base = websocket_base(cfg.base_url or DEFAULT_OPENAI_URL)
        model = cfg.model or DEFAULT_OPENAI_MODEL
        return OpenAIRealtimeProtocol(
            url=f"{base}/realtime?model={quote(model)}",
            headers={"Authorization": f"Bearer {key}"},
            session=cfg.session,
            dialect=Dialect.GA,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class AzureOpenAIConfig(ProviderConfig):
    """Azure OpenAI settings.

    ``base_url`` is the resource endpoint (``https://<resource>.openai.azure.com``,
    default ``$AZURE_OPENAI_ENDPOINT``) and ``model`` the *deployment name*.
    ``api_key`` defaults to ``$AZURE_OPENAI_API_KEY``. With ``api_version`` unset the
    GA ``/openai/v1/realtime`` endpoint is used; setting it (e.g.
    ``"2025-04-01-preview"``) selects the legacy preview endpoint, which speaks the beta
    event shape. ``entra_token`` sends the key as an Entra ID bearer token instead of
    the ``api-key`` header.
    """

    api_version: str | None = None
    entra_token: bool = False


@final
class AzureOpenAIProvider(RealtimeProvider):
    """Azure OpenAI realtime deployments (GA ``v1`` endpoint or legacy preview)."""

    name: ClassVar[str] = "azure"
    voices: ClassVar[tuple[str, ...] | None] = OPENAI_VOICES
    config_type: ClassVar[type[ProviderConfig]] = AzureOpenAIConfig
    capabilities: ClassVar[frozenset[Capability]] = OPENAI_CAPABILITIES

    def make_protocol(self) -> RealtimeProtocol:
        """A protocol for the deployment's GA or preview URL."""
        cfg = self.config
        assert isinstance(cfg, AzureOpenAIConfig)
        key = api_key(cfg.api_key, ("AZURE_OPENAI_API_KEY",), "azure")
        endpoint = cfg.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ConfigError(
                "the azure provider needs base_url=https://<resource>.openai.azure.com "
                "or $AZURE_OPENAI_ENDPOINT"
            )
        if not cfg.model:
            raise ConfigError("the azure provider needs model=<deployment name>")
        base = websocket_base(endpoint)
        headers = {"Authorization": f"Bearer {key}"} if cfg.entra_token else {"api-key": key}
        if cfg.api_version is None:
            url = f"{base}/openai/v1/realtime?model={quote(cfg.model)}"
            dialect = Dialect.GA
        else:
            url = (
                f"{base}/openai/realtime?api-version={quote(cfg.api_version)}"
                f"&deployment={quote(cfg.model)}"
            )
            dialect = Dialect.BETA
        return OpenAIRealtimeProtocol(
            url=url, headers=headers, session=cfg.session, dialect=dialect
        )
