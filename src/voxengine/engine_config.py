""":class:`VoiceEngineConfig`: every setting of a :class:`~voxengine.engine.VoiceEngine`.

Validated at construction, so a bad value fails before any I/O. The voice activity
detection fields keep the names earlier voxengine releases used (``vad_enabled``,
``vad_type``, ``vad_threshold``, ``vad_speech_start_ms``, ``vad_speech_end_ms``).
"""

from __future__ import annotations

import functools
import math
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Self

from voxengine.audio.format import validate_sample_rate
from voxengine.config import (
    Modality,
    ReconnectPolicy,
    ReplyPolicy,
    SessionConfig,
    ToolSpec,
    TurnDetection,
    TurnDetectionConfig,
    WatchdogPolicy,
)
from voxengine.errors import ConfigError
from voxengine.presets import preset_values
from voxengine.pricing import PriceTable
from voxengine.providers.registry import get_provider
from voxengine.strategies import STRATEGIES
from voxengine.transport.backends import check_transport

__all__ = ["VoiceEngineConfig"]

Mode = Literal["fast", "big", "provider"]
VadType = Literal["client", "server", "semantic"]
AudioBackend = Literal["sounddevice", "file", "null"]
_MODALITIES = {"audio": (Modality.AUDIO,), "text": (Modality.TEXT,)}
_VAD_TYPES = ("client", "server", "semantic")
_BACKENDS = ("sounddevice", "file", "null")
#: Provider settings that belong to the primary provider's account and endpoint.
_PRIMARY_ONLY = frozenset({"api_key", "model", "base_url", "ssl_context"})
#: The policies' defaults: immutable, one instance for every config.
_DEFAULT_RECONNECT = ReconnectPolicy()
_DEFAULT_WATCHDOG = WatchdogPolicy()


@functools.lru_cache(maxsize=32)
def _first_equal(config: SessionConfig) -> SessionConfig:
    return config


def _shared(config: SessionConfig) -> SessionConfig:
    """The first :class:`SessionConfig` equal to ``config`` seen lately (one of the
    last 32 kinds), else ``config``: engines made from like settings share one
    immutable instance (memory per session). Unhashable ones (tools carry JSON
    schemas) are returned as they are."""
    try:
        return _first_equal(config)
    except TypeError:
        return config


