"""HTTP plumbing shared by the HTTP stages: clients, timeouts and error translation.

Every httpx failure leaves this module as a :mod:`voxengine.errors` exception:

* 401/403 -> :class:`~voxengine.errors.AuthenticationFailed`
* 429 -> :class:`~voxengine.errors.RateLimited` (``retry_after`` from ``Retry-After``)
* other 4xx/5xx -> :class:`~voxengine.errors.ProviderError` with the server's error type
  and message (both Anthropic's ``{"type": "error", "error": {...}}`` and OpenAI's
  ``{"error": {...}}`` shapes are read)
* connection failures (DNS, refused, connect timeout) -> ConnectFailed; a failed TLS
  handshake -> :class:`~voxengine.errors.TLSFailed` /
  :class:`~voxengine.errors.CertificateRejected` (why: hostname mismatch, untrusted)
* timeouts while reading -> :class:`~voxengine.errors.TransportError`
* a malformed HTTP response, or a stream that is not ``text/event-stream``
  -> :class:`~voxengine.errors.ProtocolViolation`

Server-sent events are decoded by ``httpx-sse`` (the event-stream parser of the
WHATWG rules, kept by httpx's maintainers) rather than by a parser of our own.

``https://`` is verified as WebSockets are (:func:`voxengine.transport.tls.default_ssl_context`:
system trust store, ``$SSL_CERT_FILE`` / ``$SSL_CERT_DIR``). API keys only travel in
headers and never appear in messages or logs, even when an error body echoes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from httpx_sse import EventSource, ServerSentEvent, SSEError

from voxengine.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectFailed,
    ProtocolViolation,
    ProviderError,
    RateLimited,
    TransportError,
    VoxError,
)
from voxengine.redaction import redact, remember_secrets, secrets_in
from voxengine.transport.tls import default_ssl_context, tls_failure
from voxengine.transport.websocket import parse_retry_after

__all__ = [
    "OPENAI_BASE_URL",
    "HttpSettings",
    "HttpStage",
    "error_for_status",
    "map_http_errors",
    "new_client",
    "openai_key",
    "post_events",
    "post_stream",
]

OPENAI_BASE_URL: Final = "https://api.openai.com/v1"


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """Timeouts in seconds: ``connect`` to open a connection, ``read`` between two
    received chunks (bounds a stalled stream), ``write`` to send a request.
    ``ssl_context`` replaces the verification of ``https://`` servers (default: the
    system trust store, see :func:`~voxengine.transport.tls.default_ssl_context`)."""

    connect: float = 10.0
    read: float = 60.0
    write: float = 30.0
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if min(self.connect, self.read, self.write) <= 0:
            raise ConfigError("HTTP timeouts must be positive seconds")


def new_client(
    base_url: str, headers: Mapping[str, str], settings: HttpSettings
) -> httpx.AsyncClient:
    """An AsyncClient for ``base_url`` with ``headers`` on every request.

    ``https://`` is verified with ``settings.ssl_context``, else
    :func:`~voxengine.transport.tls.default_ssl_context`.
    """
    timeout = httpx.Timeout(
        connect=settings.connect, read=settings.read, write=settings.write, pool=settings.connect
    )
    remember_secrets(secrets_in(base_url, headers))
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/"),
        headers=dict(headers),
        timeout=timeout,
        verify=settings.ssl_context or default_ssl_context(),
    )


def _error_fields(body: bytes) -> tuple[str | None, str]:
    """``(type or code, message)`` from an Anthropic or OpenAI error body."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        text = body.decode("utf-8", "replace").strip()
        return None, text[:500]
    error = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(error, dict):
        code = error.get("code") or error.get("type")
        message = error.get("message")
        return (str(code) if code else None), str(message or payload)
    if isinstance(error, str):  # e.g. Ollama: {"error": "model not found"}
        return None, error
    return None, str(payload)[:500]


