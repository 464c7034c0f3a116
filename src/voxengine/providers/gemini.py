"""Google Gemini Live API provider (Developer API, API key) — gemini-live.md.

:class:`GeminiProvider` drives :class:`~voxengine.protocols.gemini.protocol.GeminiLiveProtocol`
over a WebSocket. What differs from OpenAI, and how this provider stays honest about it:

* Audio in is PCM16 16 kHz, audio out PCM16 24 kHz (§1); ``send_audio`` checks the rate.
* Configuration is fixed per connection (§3.1): ``update_session`` raises
  :class:`~voxengine.errors.ConfigError` (SESSION_UPDATE is not declared).
* There is no cancel, truncate or delete message (§5): CANCEL-style capabilities
  (INTERRUPTION, TRUNCATION, ITEM_DELETION) are not declared. ``cancel_response`` and
  ``interrupt`` stop *locally*: the rest of the current model turn is dropped before
  it reaches the application, and :meth:`interrupt` reports an
  :class:`~voxengine.events.Interrupted` with ``played=None`` (nothing was truncated
  on the server, which decides what stays in context). With server VAD the service
  interrupts the model by itself when the user speaks (``interrupted``, §5).
* Resumption (§7): the newest :class:`~voxengine.events.ResumptionUpdate` handle is
  kept (:attr:`GeminiProvider.resumption_handle`); every later connection of the same
  provider — an automatic reconnect, or :meth:`connect` after :meth:`disconnect` —
  resumes that session by handle instead of replaying the conversation. Use a new
  provider for a fresh conversation.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, final
from urllib.parse import quote

from voxengine.commands import Command
from voxengine.errors import AuthenticationFailed, ConfigError, InvalidState, VoxError
from voxengine.events import Interrupted, ItemKind
from voxengine.protocols import RealtimeProtocol
from voxengine.protocols.gemini.protocol import GeminiLiveProtocol, SetupOptions
from voxengine.providers.base import Capability, ProviderConfig
from voxengine.providers.endpoint import api_key, websocket_base
from voxengine.providers.realtime import RealtimeProvider
from voxengine.session.history import HistoryEntry
from voxengine.session.snapshot import ConversationSnapshot, RestoreResult
from voxengine.transport import Connector

__all__ = [
    "DEFAULT_GEMINI_MODEL",
    "DEFAULT_GEMINI_URL",
    "GEMINI_CAPABILITIES",
    "GeminiConfig",
    "GeminiProvider",
]

logger = logging.getLogger("voxengine.providers")

#: §8: the native-audio model recommended through 2026 for the Developer API.
DEFAULT_GEMINI_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
DEFAULT_GEMINI_URL = "wss://generativelanguage.googleapis.com"

#: No TEXT_OUTPUT (today's native-audio Live models answer in audio, with transcripts)
#: and no SPEECH_EVENTS (the service does not report where speech starts and stops).
#: Prebuilt voices (gemini-live.md §8; native-audio models offer all 30).
GEMINI_VOICES: tuple[str, ...] = (
    "Zephyr",
    "Puck",
    "Charon",
    "Kore",
    "Fenrir",
    "Leda",
    "Orus",
    "Aoede",
    "Callirrhoe",
    "Autonoe",
    "Enceladus",
    "Iapetus",
    "Umbriel",
    "Algieba",
    "Despina",
    "Erinome",
    "Algenib",
    "Rasalgethi",
    "Laomedeia",
    "Achernar",
    "Alnilam",
    "Schedar",
    "Gacrux",
    "Pulcherrima",
    "Achird",
    "Zubenelgenubi",
    "Vindemiatrix",
    "Sadachbia",
    "Sadaltager",
    "Sulafat",
)

GEMINI_CAPABILITIES = frozenset(
    {
        Capability.AUDIO_INPUT,
        Capability.AUDIO_OUTPUT,
        Capability.TEXT_INPUT,
        Capability.SERVER_VAD,
        Capability.MANUAL_TURNS,
        Capability.FUNCTION_CALLING,
        Capability.INPUT_TRANSCRIPTION,
        Capability.OUTPUT_TRANSCRIPTION,
        Capability.USAGE,
        Capability.TEMPERATURE,
        Capability.CONTEXT_INJECTION,
        Capability.RECORDED_AUDIO,
    }
)

_API_VERSIONS = frozenset({"v1", "v1beta", "v1alpha"})


@dataclass(frozen=True, slots=True, kw_only=True)
class GeminiConfig(ProviderConfig):
    """Gemini Live settings.

    Attributes:
        api_key: defaults to ``$GEMINI_API_KEY``, then ``$GOOGLE_API_KEY``.
        model: defaults to :data:`DEFAULT_GEMINI_MODEL`; ``models/`` is added when the
            name has no path.
        base_url: the service root, ``wss://generativelanguage.googleapis.com`` by
            default; point it at a local fake (``ws://127.0.0.1:PORT``).
        api_version: ``"v1beta"`` (default), ``"v1"`` or ``"v1alpha"`` (§2).
        key_in: send the key as the ``x-goog-api-key`` header (default, as the SDK
            does) or as the ``?key=`` query parameter (§1); never logged either way.
        session_resumption: ask for resumption handles (§7).
        resumption_handle: resume this session on the first connect.
        context_compression: sliding-window context compression, for sessions longer
            than the 15-minute audio limit (§7).
    """

    api_version: str = "v1beta"
    key_in: Literal["header", "query"] = "header"
    session_resumption: bool = True
    resumption_handle: str | None = field(default=None, repr=False)
    context_compression: bool = False

    def __post_init__(self) -> None:
        super(GeminiConfig, self).__post_init__()
        if self.api_version not in _API_VERSIONS:
            raise ConfigError(f"api_version must be one of {sorted(_API_VERSIONS)}")
        if self.key_in not in ("header", "query"):
            raise ConfigError("key_in must be 'header' or 'query'")


def live_url(base_url: str, api_version: str) -> str:
    """The §2 endpoint under ``base_url`` for ``api_version`` (no credentials)."""
    root = websocket_base(base_url)
    return (
        f"{root}/ws/google.ai.generativelanguage.{api_version}"
        ".GenerativeService.BidiGenerateContent"
    )


@final
class GeminiProvider(RealtimeProvider):
    """Google Gemini Live over WebSocket.

    Args:
        config: a :class:`GeminiConfig` (a plain :class:`ProviderConfig` is accepted
            and gets the Gemini defaults).
        connector: how to open the connection (default: real WebSockets); a seam for
            tests and custom transports, e.g. TLS with a private CA.
    """

    name: ClassVar[str] = "gemini"
    config_type: ClassVar[type[ProviderConfig]] = GeminiConfig
    capabilities: ClassVar[frozenset[Capability]] = GEMINI_CAPABILITIES
    voices: ClassVar[tuple[str, ...] | None] = GEMINI_VOICES
    #: Gemini Live never echoes client turns or tool responses (§3): an input counts
    #: as delivered once written to the socket.
    acknowledges_items = False

    def __init__(
        self, config: ProviderConfig | None = None, *, connector: Connector | None = None
    ) -> None:
        self._connector = connector
        self._protocols_made = 0  # the first is the construction-time probe
        self._offered_handle: str | None = None  # from prepare_resume, for the next connect
        self._handle_refused = False
        self._id_base = "gemini"
        super().__init__(config if config is not None else GeminiConfig())

    @property
    def _gemini(self) -> GeminiConfig:
        config = self.config
        assert isinstance(config, GeminiConfig)  # BaseProvider keeps its config_type
        return config

    def __repr__(self) -> str:
        return f"GeminiProvider(model={self.model!r})"

    @property
    def model(self) -> str:
        """The model id in use."""
        return self._gemini.model or DEFAULT_GEMINI_MODEL

    def make_protocol(self) -> RealtimeProtocol:
        """A protocol for the §2 endpoint that resumes the latest handle, if any (§7).

        The handle is the newest one the server issued on an earlier connection of this
        provider (:attr:`resumption_handle`), else ``config.resumption_handle``.
        """
        cfg = self._gemini
        key = api_key(cfg.api_key, ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "gemini")
        url = live_url(cfg.base_url or DEFAULT_GEMINI_URL, cfg.api_version)
        headers: dict[str, str] = {}
        if cfg.key_in == "query":
            url = f"{url}?key={quote(key, safe='')}"
        else:
            headers["x-goog-api-key"] = key
        handle = (
            (self.resumption_handle or self._offered_handle or cfg.resumption_handle)
            if cfg.session_resumption
            else None
        )
        # Response and item ids are synthetic per connection: a later connection gets its
        # own prefix ("gemini-2-resp-1"), so ids never repeat across reconnects.
        self._protocols_made += 1
        connection = self._protocols_made - 1
        base = self._id_base
        prefix = base if connection <= 1 else f"{base}-{connection}"
        return GeminiLiveProtocol(
            url=url,
            headers=headers,
            model=self.model,
            session=cfg.session,
            options=SetupOptions(
                session_resumption=cfg.session_resumption,
                resumption_handle=handle,
                context_compression=cfg.context_compression,
            ),
            id_prefix=prefix,
            known_calls={
                entry.call_id: entry.name or ""
                for entry in self.history
                if entry.kind is ItemKind.FUNCTION_CALL and entry.call_id
            },
        )

    def connector(self) -> Connector:
        """The connector given at construction, else real WebSockets (see
        :meth:`RealtimeProvider.connector`)."""
        return self._connector if self._connector is not None else super().connector()

    def restore_plan(self, history: list[HistoryEntry]) -> tuple[list[Command], int]:
        """Nothing to replay when the next connection resumes by handle (§7); otherwise
        the default replay as ``clientContent`` turns."""
        cfg = self._gemini
        if cfg.session_resumption and (
            self.resumption_handle or self._offered_handle or cfg.resumption_handle
        ):
            return [], 0
        return super().restore_plan(history)

    def prepare_resume(self, snapshot: ConversationSnapshot) -> None:
        """Offer ``snapshot.resumption_handle`` on the next :meth:`connect` (§7)."""
        self._handle_refused = False
        # the snapshot's items carry an earlier provider's synthetic ids: never reuse them
        self._id_base = f"gemini-{secrets.token_hex(3)}"
        if self._gemini.session_resumption:
            self._offered_handle = snapshot.resumption_handle

    async def connect(self, retry_count: int = 3) -> None:
        """Open the session (see :meth:`RealtimeProvider.connect`).

        When a handle offered by :meth:`prepare_resume` is refused (expired: handles
        live about 2 h, §7; or unknown to this service), the connection is opened
        again without it and :meth:`restore` replays the history instead.
        """
        try:
            await super().connect(retry_count)
        except (AuthenticationFailed, InvalidState):
            raise
        except VoxError as exc:
            if self._offered_handle is None:
                raise
            logger.warning("gemini: resumption handle refused (%s); replaying the history", exc)
            self._offered_handle = None
            self._handle_refused = True
            await super().connect(retry_count)

    def resumed_by_handle(self) -> bool:
        """Whether the first connection resumed with the handle :meth:`prepare_resume`
        offered (accepted by the service)."""
        return self._offered_handle is not None and self.is_connected

    async def restore(self, snapshot: ConversationSnapshot) -> RestoreResult:
        """See :meth:`RealtimeProvider.restore`; reports a refused handle."""
        result = await super().restore(snapshot)
        return replace(result, handle_refused=self._handle_refused)

    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        """Stop the assistant locally and report :class:`Interrupted` (``played=None``).

        With ``cancel`` the rest of the current model turn is dropped (a
        :class:`CancelResponse`, which the protocol carries out locally). Nothing is
        sent: Gemini has no cancel or truncate message, so ``played`` cannot be applied
        on the server and is not reported.
        """
        if cancel:
            await self.cancel_response()
        return await super().interrupt(None, item_id=item_id, cancel=False)
