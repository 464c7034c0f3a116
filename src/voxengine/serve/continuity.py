"""Calls that outlive their worker: :class:`Continuity`, one per server process.

It ties the serving layer to :mod:`voxengine.serve.state`:

* **New call.** After the call started, :meth:`Continuity.keep` starts a
  :class:`~voxengine.serve.state.CallStateKeeper` for it (generation 0) and
  :meth:`Continuity.ready_fields` puts a signed ``resume_token`` in the ``ready``
  message. The keeper saves the conversation as it goes.
* **Resume.** A client whose connection died (its worker was killed, the network
  dropped) says hello again, through the load balancer, to *any* worker, with the
  ``resume_token`` it holds. :meth:`Continuity.claim` verifies the token, claims the
  call's generation in the store (single use: a second resume with the same token is
  refused) and returns the record; the call opens with the same call id and the
  engine resumes the conversation (:meth:`voxengine.VoiceEngine.resume`). The client
  gets a new ``resume_token`` in ``ready`` and a ``resumed`` message
  (:meth:`resumed_message`) saying what came back and what did not: the user's turn
  in progress (its audio lived only in the dead worker) and an assistant reply that
  was cut off are reported as ``lost``, never dropped silently.
* **Store down.** With ``state_required`` off (default) calls start with a warning and
  ``ready.durable: false``; with it on they are refused (``state_unavailable``).
* **Call tokens.** :meth:`Continuity.spend_token` records a call token's id (``jti``)
  in the store (Redis: ``SET NX`` expiring with the token), so a token captured and
  replayed against another worker is refused there (``already used``). The issuing
  process's own memory also refuses a second use. Store down: with ``state_required``
  the call is refused (``state_unavailable``); without it the call goes ahead with one
  warning per outage (tokens are single-use per worker until the store answers again).
* **The old copy.** If the worker that carried the call is still alive (a network
  split, not a crash), its next save is refused by the generation fence and its copy
  of the call closes (``going_away``: "resumed elsewhere").

The caller subject is stored with the call (``settings["caller"]``) so per-caller
limits keep counting after a resume. Nothing secret is stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

from voxengine.events import ItemKind
from voxengine.serve.auth import Claims
from voxengine.serve.errors import CallRefused, CloseReason, TokenRefused
from voxengine.serve.state import (
    CallRecord,
    CallStateKeeper,
    Durability,
    ResumeTokens,
    StateStore,
    StateUnavailable,
    open_store,
)
from voxengine.serve.state.keeper import WATCHED_EVENTS
from voxengine.session.snapshot import RestoreResult

__all__ = ["Continuity", "Resumption"]

logger = logging.getLogger("voxengine.serve.continuity")

#: Most history entries a ``resumed`` message replays to the client's transcript.
RESUMED_TRANSCRIPT_ENTRIES = 50


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Resumption:
    """A claimed call: the record to continue and the generation now held."""

    record: CallRecord
    generation: int

    @property
    def call_id(self) -> str:
        """The call's id (unchanged across workers)."""
        return self.record.call_id

    @property
    def caller(self) -> str:
        """The caller subject the call was opened for."""
        caller = self.record.settings.get("caller")
        return caller if isinstance(caller, str) else "unknown"


