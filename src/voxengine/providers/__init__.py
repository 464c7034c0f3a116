"""Providers: one class per speech-to-speech service, all behind :class:`BaseProvider`.

``OpenAIProvider`` (``"openai"``), ``AzureOpenAIProvider`` (``"azure"``),
``GeminiProvider`` (``"gemini"``), the cascaded ``PipelineProvider`` (``"pipeline"``,
speech-to-text → any LLM → text-to-speech; offline by default) with its Claude preset
(``"anthropic"``), and the offline ``MockProvider`` (``"mock"``) are built in; add your
own with :func:`register_provider`.

The mock (from :mod:`voxengine.testing.mock`) and the pipeline classes are imported
on first access (module ``__getattr__``), so importing this package loads neither the
fake servers nor an HTTP client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from voxengine.providers.base import BaseProvider, Capability, ProviderConfig
from voxengine.providers.gemini import GeminiConfig, GeminiProvider
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

if TYPE_CHECKING:
    from voxengine.providers.pipeline import (
        AnthropicPipelineConfig,
        AnthropicPipelineProvider,
        PipelineConfig,
        PipelineProvider,
    )
    from voxengine.testing.mock import MockConfig, MockProvider

#: Names imported on first access: name -> module.
_LAZY = {
    "AnthropicPipelineConfig": "voxengine.providers.pipeline",
    "AnthropicPipelineProvider": "voxengine.providers.pipeline",
    "MockConfig": "voxengine.testing.mock",
    "MockProvider": "voxengine.testing.mock",
    "PipelineConfig": "voxengine.providers.pipeline",
    "PipelineProvider": "voxengine.providers.pipeline",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


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
