"""How a Gemini Live close frame becomes an exception (gemini-live.md §9).

Pure: :func:`close_exception` maps a close code and reason the server sent to the
:mod:`voxengine.errors` class a caller can act on.
"""

from __future__ import annotations

import re

from voxengine.errors import (
    AuthenticationFailed,
    ConnectionClosedError,
    ConnectionClosedOK,
    ProviderError,
    RateLimited,
    VoxError,
)

__all__ = ["close_exception"]

_AUTH_REASON = re.compile(r"api[ _-]?key|permission[ _]denied|unauthenticated|credential", re.I)
_QUOTA_REASON = re.compile(r"quota|rate[ _-]?limit|resource[ _]exhausted|too many requests", re.I)


def close_exception(code: int | None, reason: str) -> VoxError:
    """The exception for a close frame the server initiated (§9).

    * any code whose reason names the API key / credentials → :class:`AuthenticationFailed`
      (the Developer API reports a bad or expired key as 1007);
    * 1007 → ``ProviderError("invalid_argument" | "failed_precondition")`` (bad setup,
      bad message, empty manual activity);
    * 1008 → ``ProviderError("not_found" | "policy_violation")`` (unknown model, ...);
    * 1011 with a quota/rate reason → :class:`RateLimited` (``"resource_exhausted"``),
      otherwise ``ProviderError("internal" | "unavailable")``;
    * 1000/1001 → :class:`ConnectionClosedOK`; anything else (1006, ``None``) →
      :class:`ConnectionClosedError`.
    """
    text = reason or ""
    if code in (1007, 1008, 1011) and _AUTH_REASON.search(text):
        return AuthenticationFailed(f"the server refused the API key (close {code}: {text})")
    if code == 1007:
        precondition = "precondition" in text.lower()
        name = "failed_precondition" if precondition else "invalid_argument"
        return ProviderError(name, text or "Request contains an invalid argument.")
    if code == 1008:
        name = "not_found" if "not found" in text.lower() else "policy_violation"
        return ProviderError(name, text or "policy violation")
    if code == 1011:
        if _QUOTA_REASON.search(text):
            return RateLimited("resource_exhausted", text)
        name = "unavailable" if "unavailable" in text.lower() else "internal"
        return ProviderError(name, text or "Internal error occurred.")
    if code in (1000, 1001):
        return ConnectionClosedOK(code, reason)
    return ConnectionClosedError(code, reason)
