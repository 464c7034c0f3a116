"""Providers: one class per speech-to-speech service, all behind :class:`BaseProvider`.

``OpenAIProvider`` (``"openai"``), ``AzureOpenAIProvider`` (``"azure"``),
``GeminiProvider`` (``"gemini"``) and the offline ``MockProvider`` (``"mock"``) are built
in; add your own with :func:`register_provider`.
"""

from __future__ import annotations

from voxengine.providers.base import BaseProvider, Capability, ProviderConfig
from voxengine.providers.gemini import GeminiConfig, GeminiProvider
from voxengine.providers.mock import MockConfig, MockProvider
from voxengine.providers.openai import (
    AzureOpenAIConfig,
    AzureOpenAIProvider,
    OpenAIConfig,
    OpenAIProvider,
)
from voxengine.providers.realtime import RealtimeProvider
from voxengine.providers.registry import (
    create_provider,
    get_provider,
    list_providers,
    register_provider,
    unregister_provider,
)

__all__ = [
    "AzureOpenAIConfig",
    "AzureOpenAIProvider",
    "BaseProvider",
    "Capability",
    "GeminiConfig",
    "GeminiProvider",
    "MockConfig",
    "MockProvider",
    "OpenAIConfig",
    "OpenAIProvider",
    "ProviderConfig",
    "RealtimeProvider",
    "create_provider",
    "get_provider",
    "list_providers",
    "register_provider",
    "unregister_provider",
]
