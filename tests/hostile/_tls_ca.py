"""A throw-away certificate authority and a TLS WebSocket server for the hostile tests.

:class:`TestCA` makes a CA (``ca.pem``) and server certificates it signs, with the
``cryptography`` package (a dev dependency). :func:`serve_tls_peer` serves one
sans-I/O fake peer per connection (the FakeOpenAIServer / FakeGeminiServer state
machines from :mod:`voxengine.testing`) over ``wss://`` with such a certificate,
through the same driver the plain fake servers use. Nothing here trusts anything:
the client must be told about ``ca.pem`` (the tests do it through ``SSL_CERT_FILE``).
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.server import ServerConnection, serve

from voxengine.testing._driver import FakePeer, serve_websocket

__all__ = ["TLSServer", "TestCA", "serve_tls_peer"]


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass
class TestCA:
    """A CA whose certificate is written to ``directory / "<name>-ca.pem"``."""

    __test__ = False  # not a pytest class

    directory: Path
    name: str = "voxengine-test"
    ca_path: Path = field(init=False)
    _key: ec.EllipticCurvePrivateKey = field(init=False, repr=False)
    _cert: x509.Certificate = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = _name(f"{self.name} root CA")
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_path = self.directory / f"{self.name}-ca.pem"
        self.ca_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def server_context(self, names: tuple[str, ...]) -> ssl.SSLContext:
        """A server-side context with a certificate for ``names`` (DNS names or IPs)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(names[0]))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        stem = self.directory / f"{self.name}-{len(list(self.directory.iterdir()))}"
        cert_path, key_path = stem.with_suffix(".crt"), stem.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_pem_key(key))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        return context


@dataclass
class TLSServer:
    """A running ``wss://`` server: ``root`` is ``wss://127.0.0.1:PORT``."""

    port: int
    peers: list[FakePeer] = field(default_factory=list)

    @property
    def root(self) -> str:
        return f"wss://127.0.0.1:{self.port}"


@contextlib.asynccontextmanager
async def serve_tls_peer(
    make_peer: Callable[[], FakePeer], context: ssl.SSLContext
) -> AsyncIterator[TLSServer]:
    """Serve ``make_peer()`` per connection over TLS on 127.0.0.1 (any free port)."""
    handle = TLSServer(port=0)

    async def handler(connection: ServerConnection) -> None:
        peer = make_peer()
        handle.peers.append(peer)
        await serve_websocket(connection, peer, pace_seconds=0.0, faults=None)

    async with serve(handler, "127.0.0.1", 0, ssl=context) as server:
        handle.port = next(iter(server.sockets)).getsockname()[1]
        yield handle
