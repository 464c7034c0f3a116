"""Resume tokens: signed, expiring, good for one generation of one call.

A token names a call and the generation it may claim
(:meth:`~voxengine.serve.state.store.StateStore.claim`), with an expiry, signed with
HMAC-SHA256 under the deployment's secret (every worker of a deployment shares it).
The caller's client holds it and presents it when it reconnects, to any worker. The
signature proves the server issued it; the store's generation makes it single-use
(a resume issues the next token); the expiry bounds how long a stolen one is worth
anything. Tokens and the secret never appear in logs, reprs or error messages.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import final

from voxengine.errors import ConfigError
from voxengine.serve.errors import TokenRefused

__all__ = ["ResumeTokens", "TokenRefused"]

#: Shortest deployment secret accepted, in bytes.
MIN_SECRET_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@final
class ResumeTokens:
    """Issues and checks resume tokens.

    Args:
        secret: the deployment secret (at least 16 bytes), shared by every worker.
        ttl: seconds a token stays valid after it is issued.
        clock: wall-clock seconds (workers on different machines compare expiries).

    Raises:
        ConfigError: a short secret or a non-positive ``ttl``.
    """

    def __init__(
        self, secret: str | bytes, *, ttl: float = 3600.0, clock: Callable[[], float] = time.time
    ) -> None:
        key = secret.encode() if isinstance(secret, str) else bytes(secret)
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigError(f"the resume token secret needs {MIN_SECRET_BYTES}+ bytes")
        if ttl <= 0:
            raise ConfigError("the resume token ttl must be positive")
        self._key = hashlib.sha256(b"voxengine-resume-token\0" + key).digest()
        self.ttl = ttl
        self._clock = clock

    def __repr__(self) -> str:
        return f"ResumeTokens(ttl={self.ttl})"

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, call_id: str, generation: int) -> str:
        """A token that lets its holder claim generation ``generation`` of ``call_id``."""
        claims = {"c": call_id, "g": generation, "e": round(self._clock() + self.ttl, 3)}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str) -> tuple[str, int]:
        """The ``(call_id, generation)`` ``token`` grants.

        Raises:
            TokenRefused: malformed, not signed with this secret, or expired (the
                message never quotes the token).
        """
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 1024:
            raise TokenRefused("malformed resume token")
        body, signature = token.split(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            raise TokenRefused("resume token signature does not match")
        try:
            claims = json.loads(_unb64(body))
            call_id, generation, expiry = claims["c"], claims["g"], claims["e"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TokenRefused("malformed resume token") from exc
        if (
            not isinstance(call_id, str)
            or not isinstance(generation, int)
            or not isinstance(expiry, int | float)
        ):
            raise TokenRefused("malformed resume token")
        if expiry <= self._clock():
            raise TokenRefused("resume token expired")
        return call_id, generation
