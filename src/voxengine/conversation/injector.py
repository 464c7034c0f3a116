"""Delivers scheduled context to a provider at the right moments (see :mod:`.context`).

The injector watches the event stream for the moments the scheduler cares about
(the user's turn starting, the conversation going idle), delivers due entries —
as a system message with a known item id, or by rewriting the session instructions —
and withdraws them when their TTL ends. It never asks for a response, so injected
context cannot make the assistant speak.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import final

from voxengine.config import SessionConfig
from voxengine.conversation.context import (
    ContextEntry,
    ContextMethod,
    ContextScheduler,
    ContextTiming,
)
from voxengine.events import Event, ResponseDone, ResponseStarted, SpeechStarted, SpeechStopped
from voxengine.providers.base import BaseProvider, Capability

__all__ = ["ContextInjector"]

logger = logging.getLogger("voxengine.conversation.context")


@final
class ContextInjector:
    """Context delivery for one engine session."""

    # Slots: one of these per session (memory per idle session).
    __slots__ = (
        "_base",
        "_clock",
        "_provider",
        "_responding",
        "_scheduler",
        "_tasks",
        "_timer",
        "_user_speaking",
    )

    def __init__(
        self,
        provider: BaseProvider,
        base_instructions: str,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self._provider = provider
        self._base = base_instructions
        self._clock = clock
        # Made on first use (most sessions inject no context): see ``scheduler``.
        self._scheduler: ContextScheduler | None = None
        self._responding = False
        self._user_speaking = False
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] | None = None  # expiries running

    @property
    def scheduler(self) -> ContextScheduler:
        """The context entries (on the loop's clock unless one was given)."""
        scheduler = self._scheduler
        if scheduler is None:
            clock = self._clock or asyncio.get_running_loop().time
            scheduler = self._scheduler = ContextScheduler(clock)
        return scheduler

    @property
    def idle(self) -> bool:
        """Nobody is talking and no response is running."""
        return not self._responding and not self._user_speaking

    async def inject(
        self,
        text: str,
        *,
        timing: ContextTiming,
        method: ContextMethod,
        priority: int,
        ttl: float | None,
    ) -> ContextEntry:
        """Schedule context and deliver it if its moment is now."""
        if method is ContextMethod.SYSTEM_MESSAGE:
            self._provider.require(Capability.CONTEXT_INJECTION)
        else:
            self._provider.require(Capability.SESSION_UPDATE)
        entry = self.scheduler.add(text, timing=timing, method=method, priority=priority, ttl=ttl)
        due = [ContextTiming.NOW]
        if self.idle:
            due.append(ContextTiming.NEXT_PAUSE)
        await self._deliver(self.scheduler.due(*due))
        self._arm_timer()
        return entry

    async def withdraw(self, context_id: str) -> bool:
        """Remove context now (pending or delivered); returns whether it was known."""
        entry = self.scheduler.withdraw(context_id)
        if entry is None:
            return False
        if entry.delivered_at is not None:
            await self._remove([entry])
        return True

    async def before_user_turn(self) -> None:
        """The user's turn is starting: deliver NEXT_TURN context first."""
        pending = self._deliver_due(ContextTiming.NEXT_TURN)
        if pending is not None:
            await pending

    def observe(self, event: Event) -> Awaitable[None] | None:
        """Track speaking/responding state; returns the delivery to await, if any is due.

        A plain function so that the events it does not act on cost no coroutine.
        """
        match event:
            case SpeechStarted():
                self._user_speaking = True
                return self._deliver_due(ContextTiming.NEXT_TURN)
            case SpeechStopped():
                self._user_speaking = False
            case ResponseStarted():
                self._responding = True
            case ResponseDone():
                self._responding = False
                if self.idle:
                    return self._deliver_due(ContextTiming.NEXT_PAUSE)
            case _:
                pass
        return None

    def _deliver_due(self, timing: ContextTiming) -> Awaitable[None] | None:
        if self._scheduler is None:
            return None  # no context was ever injected
        entries = self._scheduler.due(timing)
        return self._deliver(entries) if entries else None

    async def _deliver(self, entries: list[ContextEntry]) -> None:
        if not entries or not self._provider.is_connected:
            return
        instructions_changed = False
        for entry in entries:
            if entry.method is ContextMethod.SYSTEM_MESSAGE:
                await self._provider.add_message(entry.text, item_id=entry.context_id)
            else:
                instructions_changed = True
        if instructions_changed:
            await self._update_instructions()
        logger.debug("delivered context %s", [e.context_id for e in entries])

    async def _remove(self, entries: list[ContextEntry]) -> None:
        if not self._provider.is_connected:
            return
        for entry in entries:
            if entry.method is ContextMethod.SYSTEM_MESSAGE:
                await self._provider.delete_item(entry.context_id)
        if any(e.method is ContextMethod.INSTRUCTIONS for e in entries):
            await self._update_instructions()

    async def _update_instructions(self) -> None:
        text = self.scheduler.instructions(self._base)
        await self._provider.update_session(SessionConfig(instructions=text))

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.scheduler.next_expiry()
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, deadline - self.scheduler_now())
        self._timer = loop.call_later(delay, self._on_timer)

    def scheduler_now(self) -> float:
        """The scheduler's clock (the loop clock unless one was injected)."""
        return self.scheduler.clock()

    def _on_timer(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._expire(), name="voxengine-context-expiry")
        tasks = self._tasks
        if tasks is None:
            tasks = self._tasks = set()
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _expire(self) -> None:
        gone = self.scheduler.expire()
        if gone:
            await self._remove(gone)
        self._arm_timer()

    async def aclose(self) -> None:
        """Stop timers; delivered context stays in the (closing) conversation."""
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks or ()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
