""":class:`CallStateKeeper`: saves one call's record as the call goes.

The serving layer gives every event of the call's engine to :meth:`observe` (sync,
cheap: it only notes that something changed). A background task writes the record
when the conversation changed (a finished item, a turn starting or ending, a new
resumption handle), coalescing bursts into one write, and otherwise pushes the
record's expiry back every ``ttl / 3`` seconds while the call lives. When the call
ends on purpose the record is deleted; when the worker dies it simply stops being
refreshed and expires ``ttl`` seconds later: that is the window to resume in.

The store going away never ends a call. With :attr:`Durability.BEST_EFFORT` (the
default) a call starts anyway with one warning ("state not durable"), keeps trying,
and logs when writes succeed again. With :attr:`Durability.REQUIRED`,
:meth:`CallStateKeeper.start` raises :class:`StateUnavailable` so the serving layer
refuses the call with a clear error. A write refused because another worker resumed
the call (a newer generation) calls ``on_superseded`` once: this worker's connection
to the caller is stale and should close.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import final

from voxengine.errors import ConfigError
from voxengine.events import (
    Event,
    InputCommitted,
    ItemDeleted,
    ItemDone,
    ItemTruncated,
    ResponseDone,
    ResponseStarted,
    ResumptionUpdate,
    SpeechStarted,
    SpeechStopped,
    TranscriptDone,
)
from voxengine.serve.state.record import CallRecord, InProgress, Scalar, check_settings
from voxengine.serve.state.store import StateStore, StateUnavailable
from voxengine.session.snapshot import ConversationSnapshot

__all__ = ["WATCHED_EVENTS", "CallStateKeeper", "Durability", "KeeperStats"]

logger = logging.getLogger("voxengine.serve.state")

#: Events after which the record is written again (subscribe :meth:`observe` to these).
WATCHED_EVENTS: tuple[type[Event], ...] = (
    ItemDone,
    TranscriptDone,
    ItemDeleted,
    ItemTruncated,
    ResumptionUpdate,
    SpeechStarted,
    SpeechStopped,
    InputCommitted,
    ResponseStarted,
    ResponseDone,
)
_CHANGES: frozenset[type] = frozenset(WATCHED_EVENTS)


class Durability(enum.Enum):
    """What to do when the state store cannot be written at a call's start."""

    #: Start the call anyway, warn that it cannot resume elsewhere, keep trying.
    BEST_EFFORT = "best_effort"
    #: Refuse the call (:class:`StateUnavailable` from :meth:`CallStateKeeper.start`).
    REQUIRED = "required"


@dataclass(slots=True)
class KeeperStats:
    """Store operations of one call (the benchmark counts them)."""

    saves: int = 0
    touches: int = 0
    failures: int = 0


