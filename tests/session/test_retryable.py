"""Which connect failures ``connect()`` (and the reconnect loop) try again: is_retryable."""

from __future__ import annotations

import pytest

from voxengine.errors import (
    AuthenticationFailed,
    CertificateRejected,
    ConnectFailed,
    ConnectionClosedError,
    ConnectTimeout,
    HandshakeClosed,
    ProviderError,
    RateLimited,
    SessionExpired,
    TLSFailed,
    UpgradeRateLimited,
    UpgradeRefused,
    VoxError,
)
from voxengine.session import is_retryable


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (ConnectFailed("connection refused by ws://h:1"), True),
        (ConnectTimeout("no WebSocket connection within 1 s"), True),
        (TLSFailed("TLS handshake failed: reset"), True),
        (HandshakeClosed(1011, "internal error"), True),
        (HandshakeClosed(None, "connection closed"), True),
        (UpgradeRefused("HTTP 500", status=500), True),
        (UpgradeRefused("HTTP 503", status=503), True),
        (UpgradeRefused("HTTP 408", status=408), True),
        (UpgradeRateLimited("HTTP 429", retry_after=3.0), True),  # after retry_after
        (UpgradeRateLimited("HTTP 429"), True),
        (UpgradeRefused("HTTP 404", status=404), False),
        (UpgradeRefused("HTTP 400", status=400), False),
        (AuthenticationFailed("HTTP 401"), False),
        (CertificateRejected("verify failed", reason="hostname mismatch"), False),
        (RateLimited("insufficient_quota", "quota"), False),  # the service's own refusal
        (ProviderError("invalid_model", "no such model"), False),
        (SessionExpired("session_expired", "60 min"), False),
        (ConnectionClosedError(1006, ""), False),  # not a connect failure
        (VoxError("other"), False),
    ],
)
def test_is_retryable(exc: VoxError, retryable: bool) -> None:
    assert is_retryable(exc) is retryable


def test_upgrade_rate_limited_is_both_kinds_and_carries_retry_after() -> None:
    exc = UpgradeRateLimited("HTTP 429 on the upgrade", retry_after=2.5)
    assert isinstance(exc, RateLimited)
    assert isinstance(exc, ConnectFailed)
    assert isinstance(exc, UpgradeRefused)
    assert (exc.retry_after, exc.status, exc.code) == (2.5, 429, "rate_limited")
    assert str(exc) == "HTTP 429 on the upgrade"
    assert RateLimited("c", "m").retry_after is None  # the contract: always present
