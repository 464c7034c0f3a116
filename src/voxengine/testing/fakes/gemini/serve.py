"""Serve :class:`~voxengine.testing.FakeGeminiServer` over real WebSockets on loopback.

:func:`run_fake_gemini_server` listens on ``ws://`` (or ``wss://`` with a throwaway
self-signed certificate, which the official SDK needs since it always forces ``wss``,
gemini-live.md §10) at the §2 path, one fake per connection, all sharing one
:class:`~voxengine.testing.FakeGeminiSessions` so a later connection can resume a
session by handle (§7).

Connections are driven by :func:`~voxengine.testing.serve_fake_peer`, like every fake.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.server import ServerConnection

from voxengine.testing._driver import ServerHandle, serve_websocket
from voxengine.testing._faults import Fault, FaultInjector
from voxengine.transport.websocket import redacting_logger

from .config import _DEFAULT_CONFIG, FakeGeminiConfig, FakeGeminiSessions
from .server import FakeGeminiServer

__all__ = ["FakeGeminiServerHandle", "run_fake_gemini_server"]

_MAX_FRAME_BYTES = 32 * 2**20


@dataclass(frozen=True, slots=True)
class _Certificate:
    cert_path: Path
    key_path: Path


def _self_signed(directory: Path, host: str) -> _Certificate:
    """A one-day certificate for ``host`` (and localhost/127.0.0.1), PEM files in ``directory``.

    Uses the ``cryptography`` package when installed, else the ``openssl`` command.

    Raises:
        RuntimeError: neither is available.
    """
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    names = {host, "localhost", "127.0.0.1"}
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            raise RuntimeError(
                "TLS needs the 'cryptography' package or the openssl command"
            ) from None
        alt = ",".join(f"IP:{name}" if _is_ip(name) else f"DNS:{name}" for name in sorted(names))
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key_path), "-out", str(cert_path), "-days", "1",
             "-subj", "/CN=voxengine fake gemini", "-addext", f"subjectAltName={alt}"],
            check=True,
            capture_output=True,
        )  # fmt: skip
        return _Certificate(cert_path, key_path)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "voxengine fake gemini")])
    now = datetime.datetime.now(datetime.UTC)
    alt_names: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(name)) if _is_ip(name) else x509.DNSName(name)
        for name in sorted(names)
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return _Certificate(cert_path, key_path)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(eq=False)
class FakeGeminiServerHandle(ServerHandle):
    """A running loopback fake Gemini Live server.

    Attributes:
        host: the bound host.
        port: the bound TCP port.
        tls: whether it speaks ``wss://``.
        ssl_context: a client context that trusts the server's certificate (TLS only).
        connections: one :class:`FakeGeminiServer` per accepted connection, in order.
        sessions: the resumable sessions shared by all connections.
    """

    tls: bool = False
    ssl_context: ssl.SSLContext | None = None
    connections: list[FakeGeminiServer] = field(default_factory=list)
    sessions: FakeGeminiSessions = field(default_factory=FakeGeminiSessions)

    @property
    def url(self) -> str:
        """The service root for ``GeminiConfig(base_url=...)``, e.g. ``ws://127.0.0.1:PORT``."""
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}"

    def live_url(self, api_version: str = "v1beta") -> str:
        """The full §2 endpoint for ``api_version``."""
        return (
            f"{self.url}/ws/google.ai.generativelanguage.{api_version}"
            ".GenerativeService.BidiGenerateContent"
        )


@contextlib.asynccontextmanager
async def run_fake_gemini_server(
    config: FakeGeminiConfig = _DEFAULT_CONFIG,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tls: bool = False,
    pace_seconds: float = 0.0,
    faults: Sequence[Fault] = (),
) -> AsyncIterator[FakeGeminiServerHandle]:
    """Serve fake Gemini Live connections on ``host:port`` (``port=0``: any free port).

    With ``tls`` a self-signed certificate is made for this run (``handle.ssl_context``
    trusts it). ``pace_seconds`` is the delay per message of a response when
    ``config.paced`` is set. Every connection gets its own :class:`FakeGeminiServer`,
    appended to ``handle.connections``; ``faults`` inject network and service
    failures (:class:`~voxengine.testing.Fault`). The server stops when the context exits.
    """
    handle = FakeGeminiServerHandle(host=host, port=port, tls=tls)

    async def handler(connection: ServerConnection) -> None:
        fake = FakeGeminiServer(config, handle.sessions)
        injector = FaultInjector(faults, len(handle.connections), "gemini") if faults else None
        handle.connections.append(fake)
        pace = pace_seconds if config.paced else None
        await serve_websocket(connection, fake, pace_seconds=pace, faults=injector)

    with tempfile.TemporaryDirectory(prefix="voxengine-fake-gemini-") as tmp:
        server_ssl: ssl.SSLContext | None = None
        if tls:
            cert = _self_signed(Path(tmp), host)
            server_ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_ssl.load_cert_chain(cert.cert_path, cert.key_path)
            handle.ssl_context = ssl.create_default_context(cafile=str(cert.cert_path))
        await handle.listen(
            handler,
            ssl=server_ssl,
            max_size=_MAX_FRAME_BYTES,
            logger=redacting_logger("voxengine.testing.fake_gemini"),
        )
        try:
            yield handle
        finally:
            await handle.close()
