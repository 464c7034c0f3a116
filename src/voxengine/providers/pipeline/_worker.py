"""The pipeline's conversation edits: one at a time, in the order they were asked for.

:class:`ConversationWorker` runs every command that changes the conversation (a user
turn and its transcription, a text, a tool result, a deletion, a restored item, a
reply) as a job on one task, so a reply asked for right after a user turn waits for
that turn's transcript. A job that fails reports a ``ProviderErrorEvent``
(``pipeline_error``) and the next job runs: a bug in one never ends the session.

A user turn may come with a reply already started for it (:mod:`.speculation`): the
turn's job hands it to ``respond`` with the transcript, and discards it if it was not
used (no reply asked for, no words, the job failed or was cancelled).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import final

from voxengine.errors import VoxError
from voxengine.events import (
    ConversationItem,
    Event,
    InputCommitted,
    ItemAdded,
    ItemDeleted,
    ItemDone,
    ItemKind,
    ProviderErrorEvent,
    Role,
    TranscriptDone,
    TranscriptFailed,
)

from .conversation import Conversation
from .speculation import Speculation
from .stages import Transcript

__all__ = ["ConversationWorker", "Job"]

logger = logging.getLogger("voxengine.providers.pipeline")

Job = Callable[[], Awaitable[None]]
"""A unit of ordered work."""


@final
class ConversationWorker:
    """Ordered conversation edits over ``conversation`` (see the module docstring).

    Args:
        conversation: the conversation the jobs change.
        emit: where events go.
        new_id: makes an item id from a prefix.
        stt: transcribes a user turn's PCM16 16 kHz audio.
        respond: runs a reply (after a turn that asks for one), given the reply
            already started for that turn, if any.
        forget: an item was deleted (the reply runner drops what it knew of it).
    """

    def __init__(
        self,
        conversation: Conversation,
        *,
        emit: Callable[[Event], None],
        new_id: Callable[[str], str],
        stt: Callable[[bytes], Awaitable[Transcript]],
        respond: Callable[[Speculation | None], Awaitable[None]],
        forget: Callable[[str], None],
    ) -> None:
        self._conversation = conversation
        self._emit = emit
        self._new_id = new_id
        self._stt = stt
        self._respond = respond
        self._forget = forget
        self._jobs: asyncio.Queue[Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start running jobs (on the running loop)."""
        self._task = asyncio.create_task(self._run(), name="voxengine-pipeline-worker")

    async def aclose(self) -> None:
        """Stop: the running job is cancelled and queued ones are dropped."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                await job()
            except Exception as exc:  # a bug in a job must not end the session
                logger.exception("pipeline job failed")
                self._emit(
                    ProviderErrorEvent(
                        code="pipeline_error",
                        message=f"{type(exc).__name__}: {exc}",
                        error_type="pipeline_error",
                    )
                )

    def enqueue(self, job: Job) -> None:
        """Run ``job`` after the jobs before it."""
        self._jobs.put_nowait(job)

    @property
    def queued(self) -> bool:
        """Whether jobs wait to run (the one running, if any, not counted)."""
        return not self._jobs.empty()

    def user_turn(
        self,
        item_id: str,
        pcm: bytes,
        respond: bool,
        early: asyncio.Task[Transcript] | None,
        speculation: Speculation | None = None,
    ) -> None:
        previous = self._conversation.items[-1].item_id if len(self._conversation) else None
        self._emit(InputCommitted(item_id=item_id, previous_item_id=previous))
        self._emit(
            ItemAdded(
                item=ConversationItem(
                    item_id=item_id, kind=ItemKind.MESSAGE, role=Role.USER, status="in_progress"
                )
            )
        )
        self.enqueue(
            lambda: self._transcribe(
                item_id, pcm, respond=respond, early=early, speculation=speculation
            )
        )

    def add_recording(self, data: bytes) -> None:
        """Add a recorded utterance (PCM16 16 kHz) as one user message, via speech-to-text."""
        item_id = self._new_id("item")
        self._emit(
            ItemAdded(
                item=ConversationItem(
                    item_id=item_id, kind=ItemKind.MESSAGE, role=Role.USER, status="in_progress"
                )
            )
        )
        self.enqueue(lambda: self._transcribe(item_id, data, respond=False))

    async def _transcribe(
        self,
        item_id: str,
        pcm: bytes,
        *,
        respond: bool,
        early: asyncio.Task[Transcript] | None = None,
        speculation: Speculation | None = None,
    ) -> None:
        try:
            await self._transcribed(item_id, pcm, respond=respond, early=early, then=speculation)
        finally:
            if speculation is not None:
                speculation.discard()  # not adopted (or already live: then a no-op)

    async def _transcribed(
        self,
        item_id: str,
        pcm: bytes,
        *,
        respond: bool,
        early: asyncio.Task[Transcript] | None,
        then: Speculation | None,
    ) -> None:
        text = ""
        try:
            # the early transcription heard the same words (only less trailing silence)
            transcript = await early if early is not None else await self._stt(pcm)
        except Exception as exc:
            if not isinstance(exc, VoxError):
                logger.exception("speech-to-text stage failed")
            self._emit(TranscriptFailed(item_id=item_id, message=f"{type(exc).__name__}: {exc}"))
        else:
            text = transcript.text
            self._emit(TranscriptDone(role=Role.USER, item_id=item_id, transcript=text))
        item = ConversationItem(
            item_id=item_id, kind=ItemKind.MESSAGE, role=Role.USER, status="completed", text=text
        )
        self._conversation.add(item)
        self._emit(ItemDone(item=item))
        if respond and text:
            await self._respond(then)

    def add_message(self, text: str, role: Role, item_id: str | None) -> None:
        """Add a finished text message (``item_id`` None: a new id)."""
        self.add(
            ConversationItem(
                item_id=item_id or self._new_id("item"),
                kind=ItemKind.MESSAGE,
                role=role,
                status="completed",
                text=text,
            )
        )

    def add(self, item: ConversationItem) -> None:
        """Add a finished item (e.g. one restored from an earlier session), no response."""

        async def job() -> None:
            self._conversation.add(item)
            self._emit(ItemAdded(item=item))
            self._emit(ItemDone(item=item))

        self.enqueue(job)

    def delete(self, item_id: str) -> None:
        """Remove ``item_id`` from the conversation (``ItemDeleted``; unknown ids give a
        ``ProviderErrorEvent``)."""

        async def job() -> None:
            if self._conversation.delete(item_id):
                self._forget(item_id)
                self._emit(ItemDeleted(item_id=item_id))
            else:
                self._emit(
                    ProviderErrorEvent(
                        code="item_not_found",
                        message=f"no item {item_id!r} in the conversation",
                        error_type="invalid_request_error",
                    )
                )

        self.enqueue(job)

    def add_tool_result(self, call_id: str, output: str) -> None:
        """Record the output of call ``call_id``.

        An unknown ``call_id`` gives a ``ProviderErrorEvent`` (code ``invalid_call_id``).
        """

        async def job() -> None:
            if not self._conversation.has_call(call_id):
                self._emit(
                    ProviderErrorEvent(
                        code="invalid_call_id",
                        message=f"no function call {call_id!r} in the conversation",
                        error_type="invalid_request_error",
                    )
                )
                return
            item = ConversationItem(
                item_id=self._new_id("item"),
                kind=ItemKind.FUNCTION_CALL_OUTPUT,
                status="completed",
                call_id=call_id,
                output=output,
            )
            self._conversation.add(item)
            self._emit(ItemAdded(item=item))
            self._emit(ItemDone(item=item))

        self.enqueue(job)
