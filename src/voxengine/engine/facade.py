"""The application facade: :class:`VoiceEngine`.

``VoiceEngine`` owns one provider, one :class:`~voxengine.bus.EventBus`, and the
collaborators that make a voice application: the audio path with local VAD, playback
and barge-in (:class:`~voxengine.voice_io.VoiceIO`), tool execution
(:class:`~voxengine.conversation.tool_runner.ToolRunner`), context injection
(:class:`~voxengine.conversation.injector.ContextInjector`). Its mode (``fast``, ``provider``,
``big``) picks the bookkeeping between socket and handlers
(:mod:`voxengine.strategies`); every mode talks to providers through the same calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from voxengine.audio.format import AudioFormat
from voxengine.audio.resample import convert
from voxengine.bus import EventBus
from voxengine.config import SessionConfig
from voxengine.conversation.context import ContextEntry, ContextMethod, ContextTiming
from voxengine.conversation.injector import ContextInjector
from voxengine.conversation.tool_registry import ToolRegistry
from voxengine.conversation.tool_runner import ManualHandler, ToolRunner
from voxengine.conversation.tools import Tool
from voxengine.engine.callbacks import LegacyCallbacks
from voxengine.engine.direct_audio import DirectAudio
from voxengine.engine.providers import build_provider, fail_over
from voxengine.engine.requests import collect_response, transcribe_file
from voxengine.engine.shutdown import close_provider, report_cancelled
from voxengine.engine_config import VoiceEngineConfig
from voxengine.errors import ConfigError, InvalidState
from voxengine.events import (
    AudioDelta,
    Event,
    Interrupted,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    SessionClosed,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    ToolCall,
    TranscriptDelta,
    Usage,
)
from voxengine.metrics import MetricsSnapshot
from voxengine.pricing import DEFAULT_PRICES, Cost
from voxengine.providers.base import BaseProvider, Capability
from voxengine.session.history import HistoryEntry
from voxengine.session.snapshot import ConversationSnapshot, RestoreResult
from voxengine.strategies import STRATEGIES, BaseStrategy
from voxengine.voice_io import VoiceIO

__all__ = ["VoiceEngine", "VoiceEngineConfig"]

logger = logging.getLogger("voxengine.engine")


#: Priority of the engine's own handlers: before application handlers.
_INTERNAL = 1000

# The event classes of the engine's own subscriptions (shared, not one tuple per engine).
#: What the legacy callbacks are called for (``LegacyCallbacks._legacy``).
_LEGACY: tuple[type[Event], ...] = (
    AudioDelta,
    TextDelta,
    TranscriptDelta,
    ResponseDone,
    ProviderErrorEvent,
)
#: What the tool runner and the context injector act on (see ``VoiceEngine._observe``).
_OWN: tuple[type[Event], ...] = (
    ToolCall,
    SpeechStarted,
    SpeechStopped,
    ResponseStarted,
    ResponseDone,
)

#: Seconds :meth:`VoiceEngine.disconnect` gives tool outputs being sent, a failover
#: in progress and busy event handlers before cancelling them.
GRACE = 1.0
#: The documented bound of :meth:`VoiceEngine.disconnect`, in seconds (audio devices
#: aside): a failover in progress is cancelled (at most ``GRACE``), tool calls are
#: cancelled while the provider closes (at most 5 s, see
#: ``RealtimeProvider.disconnect``), then busy handlers get ``GRACE`` before they are
#: cancelled (and ``GRACE`` more to end).
DISCONNECT_TIMEOUT = 8.0


class VoiceEngine(LegacyCallbacks):
    """A voice conversation with one provider.

    Example::

        engine = VoiceEngine(VoiceEngineConfig(provider="openai", mode="provider"))
        engine.on_text_response = print
        async with engine:
            await engine.send_text("Hello!")
            await engine.events.wait_for(ResponseDone, timeout=30)

    Legacy callbacks (attributes, ``None`` to disable): ``on_text_response(text)`` for
    each text or assistant-transcript fragment, ``on_audio_response(pcm16)`` for each
    audio chunk (provider output rate), ``on_response_done(event)``, ``on_error(event)``
    for recoverable provider errors, ``on_function_call(event)`` for calls no
    registered tool handles — its return value (``str`` as is, else JSON) is sent as
    the tool output; ``None`` means the application answers with
    :meth:`send_tool_result` itself.

    Raises:
        ConfigError: at construction, for an invalid config, an unknown provider, a
            missing key, or a setting the provider does not support.
    """

    #: Fast mode's audio tap keeper (``None`` in the other modes).
    _direct: DirectAudio | None = None

    def __init__(
        self,
        config: VoiceEngineConfig,
        *,
        provider: BaseProvider | None = None,
        fallbacks: Sequence[BaseProvider] = (),
    ):
        self.config = config
        #: Providers to fail over to, in order: ``fallbacks`` then ``config.failover`` names.
        self._fallbacks: list[BaseProvider | str] = [*fallbacks, *config.failover]
        self._closing = False
        # Done when the connect() in progress ends (None: none is): concurrent calls
        # wait for it; nothing is held between connects (memory per idle session).
        self._connecting: asyncio.Future[None] | None = None
        self._failover_task: asyncio.Task[None] | None = None
        self.tools = ToolRegistry()
        for entry in config.tools:
            if isinstance(entry, Tool) or (callable(entry) and not isinstance(entry, type)):
                self.tools.add(entry)
        self.provider: BaseProvider = provider or build_provider(config)
        self.events = EventBus(waitable=False)  # waits make sense once connect() starts
        # fast mode collects no metrics: the audio it sends is not counted either
        self._counts_audio_in = config.mode != "fast"
        self.voice = VoiceIO(
            self.provider,
            config,
            self.events.emit,
            self._mark_request,
            self._record_audio_in if self._counts_audio_in else None,
        )
        self._strategy: BaseStrategy | None = None
        self._injector: ContextInjector | None = None
        self._tool_runner: ToolRunner | None = None
        LegacyCallbacks.__init__(self)
        self.on_function_call: ManualHandler | None = None
        self.events.on(_LEGACY, self._legacy, priority=-1)
        if config.mode == "fast":  # audio straight to on_audio_response when it alone wants it
            self._direct = DirectAudio(self.events, self._legacy, self.voice.audio_observers)
            self.events.on_change = self.voice.on_output_change = self._audio_consumers_changed
        self.events.on(_OWN, self._observe, priority=_INTERNAL)

    def __repr__(self) -> str:
        return (
            f"VoiceEngine(provider={self.provider.name!r}, mode={self.config.mode!r}, "
            f"connected={self.is_connected})"
        )

    # -- lifecycle ------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True while the provider session is open."""
        return self.provider.is_connected

    @property
    def direct_audio(self) -> bool:
        """True while assistant audio goes from the socket straight to
        :attr:`on_audio_response` (``fast`` mode, when that callback is its only
        consumer: see :mod:`voxengine.engine.direct_audio`)."""
        return self._direct is not None and self._direct.tap is not None

    @property
    def direct_text(self) -> bool:
        """True while assistant text and transcript deltas go from the socket straight
        to :attr:`on_text_response` (``fast`` mode, beside :attr:`direct_audio`, when
        that callback is their only consumer: see :mod:`voxengine.engine.direct_audio`)."""
        tap = self._direct.tap if self._direct is not None else None
        return tap is not None and tap.text is not None

    @property
    def mode(self) -> str:
        """The engine mode."""
        return self.config.mode

    async def connect(self, retry_count: int | None = None) -> None:
        """Open the provider session, start the audio devices and deliver events.

        Args:
            retry_count: connection retries on transport failures (default: the config's).

        Concurrent calls open one session: the others wait, then raise
        :class:`InvalidState`.

        Raises:
            ConnectFailed, AuthenticationFailed, ProviderError: as the provider reports.
            InvalidState: already connected.
        """
        while self._connecting is not None:  # one connect() at a time
            await asyncio.wait({self._connecting})
        self._connecting = turn = asyncio.get_running_loop().create_future()
        try:
            if self.is_connected:
                raise InvalidState("already connected")
            self._closing = False
            retries = self.config.retry_count if retry_count is None else retry_count
            self.events.reopen()
            await self._start(self.provider, retries)
            await self.voice.open()
            self.voice.attach(self.provider)
        finally:
            self._connecting = None
            turn.set_result(None)

    async def resume(
        self, snapshot: ConversationSnapshot, retry_count: int | None = None
    ) -> RestoreResult:
        """:meth:`connect`, continuing the conversation of ``snapshot`` (taken with
        :meth:`snapshot`, possibly in another process): the assistant remembers it.

        The provider resumes its own session by handle when it can (Gemini; an
        expired handle falls back to a replay), else the history is re-created on the
        new session (OpenAI: conversation items; the pipeline: the language model's
        context). The result says how many entries were restored and skipped.

        Raises:
            as :meth:`connect`.
        """
        self.provider.prepare_resume(snapshot)
        await self.connect(retry_count)
        return await self.provider.restore(snapshot)

    def snapshot(self) -> ConversationSnapshot:
        """The conversation so far (:attr:`history`) and the provider's resumption
        handle: what :meth:`resume` needs to continue it elsewhere. Holds no audio
        and no credentials."""
        return ConversationSnapshot.of(self.history, self.provider.resumption_handle)

    async def _start(self, provider: BaseProvider, retries: int) -> None:
        await provider.connect(retry_count=retries)
        self.provider = provider
        self.voice.attach(provider)
        self._injector = ContextInjector(provider, self.config.instructions or "")
        self._tool_runner = None  # made by the first tool call (see _on_tool_call)
        self._strategy = STRATEGIES[self.config.mode](
            provider,
            self.events,
            extra_observers=(self.voice.observe,),
            on_closed=self._on_session_closed,
            mode=self.config.mode,
            audio_observers=self.voice.audio_observers,  # playback, while there is output
        )
        self._strategy.start()
        self._audio_consumers_changed()

    def _audio_consumers_changed(self) -> None:
        """Fast mode: tap the audio for ``on_audio_response`` while it alone wants it
        (see :mod:`voxengine.engine.direct_audio`)."""
        direct = self._direct
        if direct is not None:
            strategy = self._strategy
            provider = self.provider if strategy is not None else None
            direct.update(provider, self.on_audio_response, self.on_text_response)

    def _on_session_closed(self, event: SessionClosed) -> bool:
        """The provider's session ended for good: fail over if a fallback remains."""
        if self._closing or not self._fallbacks:
            return False
        self._failover_task = asyncio.create_task(self._failover(event), name="voxengine-failover")
        return True

    async def _failover(self, closed: SessionClosed) -> None:
        try:
            await self._switch_provider(closed)
        except Exception:  # a bug: the application still learns the session ended
            logger.exception("failover failed")
            await self.events.emit(closed)

    async def _switch_provider(self, closed: SessionClosed) -> None:
        if self._tool_runner is not None:
            await self._tool_runner.aclose()
        if self._injector is not None:
            await self._injector.aclose()
        await fail_over(
            self._fallbacks,
            self.config,
            closed,
            self.provider,
            self.history,
            start=lambda provider: self._start(provider, self.config.retry_count),
            closing=lambda: self._closing,
            emit=self.events.emit,
        )

    async def disconnect(self) -> None:
        """Stop the devices, close the session and deliver its last events. Idempotent.

        Bounded: returns within :data:`DISCONNECT_TIMEOUT` seconds even while a tool
        call or an async event handler hangs (measured worst case about 1 s: see
        benchmarks/reliability.py). Tool calls still running are cancelled at once
        (outputs being sent get :data:`GRACE` seconds); event handlers still busy
        :data:`GRACE` seconds after the provider closed are cancelled. What was
        cancelled is logged and reported with a :class:`ShutdownCancelled` event (in
        the bus history and to handlers). Never raises a background failure.
        """
        self._closing = True
        task = self._failover_task
        if task is not None and not task.done():  # we are closing: no point finishing it
            task.cancel()
            await asyncio.wait({task}, timeout=GRACE)
        await self.voice.close()
        if self._injector is not None:
            await self._injector.aclose()
            self._injector = None  # inject_context / remove_context: InvalidState from now on
        tool_calls = await close_provider(self._tool_runner, self.provider, GRACE)
        handlers: tuple[str, ...] = ()
        closing = [self._strategy.aclose(timeout=GRACE)] if self._strategy is not None else []
        if self._direct is not None:  # the direct audio path's awaitables, side by side
            closing.append(self._direct.aclose(GRACE))
        for cancelled in await asyncio.gather(*closing):
            handlers += tuple(t for t in cancelled if t not in handlers)
        if tool_calls or handlers:
            await report_cancelled(self.events, tool_calls, handlers, GRACE)
        self._audio_consumers_changed()  # no session: no tap

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    @property
    def strategy(self) -> BaseStrategy:
        """The running mode's strategy; raises :class:`InvalidState` before connect."""
        if self._strategy is None:
            raise InvalidState("not connected; call connect() first")
        return self._strategy

    def _mark_request(self) -> None:
        if self._strategy is not None:
            self._strategy.metrics.mark_request()

    def _record_audio_in(self, seconds: float) -> None:
        if self._strategy is not None:
            self._strategy.metrics.record_audio_in(seconds)

    # -- audio ------------------------------------------------------------------------

    async def start_listening(self) -> None:
        """Stream the input device (microphone or file) to the provider.

        Raises:
            ConfigError: no ``audio_backend`` is configured. AudioError: device failure.
        """
        if not self.is_connected:
            raise InvalidState("not connected; call connect() first")
        await self.voice.start_listening()

    async def stop_listening(self) -> None:
        """Stop streaming the input device."""
        await self.voice.stop_listening()

    def send_audio(
        self, audio: bytes, *, sample_rate: int | None = None, channels: int = 1
    ) -> Coroutine[Any, Any, None]:
        """Stream user audio (``await engine.send_audio(pcm)``: the audio path's own
        coroutine, handed on). It is converted to the provider's format (resampled and
        downmixed) when ``sample_rate``/``channels`` differ, and goes through local VAD
        when ``vad_type="client"``.

        Audio at the provider's rate (no ``sample_rate``), mono, with no local VAD and
        nothing counting it (fast mode) goes to the provider's
        :attr:`~voxengine.providers.base.BaseProvider.audio_sender` when it has one:
        the link's own coroutine, the audio path's layers skipped (they would only hand
        it on).

        Raises:
            AudioError: (when awaited) not PCM16 bytes, or not whole frames of the
                declared format.
        """
        if (
            sample_rate is None
            and channels == 1
            and type(channels) is int
            and self.voice.vad is None
            and not self._counts_audio_in
        ):
            sender = self.provider.audio_sender
            if sender is not None:
                return sender(audio)
        return self.voice.send_audio(audio, sample_rate=sample_rate, channels=channels)

    async def commit_audio(self, *, respond: bool = True) -> None:
        """End a manual audio turn and (by default) ask for a response.

        Audio still held by the input resampler (the end of the user's speech, when it
        arrives at a rate other than the provider's) is sent first, so it is part of
        this turn and never carried into the next one.
        """
        if self._injector is not None:
            await self._injector.before_user_turn()
        await self.voice.flush_input()
        await self.provider.commit_audio()
        if respond:
            await self.create_response()

    async def send_recorded_audio(
        self,
        audio: bytes,
        *,
        sample_rate: int | None = None,
        channels: int = 1,
        auto_respond: bool = True,
    ) -> None:
        """Send a whole recorded utterance as one user message (independent of VAD).

        Raises:
            AudioError: empty or malformed audio.
        """
        rate = self.provider.input_format.sample_rate if sample_rate is None else sample_rate
        fmt = AudioFormat(sample_rate=rate, channels=channels)  # AudioError: 0, "16000", ...
        pcm = convert(audio, fmt, self.provider.input_format)
        if self._injector is not None:
            await self._injector.before_user_turn()
        await self.provider.send_audio_message(pcm)
        self._record_audio_in(self.provider.input_format.duration(len(pcm)))
        if auto_respond:
            await self.create_response()

    async def interrupt(self, played: float | None = None) -> Interrupted:
        """Stop the assistant now: stop playback, cancel the response, truncate the item.

        With an output device the truncation point is what it actually played; without
        one, pass ``played`` (seconds of the current assistant item the user heard).
        """
        return await self.voice.interrupt(played)

    # -- conversation ---------------------------------------------------------------

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        """Send a user message and (by default) ask for a response."""
        if self._injector is not None:
            await self._injector.before_user_turn()
        if respond:
            self._mark_request()
        await self.provider.send_text(text, respond=respond)

    async def create_response(self, *, instructions: str | None = None) -> None:
        """Ask the model to respond now."""
        self._mark_request()
        await self.provider.create_response(instructions=instructions)

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        """Return a function call's output and (by default) ask for the follow-up."""
        if respond:
            self._mark_request()
        await self.provider.send_tool_result(call_id, output, respond=respond)

    async def update_session(self, session: SessionConfig | None = None, **changes: Any) -> None:
        """Change session settings mid-session: a :class:`SessionConfig`, or its fields
        as keywords (``await engine.update_session(instructions="...", voice="cedar")``).
        """
        self.provider.require(Capability.SESSION_UPDATE)
        if session is None:
            try:
                session = SessionConfig(**changes)
            except TypeError as exc:
                raise ConfigError(str(exc)) from exc
        elif changes:
            raise ConfigError("pass a SessionConfig or keyword changes, not both")
        await self.provider.update_session(session)

    async def inject_context(
        self,
        text: str,
        *,
        timing: ContextTiming = ContextTiming.NOW,
        method: ContextMethod = ContextMethod.SYSTEM_MESSAGE,
        priority: int = 0,
        ttl: float | None = None,
    ) -> ContextEntry:
        """Give the model context without a user turn and without triggering a reply.

        See :mod:`voxengine.conversation.context` for timings, methods, priority and TTL.
        """
        if self._injector is None:
            raise InvalidState("not connected; call connect() first")
        return await self._injector.inject(
            text, timing=timing, method=method, priority=priority, ttl=ttl
        )

    async def remove_context(self, context_id: str) -> bool:
        """Withdraw injected context; returns whether it was known."""
        if self._injector is None:
            raise InvalidState("not connected; call connect() first")
        return await self._injector.withdraw(context_id)

    async def text_2_audio_response(self, text: str, *, timeout: float = 60.0) -> bytes:
        """Have the assistant speak ``text`` verbatim; returns the audio (provider rate).

        The request is part of the conversation (the spoken text joins the history).
        """
        if not text.strip():
            raise ConfigError("text must be non-empty")
        instructions = "Say exactly the following text, word for word, and nothing else:\n" + text
        return await collect_response(
            self.events, lambda: self.create_response(instructions=instructions), timeout
        )

    async def transcribe_audio_file(self, path: str | Path, *, timeout: float = 120.0) -> str:
        """Transcribe a WAV file with the connected model; returns the transcript text.

        The file's audio is sent as a recorded message and the model is asked, for this
        response only, to answer with the verbatim transcript as text.
        """
        return await transcribe_file(self.events, self.provider, path, timeout, self._mark_request)

    # -- state ----------------------------------------------------------------------

    @property
    def history(self) -> list[HistoryEntry]:
        """The conversation so far (empty in ``fast`` mode, which keeps none)."""
        return self._strategy.history.entries if self._strategy is not None else []

    def get_usage(self) -> Usage:
        """Token usage summed over the session's responses."""
        return self._strategy.metrics.usage if self._strategy is not None else Usage()

    def get_metrics(self) -> MetricsSnapshot:
        """Counters and latencies (not collected in ``fast`` mode)."""
        return self.strategy.metrics.snapshot()

    def estimate_cost(self, *, model: str | None = None) -> Cost | None:
        """The session's cost so far in USD, from the price table (``None``: model unknown).

        ``model`` defaults to the model the provider reported at connect. Prices come
        from ``VoiceEngineConfig.prices`` (default :data:`voxengine.pricing.DEFAULT_PRICES`,
        dated); override them there when your contract differs.
        """
        metrics = self.strategy.metrics
        name = model or metrics.model or self.config.model
        if name is None:
            return None
        return metrics.tracker.cost(self.config.prices or DEFAULT_PRICES, name)

    # -- internal handlers ----------------------------------------------------------

    def _observe(self, event: Event) -> Awaitable[None] | None:
        """The engine's own handler (one subscription, before the application's): tool
        calls go to the tool runner; the end of a response lets it answer them, then
        the context injector sees the turn-taking events."""
        if isinstance(event, ToolCall):
            return self._on_tool_call(event)
        if isinstance(event, ResponseDone):
            self._on_response_done(event)
        return self._observe_context(event)

    async def _on_tool_call(self, event: ToolCall) -> None:
        runner = self._tool_runner
        if runner is None:  # the first call of this session: most sessions make none
            if self._strategy is None:
                return  # not connected
            runner = self._tool_runner = ToolRunner(
                self.tools, self.provider, self._manual_handler, self._mark_request
            )
        await runner.on_tool_call(event)

    def _manual_handler(self) -> ManualHandler | None:
        return self.on_function_call

    def _on_response_done(self, event: ResponseDone) -> None:
        if self._tool_runner is not None:
            self._tool_runner.on_response_done(event)

    def _observe_context(self, event: Event) -> Awaitable[None] | None:
        return self._injector.observe(event) if self._injector is not None else None
