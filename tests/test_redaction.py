"""The one list of secret names and the redaction of their values (voxengine.redaction)."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from voxengine.protocols import ConnectRequest
from voxengine.redaction import (
    SECRET_HEADERS,
    SECRET_QUERY_PARAMS,
    redact,
    redact_url,
    remember_secrets,
    secrets_in,
)

KEY = "sk-proj-abcDEF0123456789xyz"


@pytest.mark.parametrize(
    "text",
    [
        f"Authorization: Bearer {KEY}",
        f'{{"Authorization": "Bearer {KEY}"}}',
        f"{{'authorization': 'Bearer {KEY}'}}",
        f'{{"api-key": "{KEY}", "x": 1}}',
        f"x-goog-api-key={KEY}",
        f"Proxy-Authorization: Basic {KEY}",
        f"GET /ws?alt=json&key={KEY} HTTP/1.1",
        f"subprotocols: realtime, openai-insecure-api-key.{KEY}, openai-beta.realtime-v1",
    ],
)
def test_secrets_are_masked_by_name_in_every_echo_shape(text: str) -> None:
    cleaned = redact(text)
    assert KEY not in cleaned
    assert "***" in cleaned


def test_secrets_are_masked_by_value_in_any_shape() -> None:
    odd = f"<td>token</td><td>{KEY}</td> and quoted {quote('k/ey+' + KEY, safe='')}"
    cleaned = redact(odd, {KEY, "k/ey+" + KEY})
    assert KEY not in cleaned
    assert "***" in cleaned


def test_secrets_in_finds_exactly_the_credentials() -> None:
    headers = {
        "Authorization": f"Bearer {KEY}",
        "Sec-WebSocket-Protocol": f"realtime, openai-insecure-api-key.{KEY}2, openai-beta.realtime-v1",
        "OpenAI-Beta": "realtime=v1",
    }
    found = secrets_in(f"wss://h/ws?key={KEY}3&alt=json", headers)
    assert found == {KEY, KEY + "2", KEY + "3"}


def test_remembered_secrets_are_masked_in_later_text() -> None:
    remember_secrets({"rotated-secret-value-1"})
    assert redact("the server said rotated-secret-value-1") == "the server said ***"


def test_connect_request_repr_uses_the_list() -> None:
    request = ConnectRequest(
        url=f"wss://h/ws?key={KEY}", headers={"x-goog-api-key": KEY, "api-key": KEY}
    )
    assert KEY not in repr(request)
    assert redact_url(request.url) == "wss://h/ws?key=***"
    assert {"authorization", "api-key", "x-goog-api-key"} <= SECRET_HEADERS
    assert {"key", "access_token"} <= SECRET_QUERY_PARAMS


def test_protocols_redact_their_key_in_server_error_texts() -> None:
    """A server quoting the key mid-session: the event and the close carry ``***``."""
    import json

    from voxengine.config import SessionConfig
    from voxengine.events import ProviderErrorEvent, SessionClosed
    from voxengine.protocols.gemini.protocol import GeminiLiveProtocol
    from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol

    openai = OpenAIRealtimeProtocol(
        url="wss://h/v1/realtime",
        headers={"Authorization": f"Bearer {KEY}"},
        session=SessionConfig(),
    )
    openai.receive_message(
        json.dumps({"type": "error", "error": {"code": "x", "message": f"key {KEY} is odd"}})
    )
    openai.receive_close(1011, f"bye {KEY}")
    texts = [
        e.message if isinstance(e, ProviderErrorEvent) else e.reason
        for e in openai.events_received()
        if isinstance(e, ProviderErrorEvent | SessionClosed)
    ]
    assert texts == ["key *** is odd", "bye ***"]
    gemini = GeminiLiveProtocol(
        url=f"wss://h/ws?key={KEY}", headers={}, model="m", session=SessionConfig()
    )
    gemini.receive_close(1008, f"API key {KEY} not valid")
    assert KEY not in str(gemini.close_exc)
