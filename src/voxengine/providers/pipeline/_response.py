"""One assistant response of the pipeline: LLM stream -> sentences -> TTS -> events.

:class:`ResponseRun` streams the language model's reply, emitting text as it arrives,
and feeds each completed sentence to a speaking task, so the first audio goes out
while the model is still writing. It owns no conversation state: it returns a
:class:`ResponseOutcome` describing what was said and done, and the provider records it.

Cancellation contract: cancelling the task running :meth:`ResponseRun.run` stops the
model stream and the synthesis at once; ``run`` then returns normally with status
CANCELLED and the text of the sentences whose audio was sent ("spoken"). Stage
failures end the response with status FAILED after a ProviderErrorEvent; ``run``
itself never raises except for cancellation before it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, final

from voxengine.audio.resample import StreamResampler
from voxengine.config import ToolSpec
from voxengine.errors import ProviderError, VoxError
from voxengine.events import (
    AudioDelta,
    AudioDone,
    ConversationItem,
    Event,
    ItemAdded,
    ItemDone,
    ItemKind,
    ProviderErrorEvent,
    ResponseStarted,
    ResponseStatus,
    Role,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallDelta,
    TranscriptDelta,
    Usage,
    assistant_message_end,
)

from .sentence import FIRST_CLAUSE_CHARS, SentenceSplitter, SpokenSentence, speakable
from .stages import (
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LanguageModel,
    TextChunk,
    TextToSpeech,
    ToolArgumentsChunk,
    ToolCallChunk,
)

__all__ = ["ResponseOutcome", "ResponseRun"]

logger = logging.getLogger("voxengine.providers.pipeline")

OUTPUT_RATE: Final = 24_000
_END: Final = None


async def _close(iterator: AsyncIterator[object]) -> None:
    """Stop a stage's stream early: async generators get ``aclose()`` (releasing the
    HTTP request or the synthesis thread); plain iterators have nothing to release."""
    if isinstance(iterator, AsyncGenerator):
        await iterator.aclose()


@dataclass(slots=True, kw_only=True)
class ResponseOutcome:
    """What a response produced.

    Attributes:
        status: how it ended.
        items: the final conversation items (assistant message first, then calls).
        sentences: the spoken sentences of the message with their audio positions.
        usage: token usage when the model reported it.
    """

    status: ResponseStatus = ResponseStatus.IN_PROGRESS
    items: list[ConversationItem] = field(default_factory=list)
    sentences: list[SpokenSentence] = field(default_factory=list)
    usage: Usage | None = None
    reason: str | None = None


@final
class ResponseRun:
    """Runs one response; see the module docstring for the contract.

    Args:
        response_id: id of the response.
        new_id: makes a fresh item id (``new_id("item")``).
        llm: the language model. tts: the synthesiser, or None for a text-only response.
        messages, tools, settings: what to send to the model.
        emit: delivers an event (synchronously, in order).
        first_clause: the first piece spoken may end at a clause break once it holds
            this many characters (:class:`~.sentence.SentenceSplitter`; 0: whole
            sentences only).
    """

    def __init__(
        self,
        *,
        response_id: str,
        new_id: Callable[[str], str],
        llm: LanguageModel,
        tts: TextToSpeech | None,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings,
        emit: Callable[[Event], None],
        first_clause: int = FIRST_CLAUSE_CHARS,
    ) -> None:
        self._id = response_id
        self._first_clause = first_clause
        self._new_id = new_id
        self._llm = llm
        self._tts = tts
        self._messages = messages
        self._tools = tools
        self._settings = settings
        self._emit = emit
        self._item_id: str | None = None
        self._text: list[str] = []
        self._calls: dict[str, ConversationItem] = {}
        self._sentences: asyncio.Queue[str | None] = asyncio.Queue()
        self._spoken: list[SpokenSentence] = []
        self._speaking: tuple[str, float] | None = None
        self._audio_seconds = 0.0
        self._usage: Usage | None = None
        self._first_spoken = asyncio.Event()  # the first sentence was synthesised (or skipped)

    async def run(self) -> ResponseOutcome:
        """Stream, speak and report; returns the outcome (see the module docstring)."""
        self._emit(ResponseStarted(response_id=self._id))
        speaker: asyncio.Task[None] | None = None
        if self._tts is not None:
            speaker = asyncio.create_task(self._speak(self._tts), name="voxengine-pipeline-tts")
        outcome = ResponseOutcome()
        try:
            await self._generate()
            if speaker is not None:
                await speaker
            outcome.status = ResponseStatus.COMPLETED
        except asyncio.CancelledError:
            outcome.status = ResponseStatus.CANCELLED
            outcome.reason = "client_cancelled"
        except Exception as exc:
            self._fail(exc)
            outcome.status = ResponseStatus.FAILED
            outcome.reason = "error"
        finally:
            if speaker is not None and not speaker.done():
                speaker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await speaker
        self._finish(outcome)
        return outcome

    def _fail(self, exc: Exception) -> None:
        if isinstance(exc, ProviderError):
            code: str | None = exc.code
            message = exc.message
        elif isinstance(exc, VoxError):
            code, message = type(exc).__name__, str(exc)
        else:
            logger.exception("pipeline stage failed")
            code, message = "pipeline_error", f"{type(exc).__name__}: {exc}"
        self._emit(ProviderErrorEvent(code=code, message=message, error_type="pipeline_error"))

    # -- the model -------------------------------------------------------------------

    async def _generate(self) -> None:
        splitter = SentenceSplitter(first_clause=self._first_clause)
        stream = self._llm.stream(self._messages, self._tools, self._settings)
        try:
            async for chunk in stream:
                match chunk:
                    case TextChunk(text=text):
                        self._on_text(text)
                        for sentence in splitter.push(text):
                            self._sentences.put_nowait(sentence)
                        if self._tts is not None and not self._sentences.empty():
                            # the first audio first: the model waits (it is not
                            # pulled) while its first sentence is synthesised, so both
                            # do not share the CPU then
                            await self._first_spoken.wait()
                    case ToolArgumentsChunk(call_id=call_id, name=name, delta=delta):
                        item = self._call_item(call_id, name)
                        self._emit(
                            ToolCallDelta(
                                call_id=call_id,
                                item_id=item.item_id,
                                response_id=self._id,
                                delta=delta,
                            )
                        )
                    case ToolCallChunk(call=call):
                        item = self._call_item(call.call_id, call.name)
                        done = ConversationItem(
                            item_id=item.item_id,
                            kind=ItemKind.FUNCTION_CALL,
                            status="completed",
                            call_id=call.call_id,
                            name=call.name,
                            arguments=call.arguments,
                        )
                        self._calls[call.call_id] = done
                        self._emit(ItemDone(item=done))
                        self._emit(
                            ToolCall(
                                call_id=call.call_id,
                                name=call.name,
                                arguments=call.arguments,
                                item_id=item.item_id,
                                response_id=self._id,
                            )
                        )
                    case FinishChunk(usage=usage):
                        self._usage = usage
        finally:
            await _close(stream)
        rest = splitter.flush()
        if rest:
            self._sentences.put_nowait(rest)
        self._sentences.put_nowait(_END)

    def _on_text(self, text: str) -> None:
        if self._item_id is None:
            self._item_id = self._new_id("item")
            item = ConversationItem(
                item_id=self._item_id,
                kind=ItemKind.MESSAGE,
                role=Role.ASSISTANT,
                status="in_progress",
            )
            self._emit(ItemAdded(item=item))
        self._text.append(text)
        if self._tts is None:
            self._emit(TextDelta(response_id=self._id, item_id=self._item_id, delta=text))
        else:  # spoken replies carry their text as the audio's transcript, like realtime APIs
            self._emit(
                TranscriptDelta(
                    role=Role.ASSISTANT, item_id=self._item_id, delta=text, response_id=self._id
                )
            )

    def _call_item(self, call_id: str, name: str) -> ConversationItem:
        item = self._calls.get(call_id)
        if item is None:
            item = ConversationItem(
                item_id=self._new_id("item"),
                kind=ItemKind.FUNCTION_CALL,
                status="in_progress",
                call_id=call_id,
                name=name,
            )
            self._calls[call_id] = item
            self._emit(ItemAdded(item=item))
        return item

    # -- the voice -------------------------------------------------------------------

    async def _speak(self, tts: TextToSpeech) -> None:
        try:
            await self._speak_sentences(tts)
        finally:
            self._first_spoken.set()  # never leave the model waiting

    async def _speak_sentences(self, tts: TextToSpeech) -> None:
        resampler = StreamResampler(tts.sample_rate, OUTPUT_RATE)
        while (sentence := await self._sentences.get()) is not _END:
            text = speakable(sentence)
            if not text:
                self._first_spoken.set()
                continue
            self._speaking = (sentence, self._audio_seconds)
            audio = tts.synthesize(text)
            try:
                async for pcm in audio:
                    self._send_audio(resampler.process(pcm))
                    self._first_spoken.set()
            finally:
                await _close(audio)
            self._send_audio(resampler.flush())
            self._first_spoken.set()
            self._spoken.append(
                SpokenSentence(text=sentence, start=self._speaking[1], end=self._audio_seconds)
            )
            self._speaking = None

    def _send_audio(self, pcm: bytes) -> None:
        if not pcm:
            return
        assert self._item_id is not None  # sentences only exist after text
        self._audio_seconds += len(pcm) / (2 * OUTPUT_RATE)
        self._emit(AudioDelta(response_id=self._id, item_id=self._item_id, audio=pcm))

    # -- the end -----------------------------------------------------------------------

    def _finish(self, outcome: ResponseOutcome) -> None:
        completed = outcome.status is ResponseStatus.COMPLETED
        if self._speaking is not None and self._audio_seconds > self._speaking[1]:
            sentence, start = self._speaking
            self._spoken.append(SpokenSentence(text=sentence, start=start, end=self._audio_seconds))
        full_text = "".join(self._text)
        if self._tts is None or completed:
            said = full_text.strip()
        else:
            said = " ".join(s.text for s in self._spoken)
        if self._item_id is not None:
            if self._tts is None:
                self._emit(TextDone(response_id=self._id, item_id=self._item_id, text=full_text))
            else:
                self._emit(AudioDone(response_id=self._id, item_id=self._item_id))
            events, message = assistant_message_end(
                self._id,
                self._item_id,
                text=said,
                status="completed" if completed else "incomplete",
                transcript=None if self._tts is None else said,
            )
            for event in events:
                self._emit(event)
            outcome.items.append(message)
        outcome.items.extend(c for c in self._calls.values() if c.status == "completed")
        outcome.sentences = list(self._spoken)
        outcome.usage = self._usage
