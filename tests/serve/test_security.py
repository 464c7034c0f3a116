"""Tokens and the token endpoint: refusals are typed, counted, and leak no secret."""

from __future__ import annotations

import httpx
import pytest

from voxengine.errors import ConfigError
from voxengine.serve import TokenIssuer, TokenRefused
from voxengine.serve.client import CallEnded, open_call

from .conftest import SECRET, Served, serve


async def _refused(served: Served, token: str | None) -> CallEnded:
    with pytest.raises(CallEnded) as refused:
        async with open_call(served.ws, token or ""):
            pass
    return refused.value


async def test_no_token_is_refused(served: Served) -> None:
    refused = await _refused(served, None)
    assert (refused.reason, refused.code, refused.detail) == ("unauthorized", 4401, "missing token")


async def test_forged_token_is_refused(served: Served) -> None:
    other = TokenIssuer("another-deployment-secret-xyz").issue("mallory")
    refused = await _refused(served, other)
    assert refused.code == 4401
    assert "forged" in refused.detail
    genuine = await served.token()
    tampered = genuine[:-2] + ("AA" if not genuine.endswith("AA") else "BB")
    assert "forged" in (await _refused(served, tampered)).detail
    assert "malformed" in (await _refused(served, "not-a-token")).detail


async def test_expired_and_reused_tokens_are_refused(served: Served) -> None:
    expired = served.board.tokens.issue("alice", ttl=-1.0)
    assert "expired" in (await _refused(served, expired)).detail
    token = await served.token()
    async with open_call(served.ws, token) as call:
        assert call.call_id
    assert "already used" in (await _refused(served, token)).detail


async def test_token_of_another_scope_is_forbidden(served: Served) -> None:
    resume = served.board.tokens.issue("alice", scope="resume", call_id="c-1")
    refused = await _refused(served, resume)
    assert (refused.reason, refused.code) == ("forbidden", 4403)


async def test_refusals_are_counted_and_no_token_reaches_the_logs(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    forged = TokenIssuer("another-deployment-secret-xyz").issue("mallory")
    await _refused(served, forged)
    async with httpx.AsyncClient(base_url=served.http) as http:
        metrics = (await http.get("/metrics")).text
    assert 'voxengine_calls_refused_total{reason="unauthorized"} 1.0' in metrics
    assert forged not in caplog.text
    assert forged.split(".")[2] not in caplog.text
    assert SECRET not in caplog.text


async def test_token_endpoint_with_the_secret_names_the_subject(served: Served) -> None:
    token = await served.token(secret=SECRET, subject="user-7")
    assert served.board.tokens.verify(token, consume=False).subject == "user-7"
    async with httpx.AsyncClient(base_url=served.http) as http:
        wrong = await http.post("/token", headers={"authorization": "Bearer wrong-secret"})
        assert wrong.status_code == 401
        cross = await http.post("/token", headers={"origin": "https://evil.example"})
        assert cross.status_code == 403
        page = await http.post("/token", headers={"origin": served.http})
        assert page.status_code == 200
        assert page.headers["cache-control"] == "no-store"
        assert SECRET not in page.text


async def test_without_public_tokens_only_the_secret_gets_tokens() -> None:
    async with serve(public_tokens=False) as served:
        async with httpx.AsyncClient(base_url=served.http) as http:
            assert (await http.post("/token")).status_code == 401
        assert await served.token(secret=SECRET)


async def test_page_tokens_are_rate_limited_per_address() -> None:
    from .conftest import small_limits

    async with (
        serve(limits=small_limits(token_requests_per_minute=3)) as served,
        httpx.AsyncClient(base_url=served.http) as http,
    ):
        codes = [(await http.post("/token")).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]


def test_issuer_contract() -> None:
    now = [1000.0]
    issuer = TokenIssuer("s" * 16, ttl=30, clock=lambda: now[0])
    token = issuer.issue("bob")
    assert "s" * 16 not in repr(issuer)
    claims = issuer.verify(token, consume=False)
    assert (claims.subject, claims.scope, claims.expires) == ("bob", "call", 1030.0)
    now[0] = 1030.0
    with pytest.raises(TokenRefused, match="expired"):
        issuer.verify(token)
    assert issuer.is_secret("s" * 16)
    assert not issuer.is_secret("s" * 15)
    with pytest.raises(ConfigError, match="16 characters"):
        TokenIssuer("short")
