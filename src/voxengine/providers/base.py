"""The provider extension point: :class:`BaseProvider`, its config and capabilities.

A provider turns the common commands (send audio, send text, respond, interrupt, ...)
into one service's protocol and reports what happens as :mod:`voxengine.events`.
To add one: subclass :class:`BaseProvider` (or
:class:`~voxengine.providers.realtime.RealtimeProvider` for WebSocket services with a
sans-I/O protocol), declare ``name``, ``config_type`` and ``capabilities``, then
:func:`~voxengine.providers.register_provider` it.
"""

from __future__ import annotations

import abc
import difflib
import enum
import ssl
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from voxengine.audio.format import AudioFormat, validate_sample_rate
from voxengine.commands import (
    CancelResponse,
    ClearAudio,
    Command,
    CommitAudio,
    CreateResponse,
    DeleteItem,
    SendAudio,
    SendAudioMessage,
    SendText,
    SendToolResult,
    TruncateItem,
    UpdateSession,
)
from voxengine.config import Modality, ReconnectPolicy, SessionConfig, WatchdogPolicy
from voxengine.errors import AudioError, ConfigError, InvalidState
from voxengine.events import Event, Interrupted, Role
from voxengine.providers._restore import as_note, note_role, restore_commands
from voxengine.session.history import ConversationHistory
from voxengine.session.queue import Consumer
from voxengine.session.snapshot import ConversationSnapshot, RestoreResult
from voxengine.session.tap import AudioTap
from voxengine.transport.backends import DEFAULT_TRANSPORT, check_transport

__all__ = ["BaseProvider", "Capability", "ProviderConfig"]

#: The policies' defaults: immutable, one instance for every config.
_DEFAULT_RECONNECT = ReconnectPolicy()
_DEFAULT_WATCHDOG = WatchdogPolicy()


class Capability(enum.Enum):
    """Features a provider may support; declared, never probed."""

    AUDIO_INPUT = "audio_input"
    AUDIO_OUTPUT = "audio_output"
    TEXT_INPUT = "text_input"
    TEXT_OUTPUT = "text_output"
    SERVER_VAD = "server_vad"
    SEMANTIC_VAD = "semantic_vad"
    MANUAL_TURNS = "manual_turns"
    FUNCTION_CALLING = "function_calling"
    INPUT_TRANSCRIPTION = "input_transcription"
    OUTPUT_TRANSCRIPTION = "output_transcription"
    INTERRUPTION = "interruption"
    TRUNCATION = "truncation"
    SESSION_UPDATE = "session_update"
    ITEM_DELETION = "item_deletion"
    USAGE = "usage"
    TEMPERATURE = "temperature"
    CONTEXT_INJECTION = "context_injection"
    #: The provider reports SpeechStarted/SpeechStopped for its own VAD.
    SPEECH_EVENTS = "speech_events"
    RECORDED_AUDIO = "recorded_audio"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderConfig:
    """Settings every provider understands; subclasses add their own.

    ``api_key`` is never shown in ``repr``. ``base_url`` overrides the service
    endpoint (e.g. a proxy or a local fake server). ``wss://`` endpoints are verified
    against the system trust store (``$SSL_CERT_FILE`` / ``$SSL_CERT_DIR`` honoured);
    ``ssl_context`` replaces that verification (e.g. a private CA, client
    certificates). ``transport`` names the WebSocket backend: ``"websockets"`` (the
    default) or ``"picows"`` (compiled, less CPU per frame; ``pip install
    'voxengine[picows]'``), see :mod:`voxengine.transport.backends`; providers that
    open no WebSocket ignore it. ``connect_timeout`` bounds the
    connection and session handshake, in seconds. ``reconnect`` and ``watchdog`` set
    how a lost or silent connection is recovered; ``event_queue_size`` bounds the
    events waiting for the application (see :mod:`voxengine.session.queue`).
    """

    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    base_url: str | None = None
    session: SessionConfig = field(default_factory=SessionConfig)
    connect_timeout: float = 10.0
    # one immutable default instance, shared (memory per session)
    reconnect: ReconnectPolicy = _DEFAULT_RECONNECT
    watchdog: WatchdogPolicy = _DEFAULT_WATCHDOG
    event_queue_size: int = 2000
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    transport: str = DEFAULT_TRANSPORT

    @classmethod
    def of(cls, config: ProviderConfig) -> Self:
        """``config`` as this config type: returned as is when it already is one, else a
        new one carrying every field :class:`ProviderConfig` defines (the one path a
        generic config takes to a provider's own; fields the subclass adds keep their
        defaults)."""
        if isinstance(config, cls):
            return config
        return cls(**{f.name: getattr(config, f.name) for f in fields(ProviderConfig)})

    def __post_init__(self) -> None:
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise ConfigError("ssl_context must be an ssl.SSLContext")
        if self.connect_timeout <= 0:
            raise ConfigError("connect_timeout must be positive")
        if self.event_queue_size < 1:
            raise ConfigError("event_queue_size must be >= 1")
        if self.api_key is not None and not isinstance(self.api_key, str):
            raise ConfigError("api_key must be a string")
        check_transport(self.transport)


