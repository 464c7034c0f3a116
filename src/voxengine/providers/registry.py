"""The provider registry: names to :class:`BaseProvider` subclasses.

Built-in providers are listed in this file; applications add their own with
:func:`register_provider`. Nothing registers itself on import.
"""

from __future__ import annotations

import difflib

from voxengine.errors import ConfigError
from voxengine.providers.base import BaseProvider, ProviderConfig
from voxengine.providers.gemini import GeminiProvider
from voxengine.providers.mock import MockProvider
from voxengine.providers.openai import AzureOpenAIProvider, OpenAIProvider
from voxengine.providers.pipeline import AnthropicPipelineProvider, PipelineProvider

__all__ = [
    "create_provider",
    "get_provider",
    "list_providers",
    "register_provider",
    "unregister_provider",
]

_REGISTRY: dict[str, type[BaseProvider]] = {
    "anthropic": AnthropicPipelineProvider,
    "openai": OpenAIProvider,
    "azure": AzureOpenAIProvider,
    "gemini": GeminiProvider,
    "mock": MockProvider,
    "pipeline": PipelineProvider,
}


def register_provider(
    name: str, provider_class: type[BaseProvider], *, replace: bool = False
) -> type[BaseProvider]:
    """Make ``provider_class`` available as ``name``.

    Raises:
        ConfigError: if ``name`` is taken (unless ``replace``) or the class is not a
            concrete :class:`BaseProvider` subclass.
    """
    if not (isinstance(provider_class, type) and issubclass(provider_class, BaseProvider)):
        raise ConfigError(f"{provider_class!r} is not a BaseProvider subclass")
    if getattr(provider_class, "__abstractmethods__", None):
        missing = ", ".join(sorted(provider_class.__abstractmethods__))
        raise ConfigError(f"{provider_class.__name__} does not implement: {missing}")
    if not name or not name.replace("-", "_").isidentifier():
        raise ConfigError(f"provider name must be an identifier-like string, got {name!r}")
    if name in _REGISTRY and not replace and _REGISTRY[name] is not provider_class:
        raise ConfigError(f"provider {name!r} is already registered; pass replace=True")
    _REGISTRY[name] = provider_class
    return provider_class


def unregister_provider(name: str) -> None:
    """Remove ``name`` from the registry (no error if absent)."""
    _REGISTRY.pop(name, None)


def get_provider(name: str) -> type[BaseProvider]:
    """The provider class registered as ``name``.

    Raises:
        ConfigError: for an unknown name; the message suggests the closest known
            name (``did you mean 'openai'?``) and lists them all.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_REGISTRY))
        close = (
            difflib.get_close_matches(name.lower(), list(_REGISTRY), n=1, cutoff=0.7)
            if isinstance(name, str)
            else []
        )
        guess = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(f"unknown provider {name!r}; {guess}known providers: {known}") from None


def list_providers() -> list[str]:
    """Registered provider names, sorted."""
    return sorted(_REGISTRY)


def create_provider(name: str, config: ProviderConfig | None = None) -> BaseProvider:
    """Instantiate provider ``name`` with ``config`` (default: its config type's defaults)."""
    cls = get_provider(name)
    return cls(config if config is not None else cls.config_type())
