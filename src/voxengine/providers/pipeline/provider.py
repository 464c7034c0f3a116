"""The cascaded pipeline provider: speech-to-text -> language model -> text-to-speech.

:class:`PipelineProvider` implements :class:`~voxengine.providers.base.BaseProvider`
with three pluggable stages (:mod:`.stages`) instead of one speech-to-speech service.
Audio goes in at 16 kHz and comes out at 24 kHz, like the realtime providers, and it
reports the same :mod:`voxengine.events`, so an application (or
:class:`~voxengine.engine.VoiceEngine`) drives it exactly like them.

Turn taking (``session.turn_detection.mode``): ``SERVER_VAD`` runs voxengine's
:class:`~voxengine.audio.vad.EnergyVAD` (or WebRTC VAD) *inside the provider* — the
pipeline is the "server" — and ends turns by itself; ``LOCAL_VAD`` and ``MANUAL`` leave
commits to the caller. ``SEMANTIC_VAD`` is rejected (no semantic end-of-turn model).

A user turn: ``SpeechStarted``, ``SpeechStopped``, ``InputCommitted``, ``ItemAdded``,
then (after speech-to-text) ``TranscriptDone(USER)`` and ``ItemDone``. With SERVER_VAD
the turn is transcribed during its end-of-turn silence and, with local stages, its
reply started then too, its events held back until the turn ends and dropped if the
user goes on (:mod:`.speculation`); the events are the same either way. A response:
``ResponseStarted``, ``ItemAdded``, ``TranscriptDelta(ASSISTANT)``... with
``AudioDelta``... interleaved (each sentence is spoken as soon as the model finishes
writing it), ``ToolCallDelta``/``ItemDone``/``ToolCall`` for function calls, then
``AudioDone``, ``TranscriptDone(ASSISTANT)`` (what was spoken), ``ItemDone`` and
``ResponseDone(status, usage)`` — the same vocabulary as the realtime providers. With
text output (no TTS) the reply is ``TextDelta``... ``TextDone`` instead.

Ordering: commands that change the conversation (turns, texts, tool results,
responses) run one at a time in the order they were called, on a worker task, so a
``create_response()`` right after ``send_audio_message()`` waits for its transcript.
Barge-in (speech while a response runs, with ``interrupt_response``),
:meth:`~PipelineProvider.cancel_response` and :meth:`~PipelineProvider.interrupt` act
at once: the model stream and the synthesis stop, the rest of the reply is dropped,
``ResponseDone(CANCELLED)`` follows, and the conversation keeps only what was spoken —
then, after ``interrupt(played=...)``, only the words estimated to have been played.

Stage failures never close the session: a failed transcription gives
``TranscriptFailed``; a failed model or synthesis gives ``ProviderErrorEvent`` and
``ResponseDone(FAILED)``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ClassVar, Final, final

from voxengine.audio.format import PCM16_16K, PCM16_24K, AudioFormat
from voxengine.audio.vad import VAD, SpeechAudio, SpeechEnd, SpeechStart
from voxengine.commands import (
    CancelResponse,
    ClearAudio,
    Command,
    CommitAudio,
    CreateResponse,
    DeleteItem,
    RestoreItem,
    SendAudio,
    SendAudioMessage,
    SendText,
    SendToolResult,
    TruncateItem,
    UpdateSession,
)
from voxengine.config import (
    Modality,
    ReplyPolicy,
    SessionConfig,
    TurnDetection,
    TurnDetectionConfig,
)
from voxengine.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectFailed,
    InvalidState,
    VoxError,
)
from voxengine.events import (
    ConversationItem,
    Event,
    InputCleared,
    InputCommitted,
    Interrupted,
    ItemAdded,
    ItemDeleted,
    ItemDone,
    ItemKind,
    ItemTruncated,
    ProviderErrorEvent,
    ResponseDone,
    Role,
    SessionClosed,
    SessionReady,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TranscriptDone,
    TranscriptFailed,
)
from voxengine.providers.base import BaseProvider, Capability, ProviderConfig
from voxengine.session.queue import Consumer, EventQueue

from ._response import ResponseRun
from .config import PipelineConfig, check_session, merge_session
from .conversation import Conversation
from .sentence import SpokenSentence, spoken_text
from .speculation import ReplyInputs, Speculation
from .stages import (
    ChatMessage,
    GenerationSettings,
    LanguageModel,
    PromptCache,
    SpeechToText,
    Stage,
    TextToSpeech,
    Transcript,
)
from .vad import make_pipeline_vad

__all__ = ["PIPELINE_CAPABILITIES", "PipelineProvider", "PipelineProviderBase"]


logger = logging.getLogger("voxengine.providers.pipeline")

PIPELINE_CAPABILITIES: Final = frozenset(
    {
        Capability.AUDIO_INPUT,
        Capability.AUDIO_OUTPUT,
        Capability.TEXT_INPUT,
        Capability.TEXT_OUTPUT,
        Capability.SERVER_VAD,
        Capability.MANUAL_TURNS,
        Capability.FUNCTION_CALLING,
        Capability.INPUT_TRANSCRIPTION,
        Capability.OUTPUT_TRANSCRIPTION,
        Capability.INTERRUPTION,
        Capability.TRUNCATION,
        Capability.SESSION_UPDATE,
        Capability.ITEM_DELETION,
        Capability.USAGE,
        Capability.TEMPERATURE,
        Capability.CONTEXT_INJECTION,
        Capability.RECORDED_AUDIO,
    }
)
"""What every pipeline declares. No SEMANTIC_VAD: there is no semantic turn model."""

#: Longest user turn buffered, in seconds; older audio is dropped (manual turns).
MAX_TURN_SECONDS: Final = 300.0
#: Share of the end-of-turn silence (``silence_duration``) after which the turn's audio
#: is transcribed early, while the VAD still waits for the rest of the silence.
EARLY_TRANSCRIPTION: Final = 0.4

_Job = Callable[[], Awaitable[None]]


class PipelineProviderBase(BaseProvider):
    """The pipeline implementation shared by :class:`PipelineProvider` and its presets.

    Subclasses only set ``name`` and ``config_type``. See the module docstring for the
    event sequence and ordering rules.

    Raises:
        ConfigError: at construction, for an invalid config or a stage that cannot be
            built (e.g. a missing API key).
    """

    config_type: ClassVar[type[ProviderConfig]] = PipelineConfig
    capabilities: ClassVar[frozenset[Capability]] = PIPELINE_CAPABILITIES
    #: First retry delay in seconds when opening a stage fails to connect; doubles.
    retry_backoff: float = 0.5

    def __init__(self, config: ProviderConfig | None = None) -> None:
        wanted = type(self).config_type
        config = wanted() if config is None else wanted.of(config)
        assert isinstance(config, PipelineConfig)
        super().__init__(config)
        self._pipeline = config
        self.stt: SpeechToText = config.make_stt()
        self.llm: LanguageModel = config.make_llm()
        self.tts: TextToSpeech = config.make_tts()
        self._speculates = config.speculates(self.llm, self.tts)
        self._session = config.session
        self._open = False
        self._events: EventQueue | None = None
        self._jobs: asyncio.Queue[_Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._response: asyncio.Task[None] | None = None
        self._cancelling = False
        self._prefill_task: asyncio.Task[None] | None = None
        self._prefill_again = False
        self._stt_lock = asyncio.Lock()
        self._early: tuple[float, asyncio.Task[Transcript]] | None = None
        self._speculation: Speculation | None = None  # the reply to the early transcript
        self._dropped: set[asyncio.Task[None]] = set()  # discarded speculations stopping
        self._conversation = Conversation()
        self._spoken: dict[str, list[SpokenSentence]] = {}
        self._last_audio_item: str | None = None
        self._vad: VAD | None = None
        self._buffer = bytearray()
        self._speech_item: str | None = None
        self._ids = itertools.count(1)
        self._restored_ids: set[str] = set()
        self._session_id = ""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(stt={self.stt.label!r}, llm={self.llm.label!r}, "
            f"tts={self.tts.label!r})"
        )

    # -- formats and state ---------------------------------------------------------------

    @property
    def input_format(self) -> AudioFormat:
        """16 kHz PCM16 mono (what speech recognisers want)."""
        return PCM16_16K

    @property
    def output_format(self) -> AudioFormat:
        """24 kHz PCM16 mono (TTS output is resampled to it)."""
        return PCM16_24K

    @property
    def is_connected(self) -> bool:
        """True between :meth:`connect` and :meth:`disconnect`."""
        return self._open

    @property
    def session_config(self) -> SessionConfig:
        """The session settings in force."""
        return self._session

    @property
    def conversation(self) -> list[ConversationItem]:
        """The conversation the model sees, oldest first (truncations applied)."""
        return self._conversation.items

    def _require_open(self) -> None:
        if not self._open:
            raise self._not_connected()

    def _new_id(self, prefix: str) -> str:
        while True:  # never the id of a restored item (an earlier session's numbering)
            new = f"{prefix}_{next(self._ids)}"
            if new not in self._restored_ids:
                return new

    def _emit(self, event: Event) -> None:
        assert self._events is not None
        self._events.put_nowait(event)

    def _turns(self) -> TurnDetectionConfig:
        return self._session.turn_detection or TurnDetectionConfig()

    def _make_vad(self) -> VAD | None:
        td = self._turns()
        if td.mode is not TurnDetection.SERVER_VAD:
            return None
        return make_pipeline_vad(
            self._pipeline.vad_engine_in_use, self._pipeline.vad_config(td), 16_000
        )

    # -- lifecycle -------------------------------------------------------------------------

    def _stages(self) -> tuple[Stage, ...]:
        return (self.stt, self.llm, self.tts)

    async def _close_stages(self) -> None:
        for stage in self._stages():
            try:
                await stage.aclose()
            except Exception:
                logger.exception("closing %s failed", stage.label)

    async def connect(self, retry_count: int = 3) -> None:
        """Open the stages (load models, create HTTP clients) and start the session.

        Stages failing with :class:`ConnectFailed` (not authentication) are retried
        ``retry_count`` times with exponential backoff.

        Raises:
            InvalidState: already connected. ConfigError, ConnectFailed: from a stage.
        """
        if retry_count < 0:
            raise ConfigError("retry_count must be >= 0")
        if self._open:
            raise InvalidState("already connected")
        delay = self.retry_backoff
        for attempt in range(retry_count + 1):
            try:
                await asyncio.gather(*(stage.open() for stage in self._stages()))
                break
            except ConnectFailed as exc:
                await self._close_stages()
                if attempt == retry_count or isinstance(exc, AuthenticationFailed):
                    raise
                logger.warning("pipeline stage failed to open (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
            except BaseException:
                await self._close_stages()
                raise
        self._events = EventQueue(self._pipeline.event_queue_size, PCM16_24K)
        self._jobs = asyncio.Queue()
        self._conversation = Conversation()
        self._restored_ids.clear()
        self._spoken.clear()
        self._last_audio_item = None
        self._buffer.clear()
        self._speech_item = None
        self._vad = self._make_vad()
        self._session_id = f"pipeline_{uuid.uuid4().hex[:16]}"
        self._open = True
        self._emit(SessionReady(session_id=self._session_id, model=self.llm.label))
        self._worker = asyncio.create_task(self._work(), name="voxengine-pipeline-worker")
        self._prefill()

    async def disconnect(self) -> None:
        """Stop any response, drop queued work, close the stages, end :meth:`events`.

        Idempotent. A running response ends with ``ResponseDone(CANCELLED)`` before
        ``SessionClosed``.
        """
        if not self._open:
            return
        self._open = False
        worker, self._worker = self._worker, None
        if worker is not None:  # first, so that no queued job starts another response
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
        await self._stop_response()
        prefill, self._prefill_task = self._prefill_task, None
        early = self._drop_early()
        for task in (prefill, early, *self._dropped):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self._close_stages()
        self._emit(SessionClosed(code=None, reason="client disconnected"))
        assert self._events is not None
        self._events.put_nowait(None)

    def events(self) -> AsyncIterator[Event]:
        """Events of the current session in order; ends after :class:`SessionClosed`.

        Raises:
            InvalidState: before the first :meth:`connect`.
        """
        return _drain(self._event_queue())

    def deliver_events(self, consumer: Consumer) -> bool:
        """Push events to ``consumer`` as they are produced (see :class:`BaseProvider`).

        Raises:
            InvalidState: not connected, or the events already have a consumer.
        """
        self._event_queue().deliver_to(consumer)
        return True

    def _event_queue(self) -> EventQueue:
        if self._events is None:
            raise self._not_connected()
        return self._events

    # -- the worker --------------------------------------------------------------------------

    async def _work(self) -> None:
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

    def _enqueue(self, job: _Job) -> None:
        self._jobs.put_nowait(job)

    # -- audio input -------------------------------------------------------------------------

    async def send(self, command: Command, *more: Command) -> None:
        """Carry out each command in order (see :meth:`BaseProvider.send`).

        Work that takes time (speech-to-text, replies) is queued behind the work before
        it; the events report it.

        Raises:
            InvalidState: not connected.
            ConfigError: a tool output as a plain message (use :class:`SendToolResult`),
                a :class:`TruncateItem` of an item that is not a spoken assistant reply;
                SEMANTIC_VAD or ``idle_timeout`` in an update. A :class:`RestoreItem`
                (a resumed conversation) joins the language model's context as is.
        """
        self._require_open()
        for each in (command, *more) if more else (command,):
            match each:
                case SendAudio(audio=audio):
                    self._take_audio(audio)
                case CommitAudio():
                    self._commit_audio()
                case ClearAudio():
                    self._clear_audio()
                case SendText(role=Role.TOOL):
                    raise ConfigError("tool outputs go through send_tool_result()")
                case SendText(text=text, role=role, item_id=item_id):
                    self._add_message(text, role, item_id)
                case SendAudioMessage(audio=audio):
                    self._add_recording(audio)
                case SendToolResult(call_id=call_id, output=output):
                    self._add_tool_result(call_id, output)
                case CreateResponse(instructions=instructions, modalities=modalities):
                    self._request_reply(instructions, modalities)
                case CancelResponse():
                    await self._stop_response()
                case DeleteItem(item_id=item_id):
                    self._delete_item(item_id)
                case UpdateSession(config=config):
                    self._update_session(config)
                case TruncateItem(item_id=item_id, audio_end=audio_end):
                    if self._truncate(item_id, audio_end) is None:
                        raise ConfigError(f"no spoken assistant item {item_id!r} to truncate")
                case RestoreItem(item=item):
                    self._restore_item(item)

    # -- audio input -------------------------------------------------------------------------

    def _take_audio(self, data: bytes) -> None:
        """User audio (PCM16 mono, 16 kHz); with SERVER_VAD, turns end by themselves."""
        if not data:
            return
        if self._vad is None:
            self._append(data)
            return
        td = self._turns()
        for result in self._vad.process(data):
            match result:
                case SpeechStart(audio=pre, start=start):
                    self._speech_item = self._new_id("item")
                    self._buffer = bytearray(pre)
                    self._emit(SpeechStarted(item_id=self._speech_item, audio_start=start))
                    if td.interrupt_response:
                        self._cancel_nowait()
                    self._prefill()  # the prompt so far, read while the user speaks
                case SpeechAudio(audio=chunk):
                    self._append(chunk)
                case SpeechEnd(end=end):
                    item_id = self._speech_item or self._new_id("item")
                    self._speech_item = None
                    self._emit(SpeechStopped(item_id=item_id, audio_end=end))
                    speculation = self._take_speculation(end)
                    early = self._drop_early(keep_for=end)
                    self._commit(
                        item_id, respond=td.create_response, early=early, speculation=speculation
                    )
        self._transcribe_early(td)

    def _transcribe_early(self, td: TurnDetectionConfig) -> None:
        """Start transcribing the turn once part of the end-of-turn silence has passed.

        The VAD waits ``silence_duration`` before it ends the turn; the words are all in
        the buffer well before that, so speech-to-text starts at
        :data:`EARLY_TRANSCRIPTION` of it and the transcript is (partly) ready when the
        turn ends. If the user speaks again, the early result is dropped. It only starts
        when speech-to-text is idle, so a dropped one never delays a real one by more
        than its own run. When it is in before the turn ends, the reply starts too
        (:meth:`_speculate`); voice resuming drops that reply at once.
        """
        vad = self._vad
        silence = getattr(vad, "trailing_silence", None)
        until = getattr(vad, "voiced_until", None)
        if self._speculation is not None and (until != self._speculation.until):
            self._discard(self._speculation)  # the user speaks again: not the turn's end
            self._speculation = None
        if vad is None or not vad.in_speech or silence is None or until is None:
            return
        if silence < td.silence_duration * EARLY_TRANSCRIPTION or self._stt_lock.locked():
            return
        if self._early is not None and self._early[0] == until:
            return  # already under way for this audio
        self._drop_early()  # speech resumed since that one began: it is stale
        pcm = bytes(self._buffer)
        task = asyncio.create_task(self._stt(pcm), name="voxengine-pipeline-early-stt")
        task.add_done_callback(_consume)  # a failure is reported by the turn that awaits it
        if td.create_response and self._speculates:
            task.add_done_callback(lambda done: self._speculate(until, done))
        self._early = (until, task)

    def _speculate(self, until: float, early: asyncio.Task[Transcript]) -> None:
        """The early transcript is in and the turn has not ended: start its reply now,
        its events held back until the turn ends (:mod:`.speculation`). Only when nothing
        else is under way, so that the reply's inputs are likely to still hold then."""
        if (
            not self._open
            or self._early is None
            or self._early[1] is not early
            or early.cancelled()
            or early.exception() is not None
            or not early.result().text
            or self._speculation is not None
            or self._response is not None
            or not self._jobs.empty()
        ):
            return
        text = early.result().text
        inputs = self._reply_inputs(None, None, then=ChatMessage(role=Role.USER, text=text))
        speculation = Speculation(until=until, inputs=inputs, emit=self._emit)
        response_id = self._new_id("resp")
        run = self._response_run(response_id, inputs, speculation.emit)
        speculation.start(self._run(run, response_id, speculation))
        self._speculation = speculation

    def _take_speculation(self, end: float) -> Speculation | None:
        """The speculative reply made for a turn ending at ``end``, if any (others are
        discarded)."""
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation.until == end:
            return speculation
        self._discard(speculation)
        return None

    def _discard(self, speculation: Speculation | None) -> None:
        if speculation is None:
            return
        task = speculation.discard()
        if task is not None and not task.done():
            self._dropped.add(task)
            task.add_done_callback(self._dropped.discard)

    def _drop_early(self, keep_for: float | None = None) -> asyncio.Task[Transcript] | None:
        """Forget the early transcription; return it if it covers speech ending at
        ``keep_for`` (the turn that just ended), else cancel it and return None."""
        early, self._early = self._early, None
        if self._speculation is not None:  # its turn did not end (or ended elsewhere)
            self._discard(self._speculation)
            self._speculation = None
        if early is None:
            return None
        until, task = early
        if keep_for is not None and until == keep_for:
            return task
        task.cancel()
        return None if keep_for is not None else task

    async def _stt(self, pcm: bytes) -> Transcript:
        """Speech-to-text, one call at a time (early and regular transcriptions)."""
        async with self._stt_lock:
            return await self.stt.transcribe(pcm, PCM16_16K.sample_rate)

    def _append(self, data: bytes) -> None:
        self._buffer += data
        excess = len(self._buffer) - PCM16_16K.bytes_for(MAX_TURN_SECONDS)
        if excess > 0:
            del self._buffer[:excess]

    def _commit(
        self,
        item_id: str,
        *,
        respond: bool,
        early: asyncio.Task[Transcript] | None = None,
        speculation: Speculation | None = None,
    ) -> None:
        pcm = bytes(self._buffer)
        self._buffer.clear()
        previous = self._conversation.items[-1].item_id if len(self._conversation) else None
        self._emit(InputCommitted(item_id=item_id, previous_item_id=previous))
        self._emit(
            ItemAdded(
                item=ConversationItem(
                    item_id=item_id, kind=ItemKind.MESSAGE, role=Role.USER, status="in_progress"
                )
            )
        )
        self._enqueue(
            lambda: self._transcribe(
                item_id, pcm, respond=respond, early=early, speculation=speculation
            )
        )

    def _commit_audio(self) -> None:
        """End the user's turn now: the buffered audio is transcribed as a user message.

        An empty buffer gives a ``ProviderErrorEvent`` (code
        ``input_audio_buffer_commit_empty``), as the realtime APIs do.
        """
        if self._vad is not None:
            self._vad.reset()
        self._drop_early(keep_for=-1.0)
        item_id = self._speech_item or self._new_id("item")
        self._speech_item = None
        if not self._buffer:
            self._emit(
                ProviderErrorEvent(
                    code="input_audio_buffer_commit_empty",
                    message="cannot commit: no audio was buffered",
                    error_type="invalid_request_error",
                )
            )
            return
        self._commit(item_id, respond=False)

    def _clear_audio(self) -> None:
        """Discard the buffered user audio (and any speech in progress)."""
        self._buffer.clear()
        self._speech_item = None
        if self._vad is not None:
            self._vad.reset()
        self._drop_early(keep_for=-1.0)
        self._emit(InputCleared())

    def _add_recording(self, data: bytes) -> None:
        """Add a recorded utterance (PCM16 16 kHz) as one user message, via speech-to-text."""
        item_id = self._new_id("item")
        self._emit(
            ItemAdded(
                item=ConversationItem(
                    item_id=item_id, kind=ItemKind.MESSAGE, role=Role.USER, status="in_progress"
                )
            )
        )
        self._enqueue(lambda: self._transcribe(item_id, data, respond=False))

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
            self._discard(speculation)  # not adopted (or already live: then a no-op)

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
            await self._respond(None, None, then)

    # -- text and context ----------------------------------------------------------------------

    def _add_message(self, text: str, role: Role, item_id: str | None) -> None:
        item = ConversationItem(
            item_id=item_id or self._new_id("item"),
            kind=ItemKind.MESSAGE,
            role=role,
            status="completed",
            text=text,
        )

        async def job() -> None:
            self._conversation.add(item)
            self._emit(ItemAdded(item=item))
            self._emit(ItemDone(item=item))

        self._enqueue(job)

    def _restore_item(self, item: ConversationItem) -> None:
        """Put an item of an earlier session back into the context (no response)."""
        self._restored_ids.add(item.item_id)

        async def job() -> None:
            self._conversation.add(item)
            self._emit(ItemAdded(item=item))
            self._emit(ItemDone(item=item))

        self._enqueue(job)

    def _delete_item(self, item_id: str) -> None:
        """Remove ``item_id`` from the conversation (``ItemDeleted``; unknown ids give a
        ``ProviderErrorEvent``)."""

        async def job() -> None:
            if self._conversation.delete(item_id):
                self._spoken.pop(item_id, None)
                self._emit(ItemDeleted(item_id=item_id))
            else:
                self._emit(
                    ProviderErrorEvent(
                        code="item_not_found",
                        message=f"no item {item_id!r} in the conversation",
                        error_type="invalid_request_error",
                    )
                )

        self._enqueue(job)

    def _add_tool_result(self, call_id: str, output: str) -> None:
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

        self._enqueue(job)

    def _update_session(self, session: SessionConfig) -> None:
        """Apply the non-``None`` fields of ``session`` now (``SessionUpdated``).

        Raises:
            ConfigError: SEMANTIC_VAD or ``idle_timeout``.
        """
        merged = merge_session(self._session, session)
        check_session(merged)
        turns_changed = merged.turn_detection != self._session.turn_detection
        self._session = merged
        if turns_changed:
            self._vad = self._make_vad()
            self._speech_item = None
        self._emit(SessionUpdated(session_id=self._session_id))

    # -- responses -----------------------------------------------------------------------------

    def _request_reply(
        self, instructions: str | None, modalities: tuple[Modality, ...] | None
    ) -> None:
        """Queue a response after the work before it (e.g. a transcription);
        ``instructions`` replace the session's system prompt for this response,
        ``modalities`` without AUDIO skip speech synthesis. Replies run one after another, so
        each request gets its own (ReplyPolicy.QUEUE); under INTERRUPT the running one
        is cancelled first (its ``ResponseDone`` says CANCELLED)."""
        if self._session.reply_policy is ReplyPolicy.INTERRUPT:
            self._cancel_nowait()
        self._enqueue(lambda: self._respond(instructions, modalities))

    def _reply_inputs(
        self,
        instructions: str | None,
        modalities: tuple[Modality, ...] | None,
        *,
        then: ChatMessage | None = None,
    ) -> ReplyInputs:
        """What a reply asked for now would be made from (``then``: a message about
        to be added to the conversation)."""
        session = self._session
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
            llm=self.llm,
            tts=self.tts if inputs.speak else None,
            messages=inputs.messages,
            tools=inputs.tools,
            settings=inputs.settings,
            emit=emit,
        )

    async def _respond(
        self,
        instructions: str | None,
        modalities: tuple[Modality, ...] | None,
        speculation: Speculation | None = None,
    ) -> None:
        inputs = self._reply_inputs(instructions, modalities)
        if speculation is not None and speculation.inputs == inputs:
            task = speculation.commit()  # prepared while the turn was ending
        else:
            self._discard(speculation)
            response_id = self._new_id("resp")
            run = self._response_run(response_id, inputs, self._emit)
            task = asyncio.create_task(
                self._run(run, response_id), name="voxengine-pipeline-response"
            )
        self._response = task
        task.add_done_callback(self._response_finished)
        await asyncio.wait({task})

    def _response_finished(self, task: asyncio.Task[None]) -> None:
        if self._response is task:
            self._response = None
            self._cancelling = False

    async def _run(
        self, run: ResponseRun, response_id: str, speculation: Speculation | None = None
    ) -> None:
        outcome = await run.run()
        if speculation is not None:
            await speculation.committed()  # raises CancelledError if it is discarded
        for item in outcome.items:
            self._conversation.add(item)
            if item.kind is ItemKind.MESSAGE and outcome.sentences:
                self._spoken[item.item_id] = outcome.sentences
                self._last_audio_item = item.item_id
        self._prefill()  # the next reply's prompt: this one's and the reply
        self._emit(
            ResponseDone(
                response_id=response_id,
                status=outcome.status,
                reason=outcome.reason,
                usage=outcome.usage,
                output=tuple(outcome.items),
            )
        )

    def _prefill(self) -> None:
        """Have a :class:`~.stages.PromptCache` model read the conversation so far now,
        in the background, so that the next reply only reads the new turn. At most one
        prefill runs; a request while one runs makes it run once more afterwards."""
        if not self._open or not isinstance(self.llm, PromptCache):
            return
        if self._prefill_task is not None and not self._prefill_task.done():
            self._prefill_again = True
            return
        self._prefill_task = asyncio.create_task(
            self._prefill_loop(self.llm), name="voxengine-pipeline-prefill"
        )

    async def _prefill_loop(self, llm: PromptCache) -> None:
        again = True
        while again:
            self._prefill_again = False
            try:
                await llm.prefill(self._conversation.messages(self._session.instructions))
            except Exception:  # an optimisation: a failure costs only time
                logger.debug("prefill failed", exc_info=True)
            again = self._prefill_again and self._open

    def _cancel_nowait(self) -> bool:
        task = self._response
        if task is None or task.done() or self._cancelling:
            return False
        self._cancelling = True
        task.cancel()
        return True

    async def _stop_response(self) -> None:
        """Cancel the running response and wait until its ResponseDone was emitted."""
        self._cancel_nowait()
        task = self._response
        if task is not None and not task.done():
            await asyncio.wait({task})

    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        """Stop the assistant and keep only what the user heard.

        Cancels the running response (if ``cancel``; with ``cancel=False`` a cancellation
        already under way, e.g. by barge-in, is awaited), then — when ``played`` is given —
        cuts assistant item ``item_id`` (default: the latest spoken one) to the words
        estimated to fit in ``played`` seconds of its audio (``ItemTruncated``; the
        conversation text changes, the model sees only that). Emits and returns
        :class:`Interrupted`.
        """
        self._require_open()
        if cancel:
            await self._stop_response()
        elif self._cancelling and self._response is not None:
            await asyncio.wait({self._response})
        target = item_id or self._last_audio_item
        heard = None
        if target is not None and played is not None:
            heard = self._truncate(target, played)
        event = Interrupted(item_id=target, played=heard)
        self._emit(event)
        return event

    def _truncate(self, item_id: str, played: float) -> float | None:
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


def _consume(task: asyncio.Task[Transcript]) -> None:
    """Retrieve an early transcription's outcome, so one that fails and is dropped (or
    never awaited, at disconnect) logs no "exception was never retrieved"."""
    if not task.cancelled():
        task.exception()


async def _drain(queue: EventQueue) -> AsyncIterator[Event]:
    while (event := await queue.get()) is not None:
        yield event
    queue.put_nowait(None)  # later iterators end at once too


@final
class PipelineProvider(PipelineProviderBase):
    """Cascaded STT -> LLM -> TTS provider (registry name ``"pipeline"``).

    With no stages configured it runs fully offline: Whisper, SmolLM2 (llama.cpp) and
    Piper when the ``local`` extra is installed, else the fallback PocketSphinx, the
    built-in local responder (not an AI model) and espeak-ng. Example::

        from voxengine.providers.pipeline import AnthropicLLM, PipelineConfig, PipelineProvider

        provider = PipelineProvider(PipelineConfig(llm=AnthropicLLM()))
        await provider.connect()
        await provider.send_text("What can you do?")
        async for event in provider.events(): ...
    """

    name: ClassVar[str] = "pipeline"
    config_type: ClassVar[type[ProviderConfig]] = PipelineConfig
