"""Resume tokens: signed, expiring, never quoted in errors."""

from __future__ import annotations

import pytest

from voxengine.errors import ConfigError
from voxengine.serve.state import ResumeTokens, TokenRefused

SECRET = "deployment-secret-0123456789"


def test_a_token_names_its_call_and_generation() -> None:
    tokens = ResumeTokens(SECRET)
    assert tokens.verify(tokens.issue("call-7", 3)) == ("call-7", 3)
    assert SECRET not in repr(tokens)


def test_forged_expired_and_malformed_tokens_are_refused() -> None:
    now = [1000.0]
    tokens = ResumeTokens(SECRET, ttl=10, clock=lambda: now[0])
    token = tokens.issue("call-7", 0)
    other = ResumeTokens("another-secret-0123456789", clock=lambda: now[0])
    with pytest.raises(TokenRefused, match="signature"):
        other.verify(token)
    body, signature = token.split(".")
    forged = ResumeTokens(SECRET, clock=lambda: now[0]).issue("call-8", 0).split(".")[0]
    with pytest.raises(TokenRefused, match="signature"):
        tokens.verify(f"{forged}.{signature}")
    for bad in ("", "x", "a.b.c", "." * 2000, f"{body}."):
        with pytest.raises(TokenRefused) as caught:
            tokens.verify(bad)
        assert token not in str(caught.value)
    now[0] += 11
    with pytest.raises(TokenRefused, match="expired"):
        tokens.verify(token)


def test_weak_secrets_are_refused() -> None:
    with pytest.raises(ConfigError):
        ResumeTokens("short")
    with pytest.raises(ConfigError):
        ResumeTokens(SECRET, ttl=0)
