"""Every ProviderConfig field reaches every provider through one path (ProviderConfig.of)."""

from __future__ import annotations

from dataclasses import fields

import pytest

from voxengine.config import ReconnectPolicy, SessionConfig, WatchdogPolicy
from voxengine.providers import BaseProvider, MockConfig, MockProvider, ProviderConfig
from voxengine.providers.gemini import GeminiConfig, GeminiProvider
from voxengine.providers.openai import OpenAIProvider
from voxengine.providers.pipeline import PipelineConfig, PipelineProvider

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
        (OpenAIProvider, ProviderConfig),
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


def test_of_returns_a_config_of_the_type_unchanged() -> None:
    own = MockConfig(api_key="k")
    assert MockConfig.of(own) is own
    widened = MockConfig.of(GENERIC)
    assert widened.event_queue_size == 17
    assert widened.reconnect == ReconnectPolicy(enabled=False)