@final
class CallStateKeeper:
    """Keeps the record of one call in ``store`` (see the module docstring).

    Args:
        store: where records live.
        call_id: the call's id.
        snapshot: returns the conversation now (``VoiceEngine.snapshot``).
        settings: the call's settings (plain values, no credentials).
        ttl: seconds a record outlives its last write or refresh.
        generation: the generation this worker holds (0 for a new call; the claimed
            generation + 1 after a resume).
        durability: see :class:`Durability`.
        on_superseded: called once when another worker resumed the call.

    Raises:
        ConfigError: settings with a credential-like name, or ``ttl`` <= 0.
    """

    def __init__(
        self,
        store: StateStore,
        call_id: str,
        snapshot: Callable[[], ConversationSnapshot],
        *,
        settings: Mapping[str, Scalar] | None = None,
        ttl: float = 60.0,
        generation: int = 0,
        durability: Durability = Durability.BEST_EFFORT,
        on_superseded: Callable[[], object] | None = None,
    ) -> None:
        if ttl <= 0:
            raise ConfigError("the call state ttl must be positive")
        self.settings = dict(settings or {})
        check_settings(self.settings)
        self.store = store
        self.call_id = call_id
        self.generation = generation
        self.ttl = ttl
        self.durability = durability
        self.stats = KeeperStats()
        self._snapshot = snapshot
        self._on_superseded = on_superseded
        self._progress = InProgress()
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._durable = False
        self._superseded = False
        self._warned = False

    @property
    def durable(self) -> bool:
        """True while the latest write reached a store other workers can read."""
        return self._durable and self.store.shared

    @property
    def superseded(self) -> bool:
        """True once another worker resumed this call."""
        return self._superseded

    def record(self) -> CallRecord:
        """The record as it would be written now."""
        return CallRecord(
            call_id=self.call_id,
            settings=self.settings,
            snapshot=self._snapshot(),
            in_progress=self._progress,
            generation=self.generation,
            updated_at=time.time(),
        )

    async def start(self) -> None:
        """Write the first record and start keeping it.

        Raises:
            StateUnavailable: the store failed and durability is REQUIRED (nothing
                is started then).
        """
        try:
            await self._write()
        except StateUnavailable as exc:
            if self.durability is Durability.REQUIRED:
                raise
            self._warn(exc)
        self._task = asyncio.create_task(self._run(), name=f"voxengine-state-{self.call_id}")

    def observe(self, event: Event) -> None:
        """Note ``event``; the record is written soon after one that changes it."""
        kind = type(event)
        if kind not in _CHANGES:
            return
        progress = self._progress
        if kind is SpeechStarted:
            progress = InProgress(user_speaking=True, assistant_responding=False)
        elif kind is SpeechStopped or kind is InputCommitted:
            progress = InProgress(assistant_responding=progress.assistant_responding)
        elif kind is ResponseStarted:
            progress = InProgress(user_speaking=progress.user_speaking, assistant_responding=True)
        elif kind is ResponseDone:
            progress = InProgress(user_speaking=progress.user_speaking)
        self._progress = progress
        self._dirty.set()

    async def aclose(self, *, ended: bool) -> None:
        """Stop keeping the record. ``ended``: the call ended on purpose (hang-up),
        so the record is deleted; otherwise (this worker shuts down) a last write
        leaves it for another worker to resume. Never raises."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._superseded:
            return
        with contextlib.suppress(StateUnavailable):
            if ended:
                await self.store.delete(self.call_id)
            else:
                await self._write()

    def _warn(self, exc: StateUnavailable) -> None:
        self._durable = False
        self.stats.failures += 1
        if not self._warned:
            self._warned = True
            logger.warning(
                "call %s: state not durable (the call continues, but cannot resume on "
                "another worker until the store answers): %s",
                self.call_id,
                exc,
            )

    async def _write(self) -> None:
        self.stats.saves += 1
        written = await self.store.save(self.record(), self.ttl)
        if not written:
            self._supersede()
            return
        if self._warned:
            logger.info("call %s: state store answers again; the call is durable", self.call_id)
            self._warned = False
        self._durable = True

    def _supersede(self) -> None:
        if self._superseded:
            return
        self._superseded = True
        logger.info("call %s: resumed by another worker; this copy stops", self.call_id)
        if self._on_superseded is not None:
            self._on_superseded()

    async def _run(self) -> None:
        refresh = self.ttl / 3
        while not self._superseded:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), refresh)
            dirty = self._dirty.is_set()
            self._dirty.clear()
            try:
                if dirty or not self._durable:
                    await self._write()
                else:
                    self.stats.touches += 1
                    await self.store.touch(self.call_id, self.ttl)
            except StateUnavailable as exc:
                self._warn(exc)
                if dirty:
                    self._dirty.set()
                await asyncio.sleep(min(1.0, refresh))
            except Exception:  # a bug must not end the call: log it and keep going
                logger.exception("call %s: saving the call state failed", self.call_id)
                await asyncio.sleep(min(1.0, refresh))