def error_for_status(
    status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> VoxError:
    """The exception for an HTTP error response (see the module docstring).

    Credentials the body may echo are redacted; ``headers`` gives ``Retry-After``.
    """
    # Redact before parsing and cutting, so no prefix of a secret survives the cut.
    code, message = _error_fields(redact(body.decode("utf-8", "replace")).encode())
    text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
    if status in (401, 403):
        return AuthenticationFailed(text)
    if status == 429:
        retry_after = parse_retry_after((headers or {}).get("retry-after"))
        return RateLimited(code or "rate_limited", message or text, retry_after=retry_after)
    return ProviderError(code or f"http_{status}", message or text)


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _where(exc: httpx.HTTPError) -> str:
    """``scheme://host:port`` of the failed request (never its path, query or key)."""
    try:
        url = exc.request.url
    except RuntimeError:  # no request attached
        return "the server"
    return f"{url.scheme}://{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"


@contextlib.contextmanager
def map_http_errors() -> Iterator[None]:
    """Translate httpx exceptions raised in the block (chained with ``from``)."""
    try:
        yield
    except httpx.TimeoutException as exc:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            raise ConnectFailed(f"connection to {_where(exc)} timed out: {exc}") from exc
        raise TransportError(f"request timed out ({type(exc).__name__})") from exc
    except httpx.ConnectError as exc:
        tls = _ssl_cause(exc)
        where = _where(exc)
        if tls is not None:
            raise tls_failure(tls, where) from exc
        raise ConnectFailed(f"cannot connect to {where}: {redact(str(exc))}") from exc
    except httpx.RemoteProtocolError as exc:
        raise ProtocolViolation(f"malformed HTTP response: {exc}") from exc
    except httpx.TransportError as exc:
        raise TransportError(f"HTTP transport failed: {exc}") from exc


@contextlib.asynccontextmanager
async def post_stream(
    client: httpx.AsyncClient, path: str, **request: Any
) -> AsyncIterator[httpx.Response]:
    """POST and yield the streaming response once its status is known to be 2xx.

    Raises:
        VoxError: as described in the module docstring.
    """
    with map_http_errors():
        async with client.stream("POST", path, **request) as response:
            if response.status_code >= 400:
                raise error_for_status(
                    response.status_code, await response.aread(), response.headers
                )
            yield response


@contextlib.asynccontextmanager
async def post_events(
    client: httpx.AsyncClient, path: str, **request: Any
) -> AsyncIterator[AsyncIterator[ServerSentEvent]]:
    """POST (as :func:`post_stream`) and yield the response's server-sent events.

    Leaving the ``async with`` block closes the response, even mid-stream.
    """
    async with (
        post_stream(client, path, **request) as response,
        contextlib.aclosing(_sse_events(response)) as events,
    ):
        yield events


async def _sse_events(response: httpx.Response) -> AsyncGenerator[ServerSentEvent, None]:
    try:
        async for event in EventSource(response).aiter_sse():
            yield event
    except SSEError as exc:
        raise ProtocolViolation(f"the server did not stream server-sent events: {exc}") from exc


def openai_key(api_key: str | None, base_url: str) -> str | None:
    """The key for an OpenAI-protocol server.

    For the OpenAI API itself the key defaults to ``$OPENAI_API_KEY`` and is required;
    for any other server it is optional and the environment is never read, so an
    OpenAI key is never sent to a third-party server by accident.

    Raises:
        ConfigError: the OpenAI API without a key.
    """
    if api_key is None and base_url.rstrip("/") == OPENAI_BASE_URL:
        api_key = os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise ConfigError("the OpenAI API needs a key: pass api_key=... or set OPENAI_API_KEY")
    return api_key or None


class HttpStage:
    """Base of the HTTP stages: one lazily created httpx client, reused across turns."""

    def __init__(self, base_url: str, headers: dict[str, str], http: HttpSettings) -> None:
        self._base_url = base_url.rstrip("/")
        self._headers = headers
        self._http = http
        self._client: httpx.AsyncClient | None = None

    def _client_now(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            self._client = new_client(self._base_url, self._headers, self._http)
        return self._client

    @property
    def http(self) -> HttpSettings:
        """The timeouts and TLS settings of this stage's requests."""
        return self._http

    async def open(self) -> None:
        """Create the HTTP client (no request is made)."""
        self._client_now()

    async def aclose(self) -> None:
        """Close the HTTP client. Idempotent."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
