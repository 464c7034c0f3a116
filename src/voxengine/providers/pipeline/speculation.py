"""Speculative replies: the answer to a turn prepared while the turn may still go on.

The VAD ends a user turn only after ``silence_duration`` of silence, and the pipeline
transcribes the turn during that silence (``PipelineConfig.early_transcription``). When that early
transcript is in before the turn has ended, the pipeline starts the reply too: the
model writes and the synthesiser speaks its first piece, but every event it makes is
held back by a :class:`Speculation`. Then either

* the turn ends with the same audio (no voice since), and the reply's inputs — the
  conversation with the new user message, the tools, the settings, the output
  modalities — are exactly those it was started from: :meth:`Speculation.commit`
  releases the held events, in order, after the user turn's own events, and the reply
  goes on live as if it had just started (its first audio is often ready by then); or
* anything else happens (the user speaks again, the input is cleared or committed by
  hand, the session changes, another command changed the conversation meanwhile, the
  session closes): :meth:`Speculation.discard` cancels it and drops what it held.
  None of its events was ever delivered and the conversation never saw it, so a
  discarded speculation loses nothing and never speaks early; it only cost CPU time.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, final

from voxengine.config import ToolSpec
from voxengine.events import Event

from .stages import ChatMessage, GenerationSettings

__all__ = ["ReplyInputs", "Speculation"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyInputs:
    """Everything a reply depends on besides the stages; equal inputs, same reply."""

    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...]
    settings: GenerationSettings
    speak: bool


class _State(enum.Enum):
    HELD = "held"
    LIVE = "live"
    DROPPED = "dropped"


@final
class Speculation:
    """A reply started before its turn ended; see the module docstring.

    Args:
        until: stream position (seconds) where the voice of the turn it answers ended;
            it is only valid for a turn that ends there.
        inputs: what the reply was started from.
        emit: where events go once committed.
    """

    __slots__ = ("_committed", "_emit", "_held", "_state", "inputs", "task", "until")

    def __init__(self, *, until: float, inputs: ReplyInputs, emit: Callable[[Event], None]) -> None:
        self.until = until
        self.inputs = inputs
        self._emit = emit
        self._held: list[Event] = []
        self._state = _State.HELD
        self._committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Speculation(until={self.until}, state={self._state.value}, held={len(self._held)})"

    @property
    def held(self) -> int:
        """How many events are held back (0 once committed or discarded)."""
        return len(self._held)

    def start(self, reply: Coroutine[Any, Any, None]) -> None:
        """Run ``reply`` (which emits through :meth:`emit` and awaits :meth:`committed`
        before it changes anything outside itself) as this speculation's task."""
        self.task = asyncio.create_task(reply, name="voxengine-pipeline-speculative-reply")

    def emit(self, event: Event) -> None:
        """Deliver ``event`` when committed, hold it before, drop it once discarded."""
        if self._state is _State.LIVE:
            self._emit(event)
        elif self._state is _State.HELD:
            self._held.append(event)

    @property
    def live(self) -> bool:
        """Committed: its events go out as they come, like any reply's."""
        return self._state is _State.LIVE

    async def committed(self) -> None:
        """Return once committed. Raises CancelledError once discarded."""
        await self._committed

    def commit(self) -> asyncio.Task[None]:
        """Release the held events in order, go live, and return the reply's task.

        Raises:
            RuntimeError: not started, or already committed or discarded.
        """
        if self.task is None or self._state is not _State.HELD:
            raise RuntimeError(f"cannot commit {self!r}")
        held, self._held = self._held, []
        self._state = _State.LIVE
        for event in held:
            self._emit(event)
        self._committed.set_result(None)
        return self.task

    def discard(self) -> asyncio.Task[None] | None:
        """Cancel the reply and drop its events (held and future); returns its task,
        to await when the caller must know it has stopped. Idempotent; a committed
        speculation is a reply like any other: this does nothing to it (returns None)."""
        if self._state is _State.LIVE:
            return None
        self._state = _State.DROPPED
        self._held = []
        self._committed.cancel()
        if self.task is not None:
            self.task.cancel()
        return self.task
