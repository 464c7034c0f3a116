"""TLS the way users get it: ``wss://`` with NO ``ssl_context``, trust from ``SSL_CERT_FILE``.

A test CA signs the fake servers' certificates; the client learns about the CA only
through the ``SSL_CERT_FILE`` environment variable (scoped to each test with
monkeypatch), exactly as a user behind a corporate proxy would configure it. The
OpenAI and Gemini fakes (sans-I/O state machines from :mod:`voxengine.testing`) are
served over real TLS sockets on 127.0.0.1 and driven through the public API.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voxengine import (
    CertificateRejected,
    ConnectFailed,
    ResponseDone,
    TLSFailed,
    TranscriptDone,
    VoiceEngine,
    VoiceEngineConfig,
)
from voxengine.events import ResponseStatus, Role
from voxengine.providers.gemini import GeminiConfig, GeminiProvider
from voxengine.providers.openai import OpenAIConfig, OpenAIProvider
from voxengine.session import is_retryable
from voxengine.testing import FakeGeminiServer, FakeOpenAIServer
from voxengine.transport.backends import TRANSPORTS

from ..conftest import collect_until
from ._tls_ca import TestCA, TLSServer, serve_tls_peer

KEY = "sk-tls-test-0123456789"


@pytest.fixture
def ca(tmp_path: Path) -> TestCA:
    (tmp_path / "trusted").mkdir()
    return TestCA(tmp_path / "trusted", name="trusted")


@pytest.fixture
def trust_ca(ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> TestCA:
    """The test CA is trusted through SSL_CERT_FILE only (SSL_CERT_DIR cleared)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca.ca_path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return ca


@pytest.fixture
async def openai_tls(ca: TestCA) -> AsyncIterator[TLSServer]:
    async with serve_tls_peer(FakeOpenAIServer, ca.server_context(("127.0.0.1",))) as server:
        yield server


@pytest.fixture
async def gemini_tls(ca: TestCA) -> AsyncIterator[TLSServer]:
    async with serve_tls_peer(FakeGeminiServer, ca.server_context(("127.0.0.1",))) as server:
        yield server


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_openai_engine_text_turn_over_tls_trusted_by_ssl_cert_file(
    trust_ca: TestCA, openai_tls: TLSServer, transport: str
) -> None:
    config = VoiceEngineConfig(
        provider="openai",
        api_key=KEY,
        base_url=f"{openai_tls.root}/v1",
        retry_count=0,
        transport=transport,
    )
    async with VoiceEngine(config) as engine:
        assert engine.provider.config.ssl_context is None
        assert engine.provider.config.transport == transport
        await engine.send_text("hello over tls")
        done = await engine.events.wait_for(ResponseDone, timeout=15)
        assert done.status is ResponseStatus.COMPLETED
        assert engine.history[-1].text == "You said: hello over tls"
    (peer,) = openai_tls.peers
    assert isinstance(peer, FakeOpenAIServer)


async def test_gemini_provider_text_turn_over_tls_trusted_by_ssl_cert_file(
    trust_ca: TestCA, gemini_tls: TLSServer
) -> None:
    provider = GeminiProvider(GeminiConfig(api_key=KEY, base_url=gemini_tls.root))
    await provider.connect(retry_count=0)
    try:
        await provider.send_text("hello gemini")
        events = await collect_until(provider.events(), ResponseDone, timeout=15)
    finally:
        await provider.disconnect()
    said = [e for e in events if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT]
    assert said[0].transcript == "You said: hello gemini"
    assert isinstance(events[-1], ResponseDone)


async def test_openai_provider_text_turn_over_tls(trust_ca: TestCA, openai_tls: TLSServer) -> None:
    provider = OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=f"{openai_tls.root}/v1"))
    await provider.connect(retry_count=0)
    try:
        await provider.send_text("plain provider")
        events = await collect_until(provider.events(), ResponseDone, timeout=15)
    finally:
        await provider.disconnect()
    said = [e for e in events if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT]
    assert [e.transcript for e in said] == ["You said: plain provider"]


