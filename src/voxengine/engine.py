"""The application facade: :class:`VoiceEngine` and :class:`VoiceEngineConfig`.

``VoiceEngine`` owns one provider and one :class:`~voxengine.bus.EventBus`; its mode
(``fast``, ``provider``, ``big``) picks the bookkeeping between them (see
:mod:`voxengine.strategies`). All modes talk to providers through the same calls.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

from voxengine.bus import EventBus
from voxengine.config import Modality, SessionConfig, ToolSpec, TurnDetection, TurnDetectionConfig
from voxengine.errors import ConfigError, InvalidState
from voxengine.events import (
    AudioDelta,
    Event,
    Interrupted,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStatus,
    Role,
    TextDelta,
    ToolCall,
    TranscriptDelta,
    Usage,
)
from voxengine.history import HistoryEntry
from voxengine.metrics import MetricsSnapshot
from voxengine.providers.base import BaseProvider, Capability
from voxengine.providers.registry import get_provider
from voxengine.strategies import STRATEGIES, BaseStrategy

__all__ = ["VoiceEngine", "VoiceEngineConfig"]

logger = logging.getLogger("voxengine.engine")

Mode = Literal["fast", "big", "provider"]
_TURN_DETECTION = {m.value: m for m in TurnDetection}
_MODALITIES = {"audio": (Modality.AUDIO,), "text": (Modality.TEXT,)}


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceEngineConfig:
    """Everything :class:`VoiceEngine` needs; validated at construction.

    Attributes:
        api_key: provider key (else the provider's environment variable); never in repr.
        provider: registry name (``"openai"``, ``"azure"``, ``"mock"``, ...).
        mode: ``"fast"``, ``"big"`` or ``"provider"``.
        model: provider model (Azure: deployment name).
        base_url: endpoint override (proxy, Azure resource, local fake server).
        voice, instructions, temperature, max_output_tokens: session settings.
        output_modality: ``"audio"`` (with transcript) or ``"text"``.
        turn_detection: ``"server_vad"``, ``"semantic_vad"``, ``"manual"`` (or
            ``"local_vad"``, which turns the provider's VAD off).
        input_transcription_model: transcribe the user's audio with this model.
        tools: functions the model may call.
        connect_timeout: seconds for connection and handshake.
        retry_count: connection retries on transport failures.
    """

    api_key: str | None = field(default=None, repr=False)
    provider: str = "openai"
    mode: Mode = "provider"
    model: str | None = None
    base_url: str | None = None
    voice: str | None = None
    instructions: str | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    output_modality: Literal["audio", "text"] | None = None
    turn_detection: str | None = None
    input_transcription_model: str | None = None
    tools: tuple[ToolSpec, ...] = ()
    connect_timeout: float = 10.0
    retry_count: int = 3

    def __post_init__(self) -> None:
        if self.mode not in STRATEGIES:
            raise ConfigError(f"mode must be one of {sorted(STRATEGIES)}, got {self.mode!r}")
        if self.output_modality is not None and self.output_modality not in _MODALITIES:
            raise ConfigError("output_modality must be 'audio' or 'text'")
        if self.turn_detection is not None and self.turn_detection not in _TURN_DETECTION:
            raise ConfigError(
                f"turn_detection must be one of {sorted(_TURN_DETECTION)}, "
                f"got {self.turn_detection!r}"
            )
        if self.retry_count < 0:
            raise ConfigError("retry_count must be >= 0")
        get_provider(self.provider)  # unknown names fail here, listing the known ones
        self.session_config()  # validates the session settings

    def session_config(self) -> SessionConfig:
        """The :class:`SessionConfig` these settings describe."""
        td = None
        if self.turn_detection is not None:
            td = TurnDetectionConfig(mode=_TURN_DETECTION[self.turn_detection])
        return SessionConfig(
            instructions=self.instructions,
            voice=self.voice,
            modalities=_MODALITIES[self.output_modality] if self.output_modality else None,
            turn_detection=td,
            input_transcription_model=self.input_transcription_model,
            tools=self.tools or None,
            max_output_tokens=self.max_output_tokens,
            temperature=self.temperature,
        )


TextCallback = Callable[[str], Awaitable[object] | object]
AudioCallback = Callable[[bytes], Awaitable[object] | object]


class VoiceEngine:
    """A voice conversation with one provider.

    Example::

        engine = VoiceEngine(VoiceEngineConfig(provider="openai", mode="provider"))
        engine.on_text_response = print
        await engine.connect()
        await engine.send_text("Hello!")
        await engine.events.wait_for(ResponseDone, timeout=30)
        await engine.disconnect()

    Legacy callbacks (attributes, ``None`` to disable): ``on_text_response(text)`` for
    each text or assistant-transcript fragment, ``on_audio_response(pcm16)`` for each
    audio chunk, ``on_response_done(event)``, ``on_error(event)`` for recoverable
    provider errors, ``on_function_call(event)`` — if it returns a value other than
    ``None``, the engine sends it (``str`` as is, else JSON) as the tool result and asks
    for the follow-up response.

    Raises:
        ConfigError: at construction, for an invalid config, an unknown provider, a
            missing key, or a setting the provider does not support.
    """

    def __init__(self, config: VoiceEngineConfig, *, provider: BaseProvider | None = None):
        self.config = config
        self.provider: BaseProvider = provider or self._build_provider(config)
        self.events = EventBus()
        self._strategy: BaseStrategy | None = None
        self.on_text_response: TextCallback | None = None
        self.on_audio_response: AudioCallback | None = None
        self.on_response_done: Callable[[ResponseDone], Any] | None = None
        self.on_error: Callable[[ProviderErrorEvent], Any] | None = None
        self.on_function_call: Callable[[ToolCall], Any] | None = None
        self._tool_outputs: dict[str, list[tuple[str, str]]] = {}
        self.events.on((TextDelta, TranscriptDelta, AudioDelta), self._legacy_stream, priority=-1)
        self.events.on((ResponseDone, ProviderErrorEvent, ToolCall), self._legacy_done, priority=-1)

    def __repr__(self) -> str:
        return (
            f"VoiceEngine(provider={self.provider.name!r}, mode={self.config.mode!r}, "
            f"connected={self.is_connected})"
        )

    @staticmethod
    def _build_provider(config: VoiceEngineConfig) -> BaseProvider:
        cls = get_provider(config.provider)
        session = config.session_config()
        if session.temperature is not None and Capability.TEMPERATURE not in cls.capabilities:
            raise ConfigError(f"provider {config.provider!r} has no temperature setting")
        if session.tools and Capability.FUNCTION_CALLING not in cls.capabilities:
            raise ConfigError(f"provider {config.provider!r} does not support function calling")
        provider_config = cls.config_type(
            api_key=config.api_key,
            model=config.model,
            base_url=config.base_url,
            session=session,
            connect_timeout=config.connect_timeout,
        )
        return cls(provider_config)

    # -- lifecycle ------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        """True while the provider session is open."""
        return self.provider.is_connected

    @property
    def mode(self) -> str:
        """The engine mode."""
        return self.config.mode

    async def connect(self) -> None:
        """Open the provider session and start delivering events.

        Raises:
            ConnectFailed, AuthenticationFailed, ProviderError: as the provider reports.
        """
        await self.provider.connect(retry_count=self.config.retry_count)
        self.events.reopen()
        self._strategy = STRATEGIES[self.config.mode](self.provider, self.events)
        self._strategy.start()

    async def disconnect(self) -> None:
        """Close the session and wait until its last events were delivered. Idempotent."""
        await self.provider.disconnect()
        if self._strategy is not None:
            await self._strategy.wait_closed()

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

    # -- conversation ---------------------------------------------------------------

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        """Send a user message and (by default) ask for a response."""
        if respond and self._strategy is not None:
            self._strategy.metrics.mark_request()
        await self.provider.send_text(text, respond=respond)

    async def send_audio(self, audio: bytes, *, sample_rate: int | None = None) -> None:
        """Stream user audio (PCM16 mono at the provider's input rate)."""
        await self.provider.send_audio(audio, sample_rate=sample_rate)

    async def commit_audio(self, *, respond: bool = True) -> None:
        """End a manual audio turn and (by default) ask for a response."""
        await self.provider.commit_audio()
        if respond:
            await self.create_response()

    async def create_response(self, *, instructions: str | None = None) -> None:
        """Ask the model to respond now."""
        if self._strategy is not None:
            self._strategy.metrics.mark_request()
        await self.provider.create_response(instructions=instructions)

    async def interrupt(self, played: float | None = None) -> Interrupted:
        """Stop the assistant: cancel its response, truncate at ``played`` seconds heard."""
        return await self.provider.interrupt(played)

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        """Return a function call's output and (by default) ask for the follow-up."""
        if respond and self._strategy is not None:
            self._strategy.metrics.mark_request()
        await self.provider.send_tool_result(call_id, output, respond=respond)

    async def update_session(self, session: SessionConfig) -> None:
        """Change session settings mid-session."""
        self.provider.require(Capability.SESSION_UPDATE)
        await self.provider.update_session(session)

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

    # -- legacy callbacks -----------------------------------------------------------

    async def _legacy_stream(self, event: Event) -> None:
        if isinstance(event, AudioDelta):
            if self.on_audio_response is not None:
                await _call(self.on_audio_response, event.audio)
        elif isinstance(event, TextDelta | TranscriptDelta) and self.on_text_response is not None:
            if isinstance(event, TranscriptDelta) and event.role is not Role.ASSISTANT:
                return
            await _call(self.on_text_response, event.delta)

    async def _legacy_done(self, event: Event) -> None:
        if isinstance(event, ResponseDone):
            if self.on_response_done is not None:
                await _call(self.on_response_done, event)
            await self._send_tool_outputs(event)
        elif isinstance(event, ProviderErrorEvent) and self.on_error is not None:
            await _call(self.on_error, event)
        elif isinstance(event, ToolCall) and self.on_function_call is not None:
            result = await _call(self.on_function_call, event)
            if result is not None:
                output = result if isinstance(result, str) else _to_json(result)
                self._tool_outputs.setdefault(event.response_id, []).append((event.call_id, output))

    async def _send_tool_outputs(self, done: ResponseDone) -> None:
        # Outputs go out once the calling response is over: the provider allows one
        # active response, and parallel calls of one response share one follow-up.
        outputs = self._tool_outputs.pop(done.response_id, [])
        if not outputs or not self.is_connected:
            return
        for call_id, output in outputs:
            await self.provider.send_tool_result(call_id, output, respond=False)
        if done.status is ResponseStatus.COMPLETED:
            await self.create_response()


async def _call(fn: Callable[..., Any], *args: object) -> object:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


def _to_json(value: object) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return json.dumps(str(value))