class BaseProvider(abc.ABC):
    """One connection to one speech-to-speech service.

    Contract: methods that send raise :class:`~voxengine.errors.InvalidState`
    before :meth:`connect` or after :meth:`disconnect`, and
    :class:`~voxengine.errors.AudioError` for invalid audio, before any I/O.
    :meth:`events` yields every event in order and ends after
    :class:`~voxengine.events.SessionClosed`.
    """

    #: Registry name, e.g. ``"openai"``.
    name: ClassVar[str]
    #: The config class this provider takes.
    config_type: ClassVar[type[ProviderConfig]] = ProviderConfig
    #: What the provider supports.
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    #: The voice names the service offers, in its documented order; ``None``: any name
    #: (the provider checks it itself, or has no fixed list).
    voices: ClassVar[tuple[str, ...] | None] = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        """Providers written before :meth:`send` existed keep working: a subclass that
        implements every method that used to be abstract, but not :meth:`send`, gets a
        :meth:`send` that hands each command to those methods."""
        super().__init_subclass__(**kwargs)
        if cls.send is BaseProvider.send and all(
            getattr(cls, name) is not getattr(BaseProvider, name) for name in _LEGACY_SENDERS
        ):
            cls.send = _send_by_methods  # type: ignore[method-assign]

    def __init__(self, config: ProviderConfig) -> None:
        """Keep ``config`` as this provider's :attr:`config_type` (a plain
        :class:`ProviderConfig` is carried over by :meth:`ProviderConfig.of`, its own
        fields at their defaults).

        Raises:
            ConfigError: a voice the service does not offer.
        """
        config = self.config_type.of(config)
        self.check_voice(config.session.voice)
        self.config = config

    @classmethod
    def check_voice(cls, voice: str | None) -> None:
        """Refuse, before any I/O, a voice this provider's service does not offer.

        Raises:
            ConfigError: ``voice`` is not one of :attr:`voices`; the message lists the
                valid ones and suggests the closest name.
        """
        if voice is None or cls.voices is None or voice in cls.voices:
            return
        if not isinstance(voice, str):
            raise ConfigError(f"voice must be a string, got {voice!r}")
        by_lower = {name.lower(): name for name in cls.voices}
        close = difflib.get_close_matches(voice.lower(), list(by_lower), n=1)
        hint = f" Did you mean {by_lower[close[0]]!r}?" if close else ""
        raise ConfigError(
            f"{cls.name} has no voice {voice!r}.{hint} Valid voices: {', '.join(cls.voices)}."
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.config.model!r})"

    @property
    @abc.abstractmethod
    def input_format(self) -> AudioFormat:
        """Format :meth:`send_audio` expects."""

    @property
    @abc.abstractmethod
    def output_format(self) -> AudioFormat:
        """Format of :class:`~voxengine.events.AudioDelta` audio."""

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool:
        """True while the session is open."""

    @abc.abstractmethod
    async def connect(self, retry_count: int = 3) -> None:
        """Open the session, retrying transport failures ``retry_count`` times with backoff.

        Authentication and configuration refusals are not retried.
        """

    @abc.abstractmethod
    async def disconnect(self) -> None:
        """Close the session. Idempotent."""

    @abc.abstractmethod
    async def send(self, command: Command, *more: Command) -> None:
        """Carry out ``command`` (then ``more``, in order): the one path to the service.

        Commands given together reach the protocol before any of their frames is
        written, so a protocol may merge them (Gemini sends a text turn and the request
        for its answer as one message). The friendly methods below only build commands
        and call this; a provider implements this one method (and :meth:`interrupt`).

        Raises:
            InvalidState: before :meth:`connect` or after :meth:`disconnect`.
            ConfigError: the service has no way to carry out a command.
        """

    #: ``send_audio(audio)`` (no ``sample_rate``) in one call, for a caller that counts
    #: calls per chunk (``VoiceEngine.send_audio``), or ``None``: call :meth:`send_audio`.
    #: It returns the coroutine that sends, which raises :meth:`send_audio`'s errors.
    #: A provider keeps it current itself (set on connect, ``None`` on disconnect).
    audio_sender: Callable[[bytes], Coroutine[Any, Any, None]] | None = None

    async def send_audio(self, audio: bytes, *, sample_rate: int | None = None) -> None:
        """Stream user audio (PCM16 mono at ``input_format``; ``sample_rate`` is checked).

        Empty audio is accepted and sends nothing.

        Raises:
            AudioError: malformed audio, or ``sample_rate`` is not the input rate.
        """
        if sample_rate is not None:
            self._check_rate(sample_rate)
        command = SendAudio(audio=audio)
        if command.audio:
            await self.send(command)

    def _check_rate(self, sample_rate: object) -> None:
        expected = self.input_format.sample_rate
        if validate_sample_rate(sample_rate) != expected:
            raise AudioError(
                f"{self.name} expects {expected} Hz audio, got {sample_rate} Hz; "
                "resample first (VoiceEngine does this for you)"
            )

    async def commit_audio(self) -> None:
        """End the user's audio turn (manual turn taking)."""
        await self.send(CommitAudio())

    async def clear_audio(self) -> None:
        """Discard buffered user audio."""
        await self.send(ClearAudio())

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        """Add a user text message, then ask for a response unless ``respond`` is False.

        Raises:
            TextError: ``text`` cannot be sent (see :func:`voxengine.commands.validate_text`);
                nothing was sent.
        """
        message = SendText(text=text)
        if respond:
            await self.send(message, CreateResponse())
        else:
            await self.send(message)

    async def create_response(
        self,
        *,
        instructions: str | None = None,
        modalities: tuple[Modality, ...] | None = None,
    ) -> None:
        """Ask the model to respond now (``instructions``/``modalities`` for this response)."""
        await self.send(CreateResponse(instructions=instructions, modalities=modalities))

    async def cancel_response(self) -> None:
        """Stop the response in progress, if any."""
        await self.send(CancelResponse())

    @abc.abstractmethod
    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        """Stop the assistant: cancel its response (if ``cancel`` and one is running) and
        cut assistant item ``item_id`` (default: the latest) at ``played`` seconds heard."""

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        """Return a function call's output, then ask for a response unless ``respond`` is False."""
        result = SendToolResult(call_id=call_id, output=output)
        if respond:
            await self.send(result, CreateResponse())
        else:
            await self.send(result)

    async def update_session(self, session: SessionConfig) -> None:
        """Change session settings mid-session (``None`` fields are left alone).

        Raises:
            ConfigError: the provider cannot (no SESSION_UPDATE), or an unknown voice.
        """
        self.require(Capability.SESSION_UPDATE)
        self.check_voice(session.voice)
        await self.send(UpdateSession(config=session))

    async def truncate(self, item_id: str, audio_end: float) -> None:
        """Cut assistant item ``item_id`` at ``audio_end`` seconds (needs TRUNCATION)."""
        self.require(Capability.TRUNCATION)
        await self.send(TruncateItem(item_id=item_id, audio_end=audio_end))

    @property
    def resumption_handle(self) -> str | None:
        """The service's latest handle to resume this session elsewhere, if it has
        one (Gemini Live); ``None`` by default."""
        return None

    def prepare_resume(self, snapshot: ConversationSnapshot) -> None:
        """Called before :meth:`connect` when the session continues ``snapshot``.

        A provider that resumes its own sessions (Gemini's resumption handle) offers
        ``snapshot.resumption_handle`` on the next connect. The default does nothing.
        """
        return None

    async def restore(self, snapshot: ConversationSnapshot) -> RestoreResult:
        """Put the conversation of ``snapshot`` back, right after :meth:`connect`.

        The default re-creates each entry with :class:`RestoreItem` when the provider
        carries it out (see :meth:`restore_commands`); a provider written before
        :meth:`send` existed gets the entries as messages through
        :meth:`add_message` (needs CONTEXT_INJECTION; tool calls become short system
        notes), else nothing is restored and every entry is counted as skipped.

        Raises:
            InvalidState: not connected.
        """
        plan, skipped = restore_commands(snapshot.history)
        if not plan:
            return RestoreResult(skipped_items=skipped)
        if _overrides(self, "send"):
            await self.send(*plan)
            return RestoreResult(restored_items=len(plan), skipped_items=skipped)
        if Capability.CONTEXT_INJECTION not in self.capabilities:
            return RestoreResult(skipped_items=len(snapshot.history))
        for command in plan:
            await self.add_message(as_note(command.item), role=note_role(command.item))
        return RestoreResult(restored_items=len(plan), skipped_items=skipped)

    @abc.abstractmethod
    def events(self) -> AsyncIterator[Event]:
        """The event stream of the current session."""

    @property
    def kept_history(self) -> ConversationHistory | None:
        """The conversation history this provider keeps itself, or ``None``.

        A provider that already follows the conversation (a realtime provider's link,
        which needs it to restore a lost connection) returns it, and the engine shows
        that one rather than building a second copy from :meth:`events`. The default
        keeps none.
        """
        return None

    def deliver_events(self, consumer: Consumer) -> bool:
        """Push the current session's events to ``consumer`` instead of :meth:`events`.

        The provider calls ``consumer(event)`` in order as events arrive (``None`` after
        the last one), with no task switch in between; a consumer that returns an
        awaitable holds back later events until it completes (see
        :mod:`voxengine.session.queue`). Returns ``False`` if the provider cannot push;
        iterate :meth:`events` then. After ``True``, :meth:`events` raises
        :class:`~voxengine.errors.InvalidState` for this session. The default cannot.
        """
        return False

    def tap_audio(self, tap: AudioTap | None) -> bool:
        """Hand each chunk of assistant audio to ``tap.callback`` straight from the
        socket's read callback, bypassing the events (``None``: stop); see
        :mod:`voxengine.session.tap`.

        Only for a consumer that wants the audio and nothing else of it: while a tap is
        set, clean audio deltas produce no :class:`~voxengine.events.AudioDelta` event
        (malformed ones still produce their error events); the audio of a provider or
        connection that cannot tap keeps coming as events. A tap does not wait for a
        consumer's pending awaitable (see :meth:`deliver_events`): audio is never held
        behind it. Returns whether the current connection takes the tap (False: the
        audio keeps coming as events; the default provider never takes one).
        """
        return False

    async def add_message(
        self, text: str, *, role: Role = Role.SYSTEM, item_id: str | None = None
    ) -> None:
        """Add a message to the conversation without asking for a response (needs
        CONTEXT_INJECTION; ``text`` as in :meth:`send_text`)."""
        self.require(Capability.CONTEXT_INJECTION)
        await self.send(SendText(text=text, role=role, item_id=item_id))

    async def delete_item(self, item_id: str) -> None:
        """Remove an item from the conversation (needs :attr:`Capability.ITEM_DELETION`)."""
        self.require(Capability.ITEM_DELETION)
        await self.send(DeleteItem(item_id=item_id))

    async def send_audio_message(self, audio: bytes) -> None:
        """Add a whole recorded utterance as one user message (needs RECORDED_AUDIO).

        Raises:
            AudioError: empty or malformed audio.
        """
        self.require(Capability.RECORDED_AUDIO)
        command = SendAudioMessage(audio=audio)
        if not command.audio:
            raise AudioError("recorded audio is empty")
        await self.send(command)

    def supports(self, capability: Capability) -> bool:
        """Whether the provider declares ``capability``."""
        return capability in self.capabilities

    def require(self, capability: Capability) -> None:
        """Raise :class:`ConfigError` unless the provider declares ``capability``."""
        if capability not in self.capabilities:
            raise ConfigError(f"provider {self.name!r} does not support {capability.value}")

    def _not_connected(self) -> InvalidState:
        """The error for a call that needs the connection :meth:`connect` opens."""
        return InvalidState(f"{self.name} provider is not connected; call connect() first")


