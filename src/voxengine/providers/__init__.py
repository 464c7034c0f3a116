"""Providers: one class per speech-to-speech service, all behind :class:`BaseProvider`.

``OpenAIProvider`` (``"openai"``), ``AzureOpenAIProvider`` (``"azure"``),
``GeminiProvider`` (``"gemini"``), the cascaded ``PipelineProvider`` (``"pipeline"``,
speech-to-text → any LLM → text-to-speech; offline by default) with its Claude preset
(``"anthropic"``), and the offline ``MockProvider`` (``"mock"``) are built in; add your
own with :func:`register_provider`.
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
from voxengine.providers.pipeline import (
    AnthropicPipelineConfig,
    AnthropicPipelineProvider,
    PipelineConfig,
    PipelineProvider,
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
    "AnthropicPipelineConfig",
    "AnthropicPipelineProvider",
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
    "PipelineConfig",
    "PipelineProvider",
    "ProviderConfig",
    "RealtimeProvider",
    "create_provider",
    "get_provider",
    "list_providers",
    "register_provider",
    "unregister_provider",
]
