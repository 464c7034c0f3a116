"""TLS for every connection voxengine opens: the default verifying context and
the typed errors of a failed handshake.

``wss://`` (WebSockets) and ``https://`` (the pipeline's HTTP stages) share
:func:`default_ssl_context`, so one setting — the system trust store, or
``$SSL_CERT_FILE`` / ``$SSL_CERT_DIR`` for a corporate proxy's CA — covers both.
"""

from __future__ import annotations

import os
import ssl

from voxengine.errors import CertificateRejected, TLSFailed

__all__ = ["default_ssl_context", "tls_failure"]

#: OpenSSL verify codes (``X509_V_ERR_*``) and the words a user understands.
_VERIFY_REASONS = {
    62: "hostname mismatch",  # HOSTNAME_MISMATCH
    63: "hostname mismatch",  # EMAIL_MISMATCH
    64: "hostname mismatch",  # IP_ADDRESS_MISMATCH
    2: "untrusted certificate",  # UNABLE_TO_GET_ISSUER_CERT
    18: "untrusted certificate",  # DEPTH_ZERO_SELF_SIGNED_CERT
    19: "untrusted certificate",  # SELF_SIGNED_CERT_IN_CHAIN
    20: "untrusted certificate",  # UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21: "untrusted certificate",  # UNABLE_TO_VERIFY_LEAF_SIGNATURE
    9: "certificate not yet valid",  # CERT_NOT_YET_VALID
    10: "expired certificate",  # CERT_HAS_EXPIRED
    23: "revoked certificate",  # CERT_REVOKED
}

_DEFAULT_CONTEXTS: dict[tuple[str | None, str | None], ssl.SSLContext] = {}


def default_ssl_context() -> ssl.SSLContext:
    """The verifying TLS context ``wss://`` URLs get when no ``ssl_context`` is given.

    :func:`ssl.create_default_context`: certificates are checked against the system
    trust store, or against ``$SSL_CERT_FILE`` / ``$SSL_CERT_DIR`` when set (OpenSSL
    reads them when the context is made, e.g. for a corporate proxy's CA). Building
    one costs tens of milliseconds, so a context is kept per value of those two
    variables: changing either one gives a fresh context.
    """
    key = (os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
    context = _DEFAULT_CONTEXTS.get(key)
    if context is None:
        if len(_DEFAULT_CONTEXTS) >= 8:
            _DEFAULT_CONTEXTS.clear()
        context = _DEFAULT_CONTEXTS[key] = _fresh_context()
    return context


def _fresh_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    if context.cert_store_stats()["x509_ca"] == 0 and not _has_ca_dir():
        # No system store (e.g. a python.org build on macOS before "Install
        # Certificates"): fall back to certifi's bundle, which httpx depends on.
        try:
            import certifi
        except ImportError:  # pragma: no cover - certifi comes with httpx
            return context
        context.load_verify_locations(cafile=certifi.where())
    return context


def _has_ca_dir() -> bool:
    capath = ssl.get_default_verify_paths().capath
    if capath is None or not os.path.isdir(capath):
        return False
    with os.scandir(capath) as entries:
        return any(entries)


def tls_failure(exc: ssl.SSLError, where: str) -> TLSFailed:
    """The typed error for a failed TLS handshake with ``where`` (``scheme://host:port``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = exc.verify_message or exc.reason or str(exc)
        reason = _VERIFY_REASONS.get(exc.verify_code, str(detail))
        return CertificateRejected(
            f"TLS certificate verify failed: {reason} ({detail}) connecting to {where}",
            reason=reason,
        )
    return TLSFailed(f"TLS handshake with {where} failed: {exc.reason or exc}")
