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

Layout: this module opens and closes the session and turns each command into work for
one of the session's parts: :mod:`._turn` (the user's turn in progress: buffer, VAD,
early transcription), :mod:`._worker` (the conversation edits, in order) and
:mod:`._responder` (the replies, one :mod:`._response` run at a time).

Stage failures never close the session: a failed transcription gives
``TranscriptFailed``; a failed model or synthesis gives ``ProviderErrorEvent`` and
``ResponseDone(FAILED)``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import AsyncIterator
from typing import ClassVar, Final, final

from voxengine.audio.format import PCM16_16K, PCM16_24K, AudioFormat
from voxengine.audio.vad import VAD
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
)
from voxengine.events import (
    ConversationItem,
    Event,
    Interrupted,
    Role,
    SessionClosed,
    SessionReady,
    SessionUpdated,
)
from voxengine.providers.base import BaseProvider, Capability, ProviderConfig
from voxengine.session.queue import Consumer, EventQueue

from ._responder import Responder
from ._turn import EARLY_TRANSCRIPTION as EARLY_TRANSCRIPTION
from ._turn import EARLY_TRANSCRIPTION_AFTER as EARLY_TRANSCRIPTION_AFTER
from ._turn import MAX_TURN_SECONDS as MAX_TURN_SECONDS
from ._turn import TurnInput
from ._worker import ConversationWorker
from .config import PipelineConfig, check_session, merge_session
from .conversation import Conversation
from .speculation import Speculation
from .stages import (
    LanguageModel,
    SpeechToText,
    Stage,
    TextToSpeech,
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
        self._conversation = Conversation()
        self._input, self._worker, self._replies = self._session_parts()
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

    def _session_parts(self) -> tuple[TurnInput, ConversationWorker, Responder]:
        """A session's parts, over the stages set now: the user's turn, the ordered
        conversation edits and the replies."""
        replies = Responder(
            llm=self.llm,
            tts=self.tts,
            conversation=self._conversation,
            session=lambda: self._session,
            emit=self._emit,
            new_id=self._new_id,
            is_open=lambda: self._open,
            first_clause=self._pipeline.first_clause,
        )
        worker = ConversationWorker(
            self._conversation,
            emit=self._emit,
            new_id=self._new_id,
            stt=lambda pcm: turns.transcribe(pcm),
            respond=lambda speculation: replies.respond(None, None, speculation),
            forget=replies.forget,
        )
        turns = TurnInput(
            self.stt,
            emit=self._emit,
            new_id=self._new_id,
            on_speech=self._speech_began,
            on_turn=worker.user_turn,
            speculate=self._speculate if self._speculates else None,
            early_after=self._pipeline.early_transcription,
        )
        return turns, worker, replies

    def _speculate(self, until: float, text: str) -> Speculation | None:
        """Start the reply to an early transcript only when nothing else is under way
        (no reply, no queued edit), so that its inputs are likely to still hold when
        the turn ends."""
        if self._worker.queued:
            return None
        return self._replies.speculate(until, text)

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
        self._conversation = Conversation()
        self._restored_ids.clear()
        self._input, self._worker, self._replies = self._session_parts()
        self._input.use_vad(self._make_vad())
        self._session_id = f"pipeline_{uuid.uuid4().hex[:16]}"
        self._open = True
        self._emit(SessionReady(session_id=self._session_id, model=self.llm.label))
        self._worker.start()
        self._replies.prefill()

    async def disconnect(self) -> None:
        """Stop any response, drop queued work, close the stages, end :meth:`events`.

        Idempotent. A running response ends with ``ResponseDone(CANCELLED)`` before
        ``SessionClosed``.
        """
        if not self._open:
            return
        self._open = False
        await self._worker.aclose()  # first, so that no queued job starts another response
        await self._replies.aclose()
        await self._input.aclose()
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

    # -- commands -------------------------------------------------------------------------

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
                    self._input.take(audio, self._turns())
                case CommitAudio():
                    self._input.commit()
                case ClearAudio():
                    self._input.clear()
                case SendText(role=Role.TOOL):
                    raise ConfigError("tool outputs go through send_tool_result()")
                case SendText(text=text, role=role, item_id=item_id):
                    self._worker.add_message(text, role, item_id)
                case SendAudioMessage(audio=audio):
                    self._worker.add_recording(audio)
                case SendToolResult(call_id=call_id, output=output):
                    self._worker.add_tool_result(call_id, output)
                case CreateResponse(instructions=instructions, modalities=modalities):
                    self._request_reply(instructions, modalities)
                case CancelResponse():
                    await self._replies.stop()
                case DeleteItem(item_id=item_id):
                    self._worker.delete(item_id)
                case UpdateSession(config=config):
                    self._update_session(config)
                case TruncateItem(item_id=item_id, audio_end=audio_end):
                    if self._replies.truncate(item_id, audio_end) is None:
                        raise ConfigError(f"no spoken assistant item {item_id!r} to truncate")
                case RestoreItem(item=item):
                    self._restored_ids.add(item.item_id)
                    self._worker.add(item)

    def _speech_began(self, interrupt: bool) -> None:
        if interrupt:
            self._replies.cancel_nowait()  # barge-in
        self._replies.prefill()  # the prompt so far, read while the user speaks

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
            self._input.use_vad(self._make_vad())
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
            self._replies.cancel_nowait()
        self._worker.enqueue(lambda: self._replies.respond(instructions, modalities))

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
            await self._replies.stop()
        else:
            await self._replies.settle()
        target = item_id or self._replies.last_spoken
        heard = None
        if target is not None and played is not None:
            heard = self._replies.truncate(target, played)
        event = Interrupted(item_id=target, played=heard)
        self._emit(event)
        return event


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
