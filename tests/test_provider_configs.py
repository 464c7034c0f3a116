"""Every ProviderConfig field reaches every provider through one path (ProviderConfig.of)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from voxengine.config import ReconnectPolicy, SessionConfig, WatchdogPolicy
from voxengine.providers import BaseProvider, MockConfig, MockProvider, ProviderConfig
from voxengine.providers.gemini import GeminiConfig, GeminiProvider
from voxengine.providers.openai import (
    AzureOpenAIConfig,
    AzureOpenAIProvider,
    OpenAIConfig,
    OpenAIProvider,
)
from voxengine.providers.pipeline import (
    AnthropicPipelineProvider,
    PipelineConfig,
    PipelineProvider,
)

GENERIC = ProviderConfig(
    api_key="sk-test",
    model="some-model",
    base_url="ws://127.0.0.1:9/",
    session=SessionConfig(instructions="be brief"),
    connect_timeout=3.5,
    reconnect=ReconnectPolicy(enabled=False),
    watchdog=WatchdogPolicy(response_stall=None),
    event_queue_size=17,
)


@pytest.mark.parametrize(
    ("provider_type", "config_type"),
    [
        (MockProvider, MockConfig),
        (GeminiProvider, GeminiConfig),
        (OpenAIProvider, OpenAIConfig),
        (AzureOpenAIProvider, AzureOpenAIConfig),  # an AssertionError before
        (PipelineProvider, PipelineConfig),
    ],
)
def test_a_generic_config_keeps_every_field(
    provider_type: type[BaseProvider], config_type: type[ProviderConfig]
) -> None:
    provider = provider_type(GENERIC)
    assert isinstance(provider.config, config_type)
    for f in fields(ProviderConfig):
        assert getattr(provider.config, f.name) == getattr(GENERIC, f.name), f.name


@pytest.mark.parametrize("provider_type", [PipelineProvider, AnthropicPipelineProvider])
def test_the_pipeline_gives_its_connection_settings_to_the_model_it_builds(
    provider_type: type[BaseProvider],
) -> None:
    import ssl

    from voxengine.providers.pipeline._http import HttpStage

    context = ssl.create_default_context()
    config = ProviderConfig(
        api_key="sk-test",
        model="m",
        base_url="http://127.0.0.1:9/v1",
        connect_timeout=2.5,
        ssl_context=context,
    )
    llm = provider_type(config).llm  # type: ignore[attr-defined]
    assert isinstance(llm, HttpStage)
    assert llm.http.connect == 2.5
    assert llm.http.ssl_context is context


def test_of_returns_a_config_of_the_type_unchanged() -> None:
    own = MockConfig(api_key="k")
    assert MockConfig.of(own) is own
    widened = MockConfig.of(GENERIC)
    assert widened.event_queue_size == 17
    assert widened.reconnect == ReconnectPolicy(enabled=False)


def test_every_provider_setting_has_an_engine_setting_of_the_same_name() -> None:
    from voxengine import VoiceEngineConfig

    engine_fields = {f.name for f in fields(VoiceEngineConfig)}
    missing = {f.name for f in fields(ProviderConfig)} - engine_fields - {"session"}
    assert missing == set()


def test_engine_settings_reach_the_provider_and_fallbacks_get_no_primary_endpoint() -> None:
    import ssl

    from voxengine import VoiceEngine, VoiceEngineConfig

    context = ssl.create_default_context()
    reconnect = ReconnectPolicy(max_attempts=1)
    config = VoiceEngineConfig(
        provider="mock",
        base_url="ws://127.0.0.1:9",
        model="m",
        ssl_context=context,
        event_queue_size=7,
        connect_timeout=3.0,
        reconnect=reconnect,
        instructions="Be brief.",
    )
    provider = VoiceEngine(config).provider.config
    assert provider.ssl_context is context
    assert (provider.event_queue_size, provider.connect_timeout) == (7, 3.0)
    assert (provider.base_url, provider.model, provider.reconnect) == (
        "ws://127.0.0.1:9",
        "m",
        reconnect,
    )
    assert provider.session.instructions == "Be brief."
    fallback = config.provider_settings(primary=False)
    assert (fallback["ssl_context"], fallback["base_url"], fallback["api_key"]) == (
        None,
        None,
        None,
    )
    assert fallback["event_queue_size"] == 7


@pytest.mark.parametrize("size", [0, True, 2.5])
def test_a_bad_event_queue_size_is_refused_by_the_engine_config(size: object) -> None:
    from voxengine import VoiceEngineConfig
    from voxengine.errors import ConfigError

    with pytest.raises(ConfigError, match="event_queue_size"):
        VoiceEngineConfig(provider="mock", event_queue_size=size)  # type: ignore[arg-type]
