"""The pipeline's replies: one running at a time, cancelled at once, cut to what was heard.

:class:`Responder` starts each :class:`~._response.ResponseRun` on its own task, records
its outcome in the conversation (and which sentences were spoken, when), emits its
``ResponseDone``, cancels it on request, and cuts a spoken reply to the words heard
(``ItemTruncated``). Between replies it has a :class:`~.stages.PromptCache` model read
the conversation so far, so the next reply only reads the new turn. It also starts
speculative replies (:meth:`Responder.speculate`, :mod:`.speculation`): a reply to a
turn that has not ended yet, adopted by :meth:`Responder.respond` when its inputs still
hold then.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import final

from voxengine.config import Modality, SessionConfig
from voxengine.events import Event, ItemKind, ItemTruncated, ResponseDone, Role

from ._response import ResponseRun
from .conversation import Conversation
from .sentence import FIRST_CLAUSE_CHARS, SpokenSentence, spoken_text
from .speculation import ReplyInputs, Speculation
from .stages import ChatMessage, GenerationSettings, LanguageModel, PromptCache, TextToSpeech

__all__ = ["Responder"]

logger = logging.getLogger("voxengine.providers.pipeline")


@final
class Responder:
    """Runs the pipeline's responses (see the module docstring).

    Args:
        llm, tts: the stages.
        conversation: the conversation replies read and extend.
        session: the session settings in force (read at each reply).
        emit: where events go.
        new_id: makes an item id from a prefix.
        is_open: whether the session is open (no prefill after it closed).
        first_clause: shortest first piece of a reply cut at a clause break, in
            characters (:class:`~.sentence.SentenceSplitter`; 0: whole sentences).
    """

    def __init__(
        self,
        *,
        llm: LanguageModel,
        tts: TextToSpeech,
        conversation: Conversation,
        session: Callable[[], SessionConfig],
        emit: Callable[[Event], None],
        new_id: Callable[[str], str],
        is_open: Callable[[], bool],
        first_clause: int = FIRST_CLAUSE_CHARS,
    ) -> None:
        self._llm = llm
        self._first_clause = first_clause
        self._tts = tts
        self._conversation = conversation
        self._session = session
        self._emit = emit
        self._new_id = new_id
        self._is_open = is_open
        self._task: asyncio.Task[None] | None = None
        self._cancelling = False
        self._prefill_task: asyncio.Task[None] | None = None
        self._prefill_again = False
        self._spoken: dict[str, list[SpokenSentence]] = {}
        self._last_spoken: str | None = None
        self._speculations: set[Speculation] = set()  # started, their task not done

    @property
    def last_spoken(self) -> str | None:
        """The item id of the latest reply that was spoken, if any."""
        return self._last_spoken

    @property
    def prefilling(self) -> bool:
        """Whether a prefill task exists (none after :meth:`aclose`)."""
        return self._prefill_task is not None

    def forget(self, item_id: str) -> None:
        """``item_id`` left the conversation: it can no longer be truncated."""
        self._spoken.pop(item_id, None)

    async def respond(
        self,
        instructions: str | None,
        modalities: tuple[Modality, ...] | None,
        speculation: Speculation | None = None,
    ) -> None:
        """Run one reply and return when it is done (its ``ResponseDone`` emitted).

        ``instructions`` replace the session's system prompt for this reply;
        ``modalities`` without AUDIO skip speech synthesis. ``speculation``: a reply
        prepared for this turn (:meth:`speculate`); it becomes this reply when it was
        started from exactly these inputs, else it is discarded.
        """
        inputs = self._reply_inputs(instructions, modalities)
        if speculation is not None and speculation.inputs == inputs:
            task = speculation.commit()  # prepared while the turn was ending
        else:
            if speculation is not None:
                speculation.discard()
            response_id = self._new_id("resp")
            run = self._response_run(response_id, inputs, self._emit)
            task = asyncio.create_task(
                self._run(run, response_id), name="voxengine-pipeline-response"
            )
        self._task = task
        task.add_done_callback(self._finished)
        await asyncio.wait({task})

    def speculate(self, until: float, text: str) -> Speculation | None:
        """Start the reply to user message ``text``, not yet in the conversation (the
        early transcript of a turn whose voice ended at ``until``), its events held
        back (:mod:`.speculation`); None when the session is closed or a reply runs.
        Whoever holds it discards it when it is not adopted; :meth:`aclose` discards
        those left and waits for them to stop."""
        if not self._is_open() or self._task is not None:
            return None
        inputs = self._reply_inputs(None, None, then=ChatMessage(role=Role.USER, text=text))
        speculation = Speculation(until=until, inputs=inputs, emit=self._emit)
        response_id = self._new_id("resp")
        run = self._response_run(response_id, inputs, speculation.emit)
        speculation.start(self._run(run, response_id, speculation))
        assert speculation.task is not None
        self._speculations.add(speculation)
        speculation.task.add_done_callback(lambda _: self._speculations.discard(speculation))
        return speculation

    def _reply_inputs(
        self,
        instructions: str | None,
        modalities: tuple[Modality, ...] | None,
        *,
        then: ChatMessage | None = None,
    ) -> ReplyInputs:
        """What a reply asked for now would be made from (``then``: a message about
        to be added to the conversation)."""
        session = self._session()
        wanted = modalities or session.modalities or (Modality.AUDIO,)
        messages = self._conversation.messages(instructions or session.instructions)
        return ReplyInputs(
            messages=(*messages, then) if then is not None else tuple(messages),
            tools=tuple(session.tools or ()),
            settings=GenerationSettings(
                temperature=session.temperature,
                max_output_tokens=session.max_output_tokens,
                tool_choice=session.tool_choice,
            ),
            speak=Modality.AUDIO in wanted,
        )

    def _response_run(
        self, response_id: str, inputs: ReplyInputs, emit: Callable[[Event], None]
    ) -> ResponseRun:
        return ResponseRun(
            response_id=response_id,
            new_id=self._new_id,
            llm=self._llm,
            tts=self._tts if inputs.speak else None,
            messages=inputs.messages,
            tools=inputs.tools,
            settings=inputs.settings,
            emit=emit,
            first_clause=self._first_clause,
        )

    def _finished(self, task: asyncio.Task[None]) -> None:
        if self._task is task:
            self._task = None
            self._cancelling = False

    async def _run(
        self, run: ResponseRun, response_id: str, speculation: Speculation | None = None
    ) -> None:
        outcome = await run.run()
        if speculation is not None:
            try:
                await speculation.committed()  # raises CancelledError if it is discarded
            except asyncio.CancelledError:
                if not speculation.live:
                    raise  # discarded: none of its events reached anyone
                # committed (its events released: ResponseStarted reached the app),
                # then cancelled (e.g. by barge-in) before this task resumed: the reply
                # had already run to its end, so it is recorded and reported as it
                # ended, as it would have been had it not waited to be committed
        for item in outcome.items:
            self._conversation.add(item)
            if item.kind is ItemKind.MESSAGE and outcome.sentences:
                self._spoken[item.item_id] = outcome.sentences
                self._last_spoken = item.item_id
        self.prefill()  # the next reply's prompt: this one's and the reply
        self._emit(
            ResponseDone(
                response_id=response_id,
                status=outcome.status,
                reason=outcome.reason,
                usage=outcome.usage,
                output=tuple(outcome.items),
            )
        )

    def cancel_nowait(self) -> bool:
        """Cancel the running reply; False if none runs or it is already cancelling."""
        task = self._task
        if task is None or task.done() or self._cancelling:
            return False
        self._cancelling = True
        task.cancel()
        return True

    async def stop(self) -> None:
        """Cancel the running reply and wait until its ``ResponseDone`` was emitted."""
        self.cancel_nowait()
        await self.settle()

    async def settle(self) -> None:
        """Wait for a cancellation already under way (e.g. by barge-in) to finish."""
        task = self._task
        if self._cancelling and task is not None and not task.done():
            await asyncio.wait({task})

    def prefill(self) -> None:
        """Have a :class:`~.stages.PromptCache` model read the conversation so far now,
        in the background, so that the next reply only reads the new turn. At most one
        prefill runs; a request while one runs makes it run once more afterwards."""
        if not self._is_open() or not isinstance(self._llm, PromptCache):
            return
        if self._prefill_task is not None and not self._prefill_task.done():
            self._prefill_again = True
            return
        self._prefill_task = asyncio.create_task(
            self._prefill_loop(self._llm), name="voxengine-pipeline-prefill"
        )

    async def _prefill_loop(self, llm: PromptCache) -> None:
        again = True
        while again:
            self._prefill_again = False
            try:
                await llm.prefill(self._conversation.messages(self._session().instructions))
            except Exception:  # an optimisation: a failure costs only time
                logger.debug("prefill failed", exc_info=True)
            again = self._prefill_again and self._is_open()

    async def aclose(self) -> None:
        """Stop the running reply (its ``ResponseDone`` says CANCELLED) and the prefill;
        discard the speculations not adopted and wait until they have stopped."""
        await self.stop()
        prefill, self._prefill_task = self._prefill_task, None
        speculations = [s.discard() for s in self._speculations]  # adopted: None
        for task in (prefill, *speculations):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def truncate(self, item_id: str, played: float) -> float | None:
        """Cut spoken assistant item ``item_id`` to the words estimated to fit in
        ``played`` seconds of its audio (the history the model reads changes) and emit
        :class:`ItemTruncated`; the seconds kept, or ``None`` for an unknown item."""
        sentences = self._spoken.get(item_id)
        if sentences is None:
            return None
        total = sentences[-1].end if sentences else 0.0
        heard = min(max(0.0, played), total)
        if item_id in self._conversation:
            self._conversation.set_text(item_id, spoken_text(sentences, heard))
        self._emit(ItemTruncated(item_id=item_id, audio_end=heard))
        return heard
