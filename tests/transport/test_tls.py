"""The default TLS context of ``wss://`` and ``https://``: verifying, env-configurable.

A test CA (tests/hostile/_tls_ca.py) signs a server certificate for 127.0.0.1; the
client never gets an ``ssl_context``: trust must come from ``SSL_CERT_FILE`` (set
with monkeypatch, so it ends with the test). Covers the WebSocket transport and the
pipeline's HTTP client (httpx), which share :func:`default_ssl_context`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve

from voxengine.errors import CertificateRejected, RateLimited
from voxengine.events import Role
from voxengine.providers.pipeline import OpenAIChatLLM
from voxengine.providers.pipeline.stages import ChatMessage, GenerationSettings
from voxengine.transport import Connector
from voxengine.transport.backends import connector
from voxengine.transport.tls import default_ssl_context

from ..hostile._tls_ca import TestCA

KEY = "sk-tls-transport-0123456789"


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    return TestCA(tmp_path, name="transport")


@contextlib.asynccontextmanager
async def wss_echo(context: ssl.SSLContext) -> AsyncIterator[str]:
    async def hello(ws: ServerConnection) -> None:
        await ws.send("hello over tls")
        await ws.wait_closed()

    async with serve(hello, "127.0.0.1", 0, ssl=context) as server:
        yield f"wss://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/realtime"


async def test_wss_without_ssl_context_honours_ssl_cert_file(
    ca: TestCA, monkeypatch: pytest.MonkeyPatch, opener: Connector
) -> None:
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with wss_echo(ca.server_context(("127.0.0.1",))) as url:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(CertificateRejected, match="untrusted certificate"):
            await opener(url, {}, timeout=5)
        monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_path))
        conn = await opener(url, {}, timeout=5)  # no ssl_context
        assert await conn.recv() == "hello over tls"
        await conn.close()
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(CertificateRejected):  # the trusting context did not stick
            await opener(url, {}, timeout=5)


def test_default_context_verifies_and_follows_the_environment(
    ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    system = default_ssl_context()
    assert system.verify_mode is ssl.CERT_REQUIRED
    assert system.check_hostname
    assert default_ssl_context() is system  # kept while the environment is unchanged
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_path))
    custom = default_ssl_context()
    assert custom is not system
    subjects = [dict(x[0] for x in c["subject"]) for c in custom.get_ca_certs()]
    assert {"commonName": "transport root CA"} in subjects


async def test_ssl_context_with_ws_url_is_ignored_not_a_value_error(backend: str) -> None:
    async def hello(ws: ServerConnection) -> None:
        await ws.send("plain")

    async with serve(hello, "127.0.0.1", 0) as server:
        url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        opener = connector(backend, ssl.create_default_context())
        conn = await opener(url, {}, timeout=5)
        assert await conn.recv() == "plain"
        await conn.close()


@contextlib.asynccontextmanager
async def https_429(context: ssl.SSLContext) -> AsyncIterator[str]:
    """An HTTPS server that answers every request 429, echoing the Authorization header."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        auth = next(
            (line for line in head.split("\r\n") if line.lower().startswith("authorization")), ""
        )
        body = f'{{"error": {{"type": "rate_limit", "message": "slow down; you sent {auth}"}}}}'
        writer.write(
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 12\r\n"
            b"Content-Type: application/json\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    async with server:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"


async def _ask(llm: OpenAIChatLLM) -> None:
    await llm.open()
    try:
        async for _ in llm.stream(
            [ChatMessage(role=Role.USER, text="hi")], [], GenerationSettings()
        ):
            pass
    finally:
        await llm.aclose()


async def test_pipeline_https_trusts_ssl_cert_file_and_reports_429_typed(
    ca: TestCA, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    async with https_429(ca.server_context(("127.0.0.1",))) as base_url:
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        with pytest.raises(CertificateRejected, match="untrusted certificate"):
            await _ask(OpenAIChatLLM(model="m", base_url=base_url, api_key=KEY))
        monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_path))
        with pytest.raises(RateLimited) as info:
            await _ask(OpenAIChatLLM(model="m", base_url=base_url, api_key=KEY))
    assert info.value.retry_after == 12.0
    assert "slow down" in str(info.value)
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert all(KEY not in record.getMessage() for record in caplog.records)


async def test_pipeline_https_wrong_host_is_typed(
    ca: TestCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_path))
    async with https_429(ca.server_context(("llm.example.test",))) as base_url:
        with pytest.raises(CertificateRejected) as info:
            await _ask(OpenAIChatLLM(model="m", base_url=base_url, api_key=KEY))
    assert info.value.reason == "hostname mismatch"


@pytest.fixture
def hashed_ca_dir(ca: TestCA, tmp_path: Path) -> Path:
    """The CA in a hashed directory (``openssl rehash``), as distributions lay them out."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to hash the CA directory")
    certs = tmp_path / "certs"
    certs.mkdir()
    shutil.copy(ca.ca_path, certs / "test-ca.pem")
    subprocess.run([openssl, "rehash", str(certs)], check=True, capture_output=True)
    return certs


async def test_wss_without_ssl_context_honours_ssl_cert_dir(
    ca: TestCA, hashed_ca_dir: Path, monkeypatch: pytest.MonkeyPatch, opener: Connector
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    async with wss_echo(ca.server_context(("127.0.0.1",))) as url:
        monkeypatch.setenv("SSL_CERT_DIR", str(hashed_ca_dir))
        conn = await opener(url, {}, timeout=5)
        assert await conn.recv() == "hello over tls"
        await conn.close()