async def test_without_ssl_cert_file_the_test_ca_is_untrusted_and_nothing_leaks(
    trust_ca: TestCA, openai_tls: TLSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Trust comes from the variable alone, and a cached context does not outlive it."""
    config = OpenAIConfig(api_key=KEY, base_url=f"{openai_tls.root}/v1")
    provider = OpenAIProvider(config)
    await provider.connect(retry_count=0)  # trusted through SSL_CERT_FILE
    await provider.disconnect()
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(CertificateRejected) as info:
        await OpenAIProvider(config).connect(retry_count=0)
    assert info.value.reason == "untrusted certificate"
    assert "untrusted certificate" in str(info.value)
    assert len(openai_tls.peers) == 1  # the refused connection never reached the upgrade


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_wrong_hostname_is_a_typed_error_that_says_so(
    trust_ca: TestCA, tmp_path: Path, transport: str
) -> None:
    context = trust_ca.server_context(("api.example.test",))  # trusted CA, another host
    async with serve_tls_peer(FakeOpenAIServer, context) as server:
        config = OpenAIConfig(api_key=KEY, base_url=f"{server.root}/v1", transport=transport)
        provider = OpenAIProvider(config)
        with pytest.raises(CertificateRejected) as info:
            await provider.connect(retry_count=3)
    exc = info.value
    assert exc.reason == "hostname mismatch"
    assert "certificate verify failed: hostname mismatch" in str(exc)
    assert isinstance(exc, TLSFailed)
    assert isinstance(exc, ConnectFailed)
    assert isinstance(exc.__cause__, ssl.SSLCertVerificationError)
    assert not is_retryable(exc)  # retrying cannot fix a certificate
    assert server.peers == []
    assert KEY not in str(exc)
    assert KEY not in repr(exc)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_untrusted_certificate_is_a_typed_error_that_says_so(
    trust_ca: TestCA, tmp_path: Path, transport: str
) -> None:
    (tmp_path / "rogue").mkdir()
    rogue = TestCA(tmp_path / "rogue", name="rogue")  # signs, but is not in SSL_CERT_FILE
    async with serve_tls_peer(FakeGeminiServer, rogue.server_context(("127.0.0.1",))) as server:
        config = GeminiConfig(api_key=KEY, base_url=server.root, transport=transport)
        provider = GeminiProvider(config)
        with pytest.raises(CertificateRejected) as info:
            await provider.connect(retry_count=0)
    assert info.value.reason == "untrusted certificate"
    assert "certificate verify failed: untrusted certificate" in str(info.value)
    assert server.peers == []


async def test_ssl_context_stays_an_override(ca: TestCA, openai_tls: TLSServer) -> None:
    """No SSL_CERT_FILE here: an explicit context is the only trust."""
    context = ssl.create_default_context(cafile=str(ca.ca_path))
    provider = OpenAIProvider(
        OpenAIConfig(api_key=KEY, base_url=f"{openai_tls.root}/v1", ssl_context=context)
    )
    await provider.connect(retry_count=0)
    try:
        assert provider.is_connected
    finally:
        await provider.disconnect()
    assert "SSLContext" not in repr(provider.config)


async def test_tls_server_that_never_answers_the_handshake_is_bounded(
    trust_ca: TestCA,
) -> None:
    """TCP accepted, TLS ClientHello never answered: ConnectTimeout within the bound."""

    client_gone = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers; returns when the client gives up
        client_gone.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        provider = OpenAIProvider(
            OpenAIConfig(api_key=KEY, base_url=f"wss://127.0.0.1:{port}/v1", connect_timeout=0.5)
        )
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(ConnectFailed, match=r"within 0\.5 s") as info:
            await provider.connect(retry_count=0)
        assert loop.time() - start < 10
        # the client closed its socket when it gave up (no socket left behind)
        await asyncio.wait_for(client_gone.wait(), timeout=10)
    assert type(info.value).__name__ == "ConnectTimeout"
