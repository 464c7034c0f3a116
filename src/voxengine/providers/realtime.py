"""A provider backed by a :class:`~voxengine.session.RealtimeSession`.

Subclasses supply the protocol (``make_protocol``) and, optionally, the connector
(real WebSockets by default) and how a conversation is restored on a new connection
(``restore_plan``); everything else — validation before I/O, retries with backoff,
reconnection, the watchdog, event streaming, interruption — is shared (see
:mod:`voxengine.session.link`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from voxengine.audio.format import AudioFormat
from voxengine.commands import (
    CancelResponse,
    Command,
    RestoreItem,
    SendAudio,
)
from voxengine.errors import ConfigError, InvalidState, RateLimited, VoxError
from voxengine.events import Event, Interrupted
from voxengine.protocols import RealtimeProtocol
from voxengine.providers._restore import restore_commands
from voxengine.providers.base import BaseProvider, ProviderConfig
from voxengine.session import RealtimeSession, is_retryable
from voxengine.session.driver import EventSink
from voxengine.session.history import ConversationHistory, HistoryEntry
from voxengine.session.link import SessionLink
from voxengine.session.queue import Consumer
from voxengine.session.snapshot import ConversationSnapshot, RestoreResult
from voxengine.session.tap import AudioTap
from voxengine.transport import Connector
from voxengine.transport.backends import connector as transport_connector

__all__ = ["RealtimeProvider"]

logger = logging.getLogger("voxengine.providers")

#: Longest ``Retry-After`` (seconds) :meth:`RealtimeProvider.connect` waits out itself.
MAX_RETRY_AFTER = 60.0


def _retry_wait(exc: VoxError, backoff: float) -> float | None:
    """Seconds to wait before the next connect attempt; ``None``: do not retry."""
    retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
    if retry_after is None:
        return backoff
    return max(backoff, retry_after) if retry_after <= MAX_RETRY_AFTER else None


class RealtimeProvider(BaseProvider):
    """Shared implementation for providers that speak a sans-I/O realtime protocol."""

    #: First retry delay in seconds; doubles per attempt.
    retry_backoff: float = 0.5
    #: Whether the service confirms the items the client creates (a text or a tool
    #: output), so that unconfirmed ones can be re-sent after a reconnect.
    acknowledges_items: bool = True

    def __init__(self, config: ProviderConfig) -> None:
        super().__init__(config)
        self._link: SessionLink | None = None
        self._disconnected = False
        # Done when the connect() in progress ends (None: none is): concurrent calls
        # wait for it; nothing is held between connects (memory per idle session).
        self._connecting: asyncio.Future[None] | None = None
        #: Applied, in order, to :meth:`connector` for every connection (recording,
        #: tracing, replay): each wraps the connector before it.
        self.connector_wrappers: list[Callable[[Connector], Connector]] = []
        probe = self.make_protocol()  # validates the config before any I/O
        # Only its formats are kept: a protocol per idle provider is memory for nothing.
        self._input_format = probe.input_format
        self._output_format = probe.output_format

    @abc.abstractmethod
    def make_protocol(self) -> RealtimeProtocol:
        """A fresh protocol state machine for one connection attempt.

        Subclasses that support resumption read :attr:`resumption_handle` here.

        Raises:
            ConfigError: the config cannot be expressed in this protocol.
        """

    def connector(self) -> Connector:
        """How to open the connection; real WebSockets on the ``config.transport``
        backend (verified TLS for ``wss://``, ``config.ssl_context`` when set) unless
        overridden."""
        return transport_connector(self.config.transport, self.config.ssl_context)

    def restore_plan(self, history: list[HistoryEntry]) -> tuple[list[Command], int]:
        """Commands that rebuild the conversation on a new connection, and how many
        entries could not be restored.

        The default replays every finished item: messages as text (user audio whose
        transcript is unknown cannot be replayed and is counted as skipped), function
        calls and their outputs with their call ids. Providers that resume sessions
        by handle override this to return nothing when a handle is available.
        """
        plan, skipped = restore_commands(history)
        return list(plan), skipped

    def resumed_by_handle(self) -> bool:
        """Whether the current session resumed the service's own session by handle
        (then there is nothing to replay). No provider here does by default."""
        return False

    async def restore(self, snapshot: ConversationSnapshot) -> RestoreResult:
        """Put ``snapshot``'s conversation back on the session :meth:`connect` opened.

        The entries join :attr:`history` at once (so a later snapshot still holds
        them, and a later reconnect replays them); unless the session resumed by
        handle, they are re-created on the service with :meth:`restore_plan`.

        Raises:
            InvalidState: not connected.
        """
        link = self._connected_link()
        self._require_connected()
        link.history.restore(snapshot.history)
        if self.resumed_by_handle():
            return RestoreResult(resumed_by_handle=True)
        plan, skipped = self.restore_plan(list(snapshot.history))
        if plan:
            await link.send(*plan)
        restored = sum(1 for c in plan if isinstance(c, RestoreItem))
        return RestoreResult(restored_items=restored, skipped_items=skipped)

    @property
    def input_format(self) -> AudioFormat:
        """Declared by the protocol."""
        return self._input_format

    @property
    def output_format(self) -> AudioFormat:
        """Declared by the protocol."""
        return self._output_format

    @property
    def is_connected(self) -> bool:
        """True while a session is open (False while reconnecting)."""
        return self._link is not None and self._link.is_open

    @property
    def resumption_handle(self) -> str | None:
        """The latest session resumption handle the provider issued, if any."""
        return self._link.resumption_handle if self._link is not None else None

    @property
    def history(self) -> list[HistoryEntry]:
        """The conversation as this provider saw it, across reconnects."""
        return self._link.history.entries if self._link is not None else []

    @property
    def kept_history(self) -> ConversationHistory | None:
        """The link's history (the one the provider restores a lost connection from)."""
        return self._link.history if self._link is not None else None

    @property
    def session(self) -> RealtimeSession:
        """The current session; raises :class:`InvalidState` before :meth:`connect`."""
        if self._link is None or self._link.session is None:
            raise self._not_connected()
        return self._link.session

    def _new_session(self, sink: EventSink) -> RealtimeSession:
        # Events go straight to the link (``sink``); the bound the application sees (and
        # the drop accounting) is the link's queue.
        connector = self.connector()
        for wrap in self.connector_wrappers:
            connector = wrap(connector)
        return RealtimeSession(
            self.make_protocol(),
            connector,
            open_timeout=self.config.connect_timeout,
            sink=sink,
        )

    async def connect(self, retry_count: int = 3) -> None:
        """Open the session; retries transport failures with exponential backoff
        (honouring a server's ``retry_after``).

        Which failures are retried: :func:`voxengine.session.is_retryable`. After an
        HTTP 429 the wait is at least the server's ``Retry-After``; one longer than
        :data:`MAX_RETRY_AFTER` seconds raises the
        :class:`~voxengine.errors.UpgradeRateLimited` at once (its ``retry_after``
        says when to come back). Later connection losses are handled per
        ``config.reconnect``. Concurrent calls open one session: the others wait,
        then raise :class:`InvalidState`.

        Raises:
            InvalidState: already connected (or reconnecting).
        """
        if retry_count < 0:
            raise ConfigError("retry_count must be >= 0")
        while self._connecting is not None:  # one connect() at a time
            await asyncio.wait({self._connecting})
        self._connecting = turn = asyncio.get_running_loop().create_future()
        try:
            if self._link is not None and self._link.active:
                raise InvalidState("already connected")
            await self._open_link(retry_count)
        finally:
            self._connecting = None
            turn.set_result(None)

    async def _open_link(self, retry_count: int) -> None:
        link = SessionLink(
            self._new_session,
            self.restore_plan,
            reconnect=self.config.reconnect,
            watchdog=self.config.watchdog,
            queue_size=self.config.event_queue_size,
            input_format=self.input_format,
            output_format=self.output_format,
            name=self.name,
            acknowledged=self.acknowledges_items,
        )
        delay = self.retry_backoff
        for attempt in range(retry_count + 1):
            session = link.new_session()
            try:
                await session.open()
            except VoxError as exc:
                link.discard(session)
                wait = _retry_wait(exc, delay)
                if attempt == retry_count or not is_retryable(exc) or wait is None:
                    raise
                logger.warning(
                    "%s connect attempt %d failed (%s); retrying in %.2fs",
                    self.name,
                    attempt + 1,
                    exc,
                    wait,
                )
                await asyncio.sleep(wait)
                delay *= 2
            except BaseException:  # cancelled: leave no socket behind
                link.discard(session)
                with contextlib.suppress(Exception):
                    await session.aclose()
                raise
            else:
                link.start(session)
                self._link = link
                self._disconnected = False
                if type(self).send_audio is RealtimeProvider.send_audio:  # not overridden
                    self.audio_sender = link.send_audio
                return

    async def disconnect(self) -> None:
        """Close the session (no reconnect). Idempotent; never raises a background failure.

        Bounded: returns within about 5 seconds whatever the server does (the close
        handshake, the reader and the reconnect supervisor are each given a bounded
        time, then cancelled); no socket or task of the session survives it.
        Afterwards every method that acts on the session raises
        :class:`~voxengine.errors.InvalidState` (until :meth:`connect`); :meth:`events`
        still yields the session's last events and ends.
        """
        self._disconnected = True
        self.audio_sender = None
        if self._link is not None:
            await self._link.aclose()

    def _connected_link(self) -> SessionLink:
        if self._link is None:
            raise self._not_connected()
        return self._link

    def _require_connected(self) -> None:
        """Raise :class:`InvalidState` before :meth:`connect` or after :meth:`disconnect`."""
        if self._link is None or self._disconnected:
            raise self._not_connected()

    async def send(self, command: Command, *more: Command) -> None:
        """Hand the commands to the link, which writes them (or queues them while it
        reconnects; see :class:`~voxengine.session.link.SessionLink`).

        A :class:`CancelResponse` with no response in progress is dropped (nothing to
        cancel).

        Raises:
            InvalidState: not connected, or after :meth:`disconnect`.
        """
        link = self._link
        if link is None or self._disconnected:
            raise self._not_connected()
        if more:
            wanted = [c for c in (command, *more) if self._wanted(c)]
            if wanted:
                await link.send(*wanted)
        elif type(command) is not CancelResponse or self._wanted(command):
            await link.send(command)

    def send_audio(
        self, audio: bytes, *, sample_rate: int | None = None
    ) -> Coroutine[Any, Any, None]:
        """:meth:`BaseProvider.send_audio` (the same checks and errors, raised when the
        coroutine this returns is awaited), written through the session's direct audio
        path: one frame per chunk, no command object on the way when the audio is plain
        ``bytes`` of whole samples. Connected, without ``sample_rate``, it is the link's
        own ``send_audio`` coroutine, handed on (which checks the audio the same way):
        :attr:`audio_sender` while connected."""
        link = self._link
        if sample_rate is None and link is not None and not self._disconnected:
            return link.send_audio(audio)
        return self._send_audio(audio, sample_rate)

    async def _send_audio(self, audio: bytes, sample_rate: int | None) -> None:
        """:meth:`send_audio`'s general path: every check, each raising its error."""
        if sample_rate is not None:
            self._check_rate(sample_rate)
        if type(audio) is not bytes or len(audio) & 1 or audio[:4] == b"RIFF":
            audio = SendAudio(audio=audio).audio  # AudioError for what is not PCM16
        if not audio:
            return
        link = self._link
        if link is None or self._disconnected:
            raise self._not_connected()
        await link.send_audio(audio)

    def _wanted(self, command: Command) -> bool:
        if type(command) is not CancelResponse:
            return True
        return self.is_connected and self.session.tracker.active_response_id is not None

    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        """Cancel the response and truncate the assistant item at ``played`` seconds.

        While reconnecting there is nothing to cancel: the event is delivered locally.
        """
        self._require_connected()
        if self._link is not None and self._link.reconnecting:
            event = Interrupted(item_id=item_id, played=None)
            self._link.emit_local(event)
            return event
        return await self.session.interrupt(played, item_id=item_id, cancel=cancel)

    def events(self) -> AsyncIterator[Event]:
        """Events of the conversation in order, across reconnects; ends after SessionClosed."""
        return self._connected_link().events()

    def deliver_events(self, consumer: Consumer) -> bool:
        """Push events to ``consumer`` from the socket reader (see :class:`BaseProvider`).

        Raises:
            InvalidState: not connected, or the events already have a consumer.
        """
        self._connected_link().deliver_events(consumer)
        return True

    def tap_audio(self, tap: AudioTap | None) -> bool:
        """Hand clean assistant audio to ``tap`` straight from the socket (see
        :class:`BaseProvider`). Returns whether the current connection takes it: not
        when disconnected, nor when its protocol or transport cannot (audio then keeps
        coming as events)."""
        if self._link is None:
            return False
        return self._link.tap_audio(tap)
