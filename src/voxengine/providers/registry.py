"""The provider registry: names to :class:`BaseProvider` subclasses.

Built-in providers are listed in this file; applications add their own with
:func:`register_provider`. Nothing registers itself on import.

The realtime providers are imported with this module. The others are *lazy entries*:
a module path and a class name, imported the first time the name is looked up. The
mock lives with the fake servers it runs on (:mod:`voxengine.testing.mock`) and the
cascaded pipelines pull in an HTTP client, so ``import voxengine`` loads neither.
"""

from __future__ import annotations

import difflib
import importlib

from voxengine.errors import ConfigError
from voxengine.providers.base import BaseProvider, ProviderConfig
from voxengine.providers.gemini import GeminiProvider
from voxengine.providers.openai import AzureOpenAIProvider, OpenAIProvider

__all__ = [
    "create_provider",
    "get_provider",
    "list_providers",
    "register_provider",
    "unregister_provider",
]

_REGISTRY: dict[str, type[BaseProvider]] = {
    "openai": OpenAIProvider,
    "azure": AzureOpenAIProvider,
    "gemini": GeminiProvider,
}

#: Built-in names whose class is imported on first use: name -> (module, class name).
_LAZY: dict[str, tuple[str, str]] = {
    "anthropic": ("voxengine.providers.pipeline", "AnthropicPipelineProvider"),
    "mock": ("voxengine.testing.mock", "MockProvider"),
    "pipeline": ("voxengine.providers.pipeline", "PipelineProvider"),
}


def _resolve(name: str) -> type[BaseProvider] | None:
    """The class registered as ``name``, importing a lazy entry; ``None`` if unknown."""
    cls = _REGISTRY.get(name)
    if cls is None and name in _LAZY:
        module, attr = _LAZY[name]
        cls = getattr(importlib.import_module(module), attr)
        _REGISTRY[name] = cls
        del _LAZY[name]
    return cls


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
    if not replace and _resolve(name) not in (None, provider_class):
        raise ConfigError(f"provider {name!r} is already registered; pass replace=True")
    _LAZY.pop(name, None)
    _REGISTRY[name] = provider_class
    return provider_class


def unregister_provider(name: str) -> None:
    """Remove ``name`` from the registry (no error if absent)."""
    _REGISTRY.pop(name, None)
    _LAZY.pop(name, None)


def get_provider(name: str) -> type[BaseProvider]:
    """The provider class registered as ``name``.

    Raises:
        ConfigError: for an unknown name; the message suggests the closest known
            name (``did you mean 'openai'?``) and lists them all.
    """
    cls = _resolve(name) if isinstance(name, str) else None
    if cls is not None:
        return cls
    names = list_providers()
    close = (
        difflib.get_close_matches(name.lower(), names, n=1, cutoff=0.7)
        if isinstance(name, str)
        else []
    )
    guess = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"unknown provider {name!r}; {guess}known providers: {', '.join(names)}")


def list_providers() -> list[str]:
    """Registered provider names, sorted."""
    return sorted({*_REGISTRY, *_LAZY})


def create_provider(name: str, config: ProviderConfig | None = None) -> BaseProvider:
    """Instantiate provider ``name`` with ``config`` (default: its config type's defaults)."""
    cls = get_provider(name)
    return cls(config if config is not None else cls.config_type())
