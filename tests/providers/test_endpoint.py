"""The one URL normaliser and API-key lookup of the WebSocket providers."""

from __future__ import annotations

import pytest

from voxengine.errors import ConfigError
from voxengine.providers.endpoint import api_key, websocket_base
from voxengine.providers.gemini import live_url


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://api.openai.com/v1/", "wss://api.openai.com/v1"),
        ("http://127.0.0.1:8080", "ws://127.0.0.1:8080"),
        ("ws://127.0.0.1:8080/v1?x=1#frag", "ws://127.0.0.1:8080/v1"),
        ("wss://res.openai.azure.com", "wss://res.openai.azure.com"),
    ],
)
def test_websocket_base_is_the_service_root(given: str, root: str) -> None:
    assert websocket_base(given) == root


@pytest.mark.parametrize("bad", ["ftp://host", "127.0.0.1:8080", "https://", ""])
def test_websocket_base_refuses_what_is_not_a_web_url(bad: str) -> None:
    with pytest.raises(ConfigError, match="base_url must be"):
        websocket_base(bad)


def test_gemini_endpoint_is_built_on_the_same_root() -> None:
    assert live_url("https://example.test/", "v1") == (
        "wss://example.test/ws/google.ai.generativelanguage.v1"
        ".GenerativeService.BidiGenerateContent"
    )


def test_api_key_prefers_the_given_key_then_the_first_variable_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("VOX_TEST_A", "")
    monkeypatch.setenv("VOX_TEST_B", "from-b")
    assert api_key("given", ("VOX_TEST_A", "VOX_TEST_B"), "demo") == "given"
    assert api_key(None, ("VOX_TEST_A", "VOX_TEST_B"), "demo") == "from-b"


def test_a_missing_key_names_every_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VOX_TEST_A", raising=False)
    monkeypatch.delenv("VOX_TEST_B", raising=False)
    with pytest.raises(ConfigError) as caught:
        api_key(None, ("VOX_TEST_A", "VOX_TEST_B"), "demo")
    assert str(caught.value) == (
        "the demo provider needs an API key: pass api_key=... or set VOX_TEST_A (or VOX_TEST_B)"
    )
    with pytest.raises(ConfigError, match="needs an API key"):
        api_key("", ("VOX_TEST_A",), "demo")