#: What ``tools`` accepts: a declared spec (handled by ``on_function_call``), a
#: :class:`voxengine.tools.Tool`, or a plain (async) function.
ToolLike = ToolSpec | Callable[..., Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceEngineConfig:
    """Settings of a voice engine.

    Connection:
        api_key: provider key (else the provider's environment variable); never in repr.
        provider: registry name (``"openai"``, ``"azure"``, ``"mock"``, ...).
        mode: ``"fast"``, ``"big"`` or ``"provider"`` (see :mod:`voxengine.strategies`).
        model: provider model (Azure: deployment name). base_url: endpoint override.
        connect_timeout: seconds for connection and handshake. retry_count: connect retries.
        ssl_context: replaces the system trust store for ``wss://`` (a private CA,
            client certificates); never in repr.
        transport: the WebSocket backend, ``"websockets"`` (default) or ``"picows"``
            (compiled; ``pip install 'voxengine[picows]'``), see docs/performance.md.

    Conversation:
        voice, instructions, temperature, max_output_tokens: session settings.
        output_modality: ``"audio"`` (with transcript) or ``"text"``.
        input_transcription_model: transcribe the user's audio with this model.
        tools: functions the model may call (see ``ToolLike``); functions run automatically.
        auto_respond: ask for a response when the user's turn ends.
        barge_in: the user's speech interrupts the assistant (stop playback, cancel,
            truncate at what was heard).
        reply_policy: a reply asked for while a response is active (``send_text``
            twice, a tool result during a reply): ``"queue"`` (answered after it) or
            ``"interrupt"`` (it is cancelled first); see :class:`voxengine.config.ReplyPolicy`.

    Turn detection:
        vad_enabled: detect turns from voice activity (False: push-to-talk, the app commits).
        vad_type: ``"server"`` (provider VAD), ``"semantic"`` (provider's semantic VAD) or
            ``"client"`` (voxengine's VAD; the provider's is turned off).
        vad_threshold: 0..1 sensitivity. vad_speech_start_ms: speech needed to start a
        turn (client). vad_speech_end_ms: silence that ends it. vad_prefix_padding_ms:
        audio kept before the start. vad_eagerness: semantic VAD eagerness.
        vad_engine: client VAD implementation, ``"energy"`` or ``"webrtc"``.

    Audio I/O (``audio_backend=None``: the application streams audio itself):
        audio_backend: ``"sounddevice"`` (microphone and speaker, extra ``audio``),
            ``"file"`` (``input_file`` WAV in, ``output_file`` WAV out) or ``"null"``.
        input_device, output_device: sounddevice index or name.
        device_sample_rate: rate of the devices (default: the backend's choice).
        playback: play the assistant's audio on the output backend.

    Reliability:
        reconnect: how lost connections are recovered (:class:`ReconnectPolicy`:
            bounded consecutive attempts, backoff, what counts as healthy).
        watchdog: detection of a response that stops making progress
            (:class:`WatchdogPolicy`).

        event_queue_size: bound of the events waiting for the application (beyond it
            assistant audio is dropped oldest-first; see :mod:`voxengine.session.queue`).

    Failover:
        failover: provider names to switch to, in order, when the session fails for
            good (reconnects exhausted or refused); the conversation is replayed. They
            get every setting but the primary's ``api_key``, ``model``, ``base_url``
            and ``ssl_context`` (see :meth:`VoiceEngineConfig.provider_settings`).

    Cost:
        prices: price table for :meth:`VoiceEngine.estimate_cost` (default: the dated
            :data:`voxengine.pricing.DEFAULT_PRICES`).
    """

    api_key: str | None = field(default=None, repr=False)
    provider: str = "openai"
    mode: Mode = "provider"
    model: str | None = None
    base_url: str | None = None
    connect_timeout: float = 10.0
    retry_count: int = 3
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    transport: str = "websockets"

    voice: str | None = None
    instructions: str | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    output_modality: Literal["audio", "text"] | None = None
    input_transcription_model: str | None = None
    tools: tuple[ToolLike, ...] = ()
    auto_respond: bool = True
    barge_in: bool = True
    reply_policy: Literal["queue", "interrupt"] = "queue"

    vad_enabled: bool = True
    vad_type: VadType = "server"
    vad_threshold: float = 0.5
    vad_speech_start_ms: int = 200
    vad_speech_end_ms: int = 500
    vad_prefix_padding_ms: int = 300
    vad_eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    vad_engine: Literal["energy", "webrtc"] = "energy"

    audio_backend: AudioBackend | None = None
    input_device: int | str | None = None
    output_device: int | str | None = None
    input_file: str | None = None
    output_file: str | None = None
    device_sample_rate: int | None = None
    playback: bool = True

    prices: PriceTable | None = None

    # one immutable default instance, shared (memory per session)
    reconnect: ReconnectPolicy = _DEFAULT_RECONNECT
    watchdog: WatchdogPolicy = _DEFAULT_WATCHDOG
    event_queue_size: int = 2000

    failover: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in STRATEGIES:
            raise ConfigError(f"mode must be one of {sorted(STRATEGIES)}, got {self.mode!r}")
        if self.output_modality is not None and self.output_modality not in _MODALITIES:
            raise ConfigError("output_modality must be 'audio' or 'text'")
        if self.reply_policy not in ("queue", "interrupt"):
            raise ConfigError(
                f"reply_policy must be 'queue' or 'interrupt', got {self.reply_policy!r}"
            )
        if self.vad_type not in _VAD_TYPES:
            raise ConfigError(f"vad_type must be one of {_VAD_TYPES}, got {self.vad_type!r}")
        if self.vad_engine not in ("energy", "webrtc"):
            raise ConfigError("vad_engine must be 'energy' or 'webrtc'")
        for name in ("vad_speech_start_ms", "vad_speech_end_ms", "vad_prefix_padding_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer of milliseconds")
        if not (isinstance(self.vad_threshold, int | float) and 0 <= self.vad_threshold <= 1):
            raise ConfigError("vad_threshold must be within 0..1")
        if self.retry_count < 0:
            raise ConfigError("retry_count must be >= 0")
        if not math.isfinite(self.connect_timeout) or self.connect_timeout <= 0:
            raise ConfigError("connect_timeout must be positive seconds")
        if self.audio_backend is not None and self.audio_backend not in _BACKENDS:
            raise ConfigError(f"audio_backend must be one of {_BACKENDS} or None")
        if self.audio_backend == "file" and self.input_file is None and self.output_file is None:
            raise ConfigError("audio_backend='file' needs input_file and/or output_file")
        if not isinstance(self.reconnect, ReconnectPolicy):
            raise ConfigError("reconnect must be a ReconnectPolicy")
        if not isinstance(self.watchdog, WatchdogPolicy):
            raise ConfigError("watchdog must be a WatchdogPolicy")
        if isinstance(self.event_queue_size, bool) or not isinstance(self.event_queue_size, int):
            raise ConfigError("event_queue_size must be an integer")
        if self.event_queue_size < 1:
            raise ConfigError("event_queue_size must be >= 1")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise ConfigError("ssl_context must be an ssl.SSLContext")
        check_transport(self.transport)
        if self.device_sample_rate is not None:  # AudioError: 0, negative, not an int
            validate_sample_rate(self.device_sample_rate, "device_sample_rate")
        for name in (self.provider, *self.failover):
            get_provider(name)  # unknown names fail here, listing the known ones
        get_provider(self.provider).check_voice(self.voice)  # before any I/O
        self.session_config()  # validates the session settings and tools

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> Self:
        """A config from preset ``name`` (see :mod:`voxengine.presets`) plus ``overrides``.

        Raises:
            ConfigError: unknown preset or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigError(f"unknown VoiceEngineConfig fields: {sorted(unknown)}")
        return cls(**{**preset_values(name), **overrides})

    def provider_settings(self, *, primary: bool = True) -> dict[str, Any]:
        """The :class:`~voxengine.providers.base.ProviderConfig` fields these settings
        give a provider: ``session`` (:meth:`session_config`) and every field both
        configs name alike, so a new connection setting reaches every provider through
        this one path. A fallback provider (``primary=False``) gets ``None`` for the
        fields that belong to the primary's account and endpoint (``api_key``,
        ``model``, ``base_url``, ``ssl_context``): its own defaults apply.
        """
        from voxengine.providers.base import ProviderConfig

        settings: dict[str, Any] = {"session": self.session_config()}
        for f in fields(ProviderConfig):
            if f.name != "session":
                own = not primary and f.name in _PRIMARY_ONLY
                settings[f.name] = None if own else getattr(self, f.name)
        return settings

    def turn_detection(self) -> TurnDetectionConfig:
        """The turn detection these settings describe."""
        if not self.vad_enabled:
            mode = TurnDetection.MANUAL
        else:
            mode = {
                "server": TurnDetection.SERVER_VAD,
                "semantic": TurnDetection.SEMANTIC_VAD,
                "client": TurnDetection.LOCAL_VAD,
            }[self.vad_type]
        return TurnDetectionConfig(
            mode=mode,
            threshold=float(self.vad_threshold),
            prefix_padding=self.vad_prefix_padding_ms / 1000,
            silence_duration=self.vad_speech_end_ms / 1000,
            create_response=self.auto_respond,
            interrupt_response=self.barge_in,
            eagerness=self.vad_eagerness,
        )

    def tool_specs(self) -> tuple[ToolSpec, ...]:
        """The specs of ``tools``, functions converted by :func:`voxengine.tools.tool`."""
        from voxengine.conversation.tools import Tool, tool

        specs: list[ToolSpec] = []
        for entry in self.tools:
            if isinstance(entry, ToolSpec):
                specs.append(entry)
            elif isinstance(entry, Tool):
                specs.append(entry.spec)
            elif callable(entry):
                specs.append(tool(entry).spec)
            else:
                raise ConfigError(f"tools entries must be ToolSpec, Tool or functions: {entry!r}")
        return tuple(specs)

    def session_config(self) -> SessionConfig:
        """The :class:`SessionConfig` these settings describe (immutable: equal ones
        are one shared instance when hashable, see :func:`_shared`)."""
        specs = self.tool_specs()
        return _shared(
            SessionConfig(
                instructions=self.instructions,
                voice=self.voice,
                modalities=_MODALITIES[self.output_modality] if self.output_modality else None,
                turn_detection=self.turn_detection(),
                input_transcription_model=self.input_transcription_model,
                tools=specs or None,
                max_output_tokens=self.max_output_tokens,
                temperature=self.temperature,
                reply_policy=ReplyPolicy(self.reply_policy),
            )
        )
