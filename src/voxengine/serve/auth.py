"""Deployment secret and signed, short-lived, single-use call tokens.

A browser never sees the deployment secret nor any provider API key: it gets a
*token* from the token endpoint (``POST /token``), valid for a few seconds and for
one call. The application's own backend, holding the secret, can ask for tokens on
behalf of its signed-in users (``Authorization: Bearer <secret>``); a deployment that
serves its page to anyone (the default of ``voxengine serve`` on localhost) lets the
page ask without the secret, rate-limited per client address.

Token format (``v1.<claims>.<signature>``, both parts base64url without padding):
``claims`` is compact JSON ``{"scp": scope, "sub": subject, "exp": unix seconds,
"jti": random id, "cid": call id or null}``; ``signature`` is HMAC-SHA256 over
``"v1." + claims`` with a key derived from the deployment secret. Verification uses
:func:`hmac.compare_digest`. A token's ``jti`` is remembered until it expires, so
one token opens one call (``scope="call"``). ``scope="resume"`` with a ``cid`` is
reserved for resuming a call (issue 18).

Nothing here logs or repr()s a token or the secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, final

from voxengine.errors import ConfigError
from voxengine.serve.errors import CloseReason, TokenRefused

__all__ = ["Claims", "TokenIssuer", "new_secret"]

_VERSION: Final = "v1"
_MAX_TOKEN_CHARS: Final = 2048
#: Smallest deployment secret accepted, in characters.
MIN_SECRET_CHARS: Final = 16


def new_secret() -> str:
    """A fresh random deployment secret (256 bits, URL-safe text)."""
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True, kw_only=True)
class Claims:
    """What a verified token says.

    Attributes:
        scope: ``"call"`` (start a call) or ``"resume"`` (continue call ``call_id``).
        subject: who the call is for (a user id from the application, or the client
            address for page tokens); per-caller limits count by it.
        expires: expiry, Unix seconds.
        token_id: the random ``jti``.
        call_id: the call a resume token continues, else ``None``.
    """

    scope: str
    subject: str
    expires: float
    token_id: str
    call_id: str | None = None


@final
class TokenIssuer:
    """Issues and verifies call tokens for one deployment secret.

    Args:
        secret: the deployment secret (at least 16 characters). Every worker of a
            deployment must share it so any of them accepts a token.
        ttl: seconds a token stays valid (to open a call, not for the call's length).
        clock: Unix time source (tests).

    Raises:
        ConfigError: the secret is too short or ``ttl`` not positive.
    """

    def __init__(
        self, secret: str, *, ttl: float = 60.0, clock: Callable[[], float] = time.time
    ) -> None:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(f"the deployment secret needs at least {MIN_SECRET_CHARS} characters")
        if not ttl > 0:
            raise ConfigError("token ttl must be positive seconds")
        self._key = hashlib.sha256(b"voxengine-serve-token\0" + secret.encode()).digest()
        self._secret_digest = hashlib.sha256(secret.encode()).digest()
        self.ttl = float(ttl)
        self._clock = clock
        self._used: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"TokenIssuer(ttl={self.ttl})"

    def is_secret(self, candidate: str) -> bool:
        """Whether ``candidate`` is the deployment secret (constant-time comparison)."""
        digest = hashlib.sha256(candidate.encode(errors="replace")).digest()
        return hmac.compare_digest(digest, self._secret_digest)

    def issue(
        self,
        subject: str,
        *,
        scope: str = "call",
        call_id: str | None = None,
        ttl: float | None = None,
    ) -> str:
        """A signed token for ``subject``; valid ``ttl`` seconds (default :attr:`ttl`)."""
        claims = {
            "scp": scope,
            "sub": subject,
            "exp": round(self._clock() + (self.ttl if ttl is None else ttl), 3),
            "jti": secrets.token_urlsafe(12),
            "cid": call_id,
        }
        body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
        signed = f"{_VERSION}.{body}"
        return f"{signed}.{_b64(self._sign(signed))}"

    def _sign(self, text: str) -> bytes:
        return hmac.new(self._key, text.encode("ascii"), hashlib.sha256).digest()

    def verify(self, token: object, *, scope: str = "call", consume: bool = True) -> Claims:
        """The claims of a valid ``token`` for ``scope``.

        With ``consume`` (default) the token is spent: a second use is refused.

        Raises:
            TokenRefused: missing, malformed, forged (bad signature), expired, already
                used, or issued for another scope. The message says which, never the token.
        """
        if not token:
            raise TokenRefused("missing token")
        if not isinstance(token, str) or len(token) > _MAX_TOKEN_CHARS:
            raise TokenRefused("malformed token")
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            raise TokenRefused("malformed token")
        try:
            signature = _unb64(parts[2])
        except ValueError:
            raise TokenRefused("malformed token") from None
        if not hmac.compare_digest(signature, self._sign(f"{parts[0]}.{parts[1]}")):
            raise TokenRefused("forged token (bad signature)")
        try:
            raw = json.loads(_unb64(parts[1]))
            claims = Claims(
                scope=str(raw["scp"]),
                subject=str(raw["sub"]),
                expires=float(raw["exp"]),
                token_id=str(raw["jti"]),
                call_id=None if raw.get("cid") is None else str(raw["cid"]),
            )
        except (ValueError, KeyError, TypeError):
            raise TokenRefused("malformed token claims") from None
        now = self._clock()
        if claims.expires <= now:
            raise TokenRefused("expired token")
        if claims.scope != scope:
            raise TokenRefused(f"token for scope {claims.scope!r}", CloseReason.FORBIDDEN)
        if consume:
            self._forget_expired(now)
            if claims.token_id in self._used:
                raise TokenRefused("token already used")
            self._used[claims.token_id] = claims.expires
        return claims

    def _forget_expired(self, now: float) -> None:
        if len(self._used) > 1024:
            self._used = {jti: exp for jti, exp in self._used.items() if exp > now}