@final
class Continuity:
    """The state store, resume tokens and durability policy of one server process.

    Args:
        store: where call records live (a shared one for many workers).
        tokens: signs resume tokens with the deployment secret.
        ttl: seconds a record outlives its last refresh (the resume window).
        durability: refuse calls when the store is down (REQUIRED) or not.
        clock: wall-clock seconds (token expiries are Unix times).
    """

    def __init__(
        self,
        store: StateStore,
        tokens: ResumeTokens,
        *,
        ttl: float = 60.0,
        durability: Durability = Durability.BEST_EFFORT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.ttl = ttl
        self.durability = durability
        self.keepers: dict[str, CallStateKeeper] = {}
        self._clock = clock
        self._unchecked_tokens = False  # a token went unrecorded (store down): warned

    async def spend_token(self, claims: Claims) -> None:
        """Record that the call token ``claims`` came from opened a call, in the store
        every worker shares, until the token expires.

        Raises:
            TokenRefused: ``already used`` (on any worker of the deployment).
            CallRefused: ``state_unavailable``: the store does not answer and
                durability is required.
        """
        ttl = max(claims.expires - self._clock(), 1e-3)
        try:
            fresh = await self.store.spend(f"jti:{claims.token_id}", ttl)
        except StateUnavailable as exc:
            if self.durability is Durability.REQUIRED:
                raise CallRefused(
                    CloseReason.STATE_UNAVAILABLE, "cannot check the call token now"
                ) from exc
            if not self._unchecked_tokens:
                self._unchecked_tokens = True
                logger.warning(
                    "state store unavailable: call tokens are single-use on this worker "
                    "only until it answers (a token could open one call per worker): %s",
                    exc,
                )
            return
        if self._unchecked_tokens:
            self._unchecked_tokens = False
            logger.info("state store answers again: call tokens are single-use deployment-wide")
        if not fresh:
            raise TokenRefused("token already used")

    @classmethod
    def from_settings(
        cls, url: str | None, secret: str, *, ttl: float, required: bool, max_call_seconds: float
    ) -> Continuity:
        """A continuity on the store ``url`` names (see
        :func:`~voxengine.serve.state.open_store`).

        Resume tokens stay valid as long as a call may last plus the resume window
        (``max_call_seconds + ttl``); what really bounds a resume after a worker died is
        the record's expiry (``ttl``), and a token resumes once.
        """
        if required and not url:
            logger.warning("state_required without state_url: the in-memory store is used")
        return cls(
            open_store(url),
            ResumeTokens(secret, ttl=max_call_seconds + ttl),
            ttl=ttl,
            durability=Durability.REQUIRED if required else Durability.BEST_EFFORT,
        )

    async def claim(self, token: object) -> Resumption:
        """Verify a ``resume_token`` and take its call over.

        Raises:
            TokenRefused: malformed, forged or expired token; or the call is unknown
                (expired, ended) or already resumed with this token.
            CallRefused: ``state_unavailable`` when the store does not answer.
        """
        if not isinstance(token, str):
            raise TokenRefused("resume_token must be a string")
        call_id, generation = self.tokens.verify(token)
        try:
            record = await self.store.claim(call_id, generation, self.ttl)
        except StateUnavailable as exc:
            raise CallRefused(CloseReason.STATE_UNAVAILABLE, "cannot resume now") from exc
        if record is None:
            raise TokenRefused("the call is over, expired, or was already resumed")
        return Resumption(record=record, generation=generation + 1)

    async def keep(self, call: Any, caller: str, resumption: Resumption | None) -> None:
        """Start keeping ``call``'s state (a :class:`~voxengine.serve.call.Call`).

        Raises:
            CallRefused: ``state_unavailable`` when durability is required and the
                store does not answer.
        """
        settings: dict[str, str | int | float | bool | None] = {"caller": caller}
        if resumption is not None:
            settings = {**resumption.record.settings, "caller": caller}
        keeper = CallStateKeeper(
            self.store,
            call.call_id,
            call.engine.snapshot,
            settings=settings,
            ttl=self.ttl,
            generation=resumption.generation if resumption is not None else 0,
            durability=self.durability,
            on_superseded=lambda: call._close_soon(CloseReason.GOING_AWAY, "resumed elsewhere"),
        )
        call.engine.events.on(WATCHED_EVENTS, keeper.observe)
        try:
            await keeper.start()
        except StateUnavailable as exc:
            raise CallRefused(CloseReason.STATE_UNAVAILABLE, "state store unavailable") from exc
        self.keepers[call.call_id] = keeper

    async def release(self, call: Any) -> None:
        """The call ended here: delete its record after a hang-up; otherwise (the
        caller vanished, the server drains) leave it for a resume elsewhere."""
        keeper = self.keepers.pop(call.call_id, None)
        if keeper is None:
            return
        hung_up = call.close_reason is CloseReason.NORMAL and call.close_detail == "hang-up"
        ended = hung_up or call.close_reason in (CloseReason.TIME_LIMIT,)
        await keeper.aclose(ended=ended)

    def ready_fields(self, call_id: str) -> dict[str, Any]:
        """``resume_token`` (and ``durable``) for the ``ready`` message."""
        keeper = self.keepers.get(call_id)
        if keeper is None:
            return {"resume_token": None, "durable": False}
        return {
            "resume_token": self.tokens.issue(call_id, keeper.generation),
            "durable": keeper.durable,
        }

    @staticmethod
    def resumed_message(resumption: Resumption, result: RestoreResult) -> dict[str, Any]:
        """The ``resumed`` message: what came back, and what was lost."""
        progress = resumption.record.in_progress
        transcript = [
            {"role": e.role.value, "item_id": e.item_id, "text": e.text}
            for e in resumption.record.snapshot.history
            if e.kind is ItemKind.MESSAGE and e.text
        ][-RESUMED_TRANSCRIPT_ENTRIES:]
        return {
            "type": "resumed",
            "call_id": resumption.call_id,
            "restored_items": result.restored_items,
            "skipped_items": result.skipped_items,
            "by_handle": result.resumed_by_handle,
            "lost": {
                "user_turn": progress.user_speaking,
                "assistant_reply": progress.assistant_responding,
            },
            "transcript": transcript,
        }

    async def aclose(self) -> None:
        """Release the store's connections."""
        await self.store.aclose()
