"""Hostile upgrade refusals, from raw ``websockets`` servers written from the protocol docs.

Each server answers the WebSocket upgrade (openai-realtime.md §2, gemini-live.md §2)
with an HTTP error instead of ``101``, and its body echoes the request the way a
careless server or proxy does: the request line with its query string (Gemini's
``?key=``), the headers as ``Name: value`` lines and as JSON. The client is driven
through the public provider API with every credential placement voxengine uses
(``Authorization: Bearer``, Azure ``api-key``, Gemini ``x-goog-api-key`` and
``?key=``). What must hold:

* 401/403 → :class:`AuthenticationFailed`, never retried;
* 429 → :class:`UpgradeRateLimited` — a ``RateLimited`` and a ``ConnectFailed`` —
  with ``retry_after`` parsed from ``Retry-After`` (seconds or HTTP-date), retried
  no sooner than that;
* 5xx → :class:`UpgradeRefused` (a ``ConnectFailed``), retried;
* the key appears in no exception text or repr and in no log record.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from voxengine import (
    AuthenticationFailed,
    ConnectFailed,
    RateLimited,
    UpgradeRateLimited,
    UpgradeRefused,
)
from voxengine.providers.gemini import GeminiConfig, GeminiProvider
from voxengine.providers.openai import (
    AzureOpenAIConfig,
    AzureOpenAIProvider,
    OpenAIConfig,
    OpenAIProvider,
)
from voxengine.providers.realtime import RealtimeProvider
from voxengine.session import is_retryable
from voxengine.transport.backends import TRANSPORTS
from voxengine.transport.websocket import parse_retry_after

KEY = "sk-proj-HOSTILE-4f9c2d7e1a6b3c8d"

#: The hostile server's own log (it sees the key, as any server does): not the client's.
_SERVER_LOG = "tests.hostile.server"


@dataclass
class Refuser:
    """A server that refuses every upgrade with ``status`` and records the requests."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    shape: str = "lines"  # how the body echoes the request: "lines", "json" or "repr"
    port: int = 0
    requests: list[tuple[float, Request]] = field(default_factory=list)

    def process_request(self, conn: ServerConnection, request: Request) -> Response:
        self.requests.append((time.monotonic(), request))
        raw = dict(request.headers.raw_items())
        for noise in ("Host", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Connection"):
            raw.pop(noise, None)  # keep the echo short: the message shows 300 characters
        if self.shape == "json":
            body = json.dumps({"error": "refused", "request": raw, "path": request.path})
        elif self.shape == "repr":
            body = f"refused {request.path!r} with headers {raw!r}"
        else:
            body = f"GET {request.path} HTTP/1.1\n" + "".join(
                f"{name}: {value}\n" for name, value in raw.items()
            )
        response = conn.respond(self.status, body)
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


@contextlib.asynccontextmanager
async def refusing(status: int, shape: str = "lines", **headers: str) -> AsyncIterator[Refuser]:
    refuser = Refuser(status, {k.replace("_", "-"): v for k, v in headers.items()}, shape)

    async def never(ws: ServerConnection) -> None:  # the upgrade never succeeds
        raise AssertionError("upgrade accepted")

    async with serve(
        never,
        "127.0.0.1",
        0,
        process_request=refuser.process_request,
        logger=logging.getLogger(_SERVER_LOG),
    ) as server:
        refuser.port = server.sockets[0].getsockname()[1]
        yield refuser


ProviderFactory = Callable[..., RealtimeProvider]

#: Each provider on port ``port``, over WebSocket backend ``transport`` (default: websockets).
PROVIDERS: dict[str, ProviderFactory] = {
    "openai-bearer": lambda port, transport="websockets": OpenAIProvider(
        OpenAIConfig(api_key=KEY, base_url=f"ws://127.0.0.1:{port}/v1", transport=transport)
    ),
    "azure-api-key": lambda port, transport="websockets": AzureOpenAIProvider(
        AzureOpenAIConfig(
            api_key=KEY, base_url=f"http://127.0.0.1:{port}", model="dep", transport=transport
        )
    ),
    "gemini-header": lambda port, transport="websockets": GeminiProvider(
        GeminiConfig(api_key=KEY, base_url=f"ws://127.0.0.1:{port}", transport=transport)
    ),
    "gemini-query": lambda port, transport="websockets": GeminiProvider(
        GeminiConfig(
            api_key=KEY, base_url=f"ws://127.0.0.1:{port}", key_in="query", transport=transport
        )
    ),
}


def _fast(provider: RealtimeProvider) -> RealtimeProvider:
    provider.retry_backoff = 0.01  # the retry count matters here, not the backoff
    return provider


def assert_key_hidden(exc: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    formatter = logging.Formatter("%(name)s %(message)s")
    assert KEY not in str(exc)
    assert KEY not in repr(exc)
    assert KEY[:12] not in str(exc)  # not even a prefix cut by truncation
    client_records = [r for r in caplog.records if r.name != _SERVER_LOG]
    assert any(r.name.startswith("voxengine") for r in client_records)
    for record in client_records:
        assert KEY not in formatter.format(record), record.name
        assert KEY[:12] not in formatter.format(record), record.name


@pytest.mark.parametrize("shape", ["lines", "json", "repr"])
@pytest.mark.parametrize("status", [401, 403])
@pytest.mark.parametrize("name", list(PROVIDERS))
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_auth_refusal_is_authentication_failed_and_never_retried(
    name: str, status: int, shape: str, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with refusing(status, shape) as server:
        provider = _fast(PROVIDERS[name](server.port, transport))
        with pytest.raises(AuthenticationFailed) as info:
            await provider.connect(retry_count=3)
    assert len(server.requests) == 1  # never retried
    assert f"HTTP {status}" in str(info.value)
    assert "***" in str(info.value)  # the echo is shown, the key masked
    assert not is_retryable(info.value)
    assert_key_hidden(info.value, caplog)


@pytest.mark.parametrize("name", list(PROVIDERS))
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_429_is_rate_limited_and_connect_failed_with_retry_after(
    name: str, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with refusing(429, "json", Retry_After="7") as server:
        provider = _fast(PROVIDERS[name](server.port, transport))
        with pytest.raises(UpgradeRateLimited) as info:
            await provider.connect(retry_count=0)
    exc = info.value
    assert isinstance(exc, RateLimited)
    assert isinstance(exc, ConnectFailed)
    assert exc.retry_after == 7.0
    assert exc.status == 429
    assert is_retryable(exc)
    assert len(server.requests) == 1
    assert_key_hidden(exc, caplog)


@pytest.mark.parametrize("name", list(PROVIDERS))
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_500_is_a_retryable_connect_failure(
    name: str, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    caplog.set_level(logging.DEBUG)
    async with refusing(500, "repr") as server:
        provider = _fast(PROVIDERS[name](server.port, transport))
        with pytest.raises(UpgradeRefused) as info:
            await provider.connect(retry_count=2)
    assert info.value.status == 500
    assert not isinstance(info.value, RateLimited | AuthenticationFailed)
    assert len(server.requests) == 3  # the first try and two retries
    assert_key_hidden(info.value, caplog)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_retry_after_429_waits_at_least_retry_after(transport: str) -> None:
    async with refusing(429, Retry_After="1") as server:
        provider = _fast(PROVIDERS["openai-bearer"](server.port, transport))
        with pytest.raises(UpgradeRateLimited):
            await provider.connect(retry_count=1)
    (first, _), (second, _) = server.requests
    assert second - first >= 0.95  # the 0.01 s backoff was raised to Retry-After


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_retry_after_as_http_date(transport: str) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    async with refusing(429, Retry_After=when) as server:
        provider = _fast(PROVIDERS["gemini-header"](server.port, transport))
        with pytest.raises(UpgradeRateLimited) as info:
            await provider.connect(retry_count=0)
    assert info.value.retry_after is not None
    assert 25 <= info.value.retry_after <= 31


async def test_429_without_retry_after_has_none_and_uses_the_backoff() -> None:
    async with refusing(429) as server:
        provider = _fast(PROVIDERS["openai-bearer"](server.port))
        with pytest.raises(UpgradeRateLimited) as info:
            await provider.connect(retry_count=1)
    assert info.value.retry_after is None
    assert len(server.requests) == 2


async def test_a_retry_after_longer_than_a_minute_is_raised_at_once() -> None:
    async with refusing(429, Retry_After="3600") as server:
        provider = _fast(PROVIDERS["openai-bearer"](server.port))
        with pytest.raises(UpgradeRateLimited) as info:
            await asyncio.wait_for(provider.connect(retry_count=3), timeout=30)
    assert info.value.retry_after == 3600.0
    assert len(server.requests) == 1  # the caller decides whether to wait an hour


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-3", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: no wait
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_is_relative_to_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=1445412480.0) == 30.0


async def test_404_is_refused_and_not_retried() -> None:
    """A wrong path cannot fix itself: other 4xx statuses are not retried."""
    async with refusing(404) as server:
        provider = _fast(PROVIDERS["azure-api-key"](server.port))
        with pytest.raises(UpgradeRefused) as info:
            await provider.connect(retry_count=3)
    assert info.value.status == 404
    assert len(server.requests) == 1