#: The send methods every provider implemented before :meth:`BaseProvider.send`.
_LEGACY_SENDERS = (
    "send_audio",
    "commit_audio",
    "clear_audio",
    "send_text",
    "create_response",
    "cancel_response",
    "send_tool_result",
    "update_session",
)


def _overrides(provider: BaseProvider, name: str) -> bool:
    return getattr(type(provider), name) is not getattr(BaseProvider, name)


async def _send_by_methods(self: BaseProvider, command: Command, *more: Command) -> None:
    """:meth:`BaseProvider.send` of a provider written before it: each command goes to
    the method that carried it then (optional ones only if the provider has them)."""
    for cmd in (command, *more):
        match cmd:
            case SendAudio(audio=audio):
                await self.send_audio(audio)
            case CommitAudio():
                await self.commit_audio()
            case ClearAudio():
                await self.clear_audio()
            case SendText(text=text, role=Role.USER, item_id=None):
                await self.send_text(text, respond=False)
            case SendText(text=text, role=role, item_id=item_id) if _overrides(self, "add_message"):
                await self.add_message(text, role=role, item_id=item_id)
            case SendToolResult(call_id=call_id, output=output):
                await self.send_tool_result(call_id, output, respond=False)
            case CreateResponse(instructions=instructions, modalities=modalities):
                await self.create_response(instructions=instructions, modalities=modalities)
            case CancelResponse():
                await self.cancel_response()
            case UpdateSession(config=config):
                await self.update_session(config)
            case DeleteItem(item_id=item_id) if _overrides(self, "delete_item"):
                await self.delete_item(item_id)
            case SendAudioMessage(audio=audio) if _overrides(self, "send_audio_message"):
                await self.send_audio_message(audio)
            case TruncateItem(item_id=item_id, audio_end=audio_end) if _overrides(self, "truncate"):
                await self.truncate(item_id, audio_end)
            case _:
                raise ConfigError(f"{self.name} provider cannot carry out {type(cmd).__name__}")
