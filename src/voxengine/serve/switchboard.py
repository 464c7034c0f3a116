"""What every endpoint shares: :class:`Switchboard`.

One per app (``request.app.state.switchboard``; :func:`switchboard_of`). It holds the
settings, the token issuer, the limits, the metrics and the calls in progress, and
opens calls with :meth:`Switchboard.open_call`, the one path every endpoint uses::

    board = switchboard_of(websocket)
    claims = await board.redeem(token)              # TokenRefused -> close "unauthorized"
    async with board.open_call(port, endpoint="browser", caller=claims.subject) as call:
        ...  # feed call.receive_audio / report_played / ... until call.closed

``open_call`` admits the call (draining? limits?), asks the session factory for its
engine, connects it, logs and counts it, and on exit closes it and releases its
slot. :meth:`drain` (on shutdown) refuses new calls, waits for calls in progress to
end, then closes the rest with ``going_away``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, final

from starlette.requests import HTTPConnection

from voxengine.engine import VoiceEngine
from voxengine.errors import VoxError
from voxengine.serve.auth import Claims, TokenIssuer, new_secret
from voxengine.serve.call import Call, CallerPort
from voxengine.serve.config import ServeConfig
from voxengine.serve.continuity import Continuity, Resumption
from voxengine.serve.errors import CallRefused, CloseReason
from voxengine.serve.factory import CallContext, SessionFactory, default_session_factory
from voxengine.serve.limits import CallLimiter
from voxengine.serve.observe import ServeMetrics

__all__ = ["Switchboard", "new_call_id", "switchboard_of"]

logger = logging.getLogger("voxengine.serve")


def new_call_id() -> str:
    """A fresh call id (``c-`` + 16 hex digits)."""
    return "c-" + secrets.token_hex(8)


@final
class Switchboard:
    """Shared state of one server process; see the module docstring."""

    def __init__(self, config: ServeConfig, session_factory: SessionFactory | None = None) -> None:
        self.config = config
        self.factory: SessionFactory = session_factory or default_session_factory
        if config.secret is None:
            logger.warning(
                "no deployment secret configured: using a random one (tokens are valid "
                "on this process only)"
            )
        secret = config.secret or new_secret()
        self.tokens = TokenIssuer(secret, ttl=config.token_ttl)
        self.continuity = Continuity.from_settings(
            config.state_url,
            secret,
            ttl=config.state_ttl,
            required=config.state_required,
            max_call_seconds=config.limits.max_call_seconds,
        )
        self.limiter = CallLimiter(config.limits)
        self.metrics = ServeMetrics()
        self.calls: dict[str, Call] = {}
        self.draining = False
        self._idle = asyncio.Event()
        self._idle.set()

    def __repr__(self) -> str:
        return f"Switchboard(calls={len(self.calls)}, draining={self.draining})"

    @property
    def ready(self) -> bool:
        """Whether new calls are accepted (readiness)."""
        return not self.draining

    async def redeem(self, token: object, *, scope: str = "call") -> Claims:
        """The claims of a valid, unspent call ``token``, now spent in the whole
        deployment (the issuer's memory and the shared state store: see
        :meth:`Continuity.spend_token`).

        Raises:
            TokenRefused: missing, malformed, forged, expired, of another scope, or
                already used (on this worker or another).
            CallRefused: ``state_unavailable`` (the store is down and state is required).
        """
        claims = self.tokens.verify(token, scope=scope)
        await self.continuity.spend_token(claims)
        return claims

    def refuse(self, call_id: str, exc: CallRefused) -> None:
        """Count and log a refusal that happened before :meth:`open_call`."""
        self.metrics.call_refused(exc.reason, call_id, exc.detail)

    @contextlib.asynccontextmanager
    async def open_call(
        self,
        port: CallerPort,
        *,
        endpoint: str,
        caller: str,
        client: str | None = None,
        params: Mapping[str, Any] | None = None,
        call_id: str | None = None,
        resume: Resumption | None = None,
    ) -> AsyncIterator[Call]:
        """A started :class:`Call` for ``caller``; closed (``normal``) and released on exit.

        Its state is kept for a resume elsewhere (:mod:`voxengine.serve.continuity`);
        with ``resume`` the call continues a claimed one (``call.restored`` says how).

        Raises:
            CallRefused: ``going_away`` (draining), ``busy``, ``too_many_calls``,
                ``provider_failed`` (the factory or the provider failed). The port is
                not closed: the endpoint reports the refusal its own way.
        """
        call_id = call_id or new_call_id()
        try:
            if self.draining:
                raise CallRefused(CloseReason.GOING_AWAY, "server draining")
            self.limiter.acquire(caller)
        except CallRefused as exc:
            self.refuse(call_id, exc)
            raise
        call: Call | None = None
        try:
            context = CallContext(
                call_id=call_id,
                endpoint=endpoint,
                caller=caller,
                client=client,
                config=self.config,
                params=dict(params or {}),
            )
            engine = await self._engine_for(context)
            call = Call(
                engine,
                port,
                context,
                max_seconds=self.config.limits.max_call_seconds,
                observer=self.metrics,
            )
            call.restored = await call.start(resume.record.snapshot if resume else None)
            try:
                await self.continuity.keep(call, caller, resume)
            except CallRefused as exc:
                await call.close(exc.reason, exc.detail)
                raise
        except CallRefused as exc:
            self.limiter.release(caller)
            self.refuse(call_id, exc)
            if call is not None:
                await call.engine.disconnect()
            raise
        except BaseException:
            self.limiter.release(caller)
            if call is not None:
                await call.engine.disconnect()
            raise
        self.calls[call_id] = call
        self._idle.clear()
        self.metrics.call_started(call)
        try:
            yield call
        finally:
            await call.close(CloseReason.NORMAL)
            await self.continuity.release(call)
            self.limiter.release(caller)
            del self.calls[call_id]
            if not self.calls:
                self._idle.set()
            self.metrics.call_ended(call, time.monotonic() - call.started_at)

    async def _engine_for(self, context: CallContext) -> VoiceEngine:
        try:
            made = self.factory(context)
            engine = await made if inspect.isawaitable(made) else made
        except VoxError as exc:
            raise CallRefused(CloseReason.PROVIDER_FAILED, type(exc).__name__) from exc
        if not isinstance(engine, VoiceEngine):
            raise CallRefused(CloseReason.INTERNAL, "the session factory returned no VoiceEngine")
        return engine

    async def wait_idle(self) -> None:
        """Wait until no call is in progress."""
        await self._idle.wait()

    async def drain(self, timeout: float | None = None) -> int:
        """Refuse new calls; wait up to ``timeout`` (default: the config's
        ``drain_timeout``) for calls to end, then close the rest with ``going_away``.

        Returns the number of calls closed by the drain. Idempotent.
        """
        self.draining = True
        wait = self.config.drain_timeout if timeout is None else timeout
        if self.calls and wait > 0:
            for call in self.calls.values():
                call.send_event({"type": "going_away", "seconds": wait})
            logger.info("draining: waiting up to %.1fs for %d call(s)", wait, len(self.calls))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), wait)
        remaining = list(self.calls.values())
        if remaining:
            logger.info("draining: closing %d call(s)", len(remaining))
            await asyncio.gather(
                *(call.close(CloseReason.GOING_AWAY) for call in remaining),
                return_exceptions=True,
            )
        return len(remaining)


def switchboard_of(connection: HTTPConnection) -> Switchboard:
    """The :class:`Switchboard` of the app serving ``connection``."""
    board = connection.app.state.switchboard
    assert isinstance(board, Switchboard)
    return board
