"""What a call needs to continue on another worker, and where it is kept.

* :mod:`~voxengine.serve.state.record` — :class:`CallRecord`: the call's settings (no
  secrets), its conversation (:class:`~voxengine.session.snapshot.ConversationSnapshot`)
  and what was in progress; JSON in, JSON out, validated.
* :mod:`~voxengine.serve.state.store` — the :class:`StateStore` protocol and its
  in-memory default :class:`MemoryStore` (one process).
* :mod:`~voxengine.serve.state.redis_store` — :class:`RedisStore` over redis-py asyncio, for
  many workers (imported lazily: ``import voxengine`` never imports redis).
* :mod:`~voxengine.serve.state.token` — short-lived signed resume tokens.
* :mod:`~voxengine.serve.state.keeper` — :class:`CallStateKeeper`: saves one call's
  record as it goes, refreshes its expiry, and survives the store going away.

Nothing here holds an API key: settings with secret-looking names are refused, and
every value the process knows to be a secret is masked before it is written.
"""

from __future__ import annotations

from voxengine.serve.state.keeper import CallStateKeeper, Durability
from voxengine.serve.state.record import CallRecord, InProgress
from voxengine.serve.state.store import (
    MemoryStore,
    StateStore,
    StateUnavailable,
    open_store,
)
from voxengine.serve.state.token import ResumeTokens, TokenRefused

__all__ = [
    "CallRecord",
    "CallStateKeeper",
    "Durability",
    "InProgress",
    "MemoryStore",
    "ResumeTokens",
    "StateStore",
    "StateUnavailable",
    "TokenRefused",
    "open_store",
]
