"""One realtime session: drives one sans-I/O protocol over one transport connection.

The driver is the loop from the design notes: every received frame goes to
``protocol.receive_message``; whatever the protocol wants to send is written in order;
decoded events go, in order, to the session's ``sink`` (the
:class:`~voxengine.session.link.SessionLink`, which owns the one bounded event queue
the application reads). A transport that can push frames
(:class:`~voxengine.transport.PushConnection`) hands each frame to the session inside
its socket read callback; the reader task then only takes the frames read before that
and hands the close over to a callback (:mod:`~voxengine.session.wire`). The session
also follows the response lifecycle (which response is active, how much audio of which
assistant item has arrived) so that interruption can cancel and truncate correctly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import final

from voxengine.commands import CancelResponse, Command, SendAudio, TruncateItem
from voxengine.errors import (
    ConnectionClosed,
    ConnectTimeout,
    InvalidState,
    TransportError,
    VoxError,
)
from voxengine.events import Event, Interrupted
from voxengine.protocols import RealtimeProtocol
from voxengine.redaction import redact_url, secrets_in
from voxengine.session.failures import handshake_failure, is_retryable, scrub
from voxengine.session.tracker import ResponseTracker
from voxengine.session.wire import AudioSink, SessionWire
from voxengine.transport import DirectConnection, PushConnection
from voxengine.transport.memory import MemoryConnection

__all__ = ["AudioSink", "EventSink", "RealtimeSession", "ResponseTracker", "is_retryable"]

#: Receives every event of a session with the session it came from (the reconnecting
#: link tells a current connection from a replaced one by it).
EventSink = Callable[["RealtimeSession", Event], None]

logger = logging.getLogger("voxengine.session")

_monotonic = time.monotonic

#: Connections whose ``send`` writes the whole frame before it first yields (no lock
#: needed to keep concurrent sends in order; wrappers may not, so they take the lock).
_ORDERED_SEND = (DirectConnection, MemoryConnection)

#: Seconds :meth:`RealtimeSession.aclose` takes at most.
CLOSE_TIMEOUT = 3.0
#: Seconds given to the close handshake (the transport aborts the TCP connection
#: itself after its own, shorter, close timeout), and to closing after a refusal.
_CLOSE_WAIT = 2.5


@final
class RealtimeSession(SessionWire):
    """Drives ``protocol`` over a connection opened by ``connector``.

    Use :meth:`open` once, then :meth:`send` commands. Every event reaches ``sink`` in
    the order the protocol produced them, with no queue in between; while
    ``audio_sink`` is set, audio deltas the protocol decodes on its hot path
    (:class:`~voxengine.protocols.HotPath`) go to it directly instead (the link sets
    it to its queue for the current session: the same place ``sink`` would put them).
    """

    __slots__ = ()

    @property
    def protocol(self) -> RealtimeProtocol:
        """The protocol state machine this session drives."""
        return self._protocol

    @property
    def last_activity(self) -> float:
        """:func:`time.monotonic` time of the last frame received from the server."""
        # frames an audio tap takes record their time in the tracker only
        return max(self._last_activity, self.tracker.progress_at)

    @property
    def is_open(self) -> bool:
        """True between a successful :meth:`open` and the end of the session."""
        return self._ready and not self._closed

    async def open(self) -> None:
        """Connect and complete the protocol handshake.

        Raises:
            ConnectFailed: the connection could not be opened (the connector's
                subclasses: AuthenticationFailed, UpgradeRefused, TLSFailed, ...).
            HandshakeClosed: the connection closed or dropped before the session was
                ready without an auth/config meaning (retryable, see :func:`is_retryable`).
            ConnectTimeout: no session handshake within ``open_timeout``.
            AuthenticationFailed: the close meant "bad credentials".
            ProviderError: the service refused the session (bad model, bad config).
            InvalidState: the session was already opened.
        """
        if self._conn is not None:
            raise InvalidState("session already opened")
        request = self._protocol.connect_request()
        logger.debug("connecting to %s", redact_url(request.url))
        try:
            await self._open(request.url, request.headers)
        except VoxError as exc:
            # The last line of defence: whatever raised, its text never shows the key.
            scrub(exc, secrets_in(request.url, request.headers))
            raise

    async def _open(self, url: str, headers: Mapping[str, str]) -> None:
        conn = await self._connector(url, headers, timeout=self._open_timeout)
        self._conn = conn
        if isinstance(conn, _ORDERED_SEND):
            self._direct = conn
        self._last_activity = _monotonic()
        waiter = self._ready_waiter = asyncio.get_running_loop().create_future()
        if isinstance(conn, PushConnection):
            conn.push_to(self._pushed)  # False: it cannot; the reader gets every frame
            self._install_tap()
        self._reader = asyncio.create_task(self._read_loop(), name="voxengine-session-reader")
        with contextlib.suppress(ConnectionClosed):
            # A server that refuses at once closes before our first message goes out;
            # the reader records why, and the wait below raises the typed reason.
            await self._flush()
        try:
            done, _ = await asyncio.wait({waiter}, timeout=self._open_timeout)
        finally:
            self._ready_waiter = None
            waiter.cancel()
        if not self._ready:
            exc = self._protocol.close_exc
            await self.aclose()
            if exc is None and not done:
                raise ConnectTimeout(f"no session handshake within {self._open_timeout:g} s")
            local = self._reader_error
            if local is not None:
                # Not the network: a local failure (e.g. a replay divergence) or a bug.
                # Retrying would repeat it; raise it (typed) or the close it caused.
                if isinstance(local, VoxError) and not isinstance(local, TransportError):
                    raise local
                if exc is not None:
                    raise exc
            raise handshake_failure(exc)

    async def send(self, command: Command, *more: Command) -> None:
        """Send ``command`` (then ``more``); raises :class:`InvalidState` if the session
        is not open.

        Commands given together all reach the protocol before its frames are collected,
        so the protocol may merge them into one message.
        """
        if self._conn is None:
            raise InvalidState("session is not open; call connect() first")
        if self._closed:
            raise InvalidState("session is closed")
        protocol = self._protocol
        protocol.send(command)
        if type(command) is not SendAudio:  # audio asks for nothing (the hot path)
            self.tracker.requested(command, _monotonic())
        for each in more:
            protocol.send(each)
            self.tracker.requested(each, _monotonic())
        # Some protocols report what a command did locally (e.g. a message the service
        # will not echo); those events go out in order with the received ones.
        for event in protocol.events_received():
            self._dispatch(event)
        frames = protocol.data_to_send()
        direct = self._direct
        if len(frames) == 1 and direct is not None and not self._outbox and not self._locked():
            # Nothing queued before it and no writer busy: send it straight away. These
            # connections hand a whole frame to the socket inside ``send`` before it
            # first yields, so frames sent this way keep the order they were taken in.
            await direct.send(frames[0])
            return
        if frames:
            self._outbox.extend(frames)
        if self._outbox:
            await self._send_outbox()

    async def send_audio(self, audio: bytes) -> None:
        """``send(SendAudio(audio=audio))`` for audio the caller has checked (``bytes``
        of whole PCM16 samples): with nothing queued, the protocol's ready-made frame
        (:meth:`~voxengine.protocols.HotPath.encode_audio`) goes straight to the
        connection (:meth:`write_audio`). Raises as :meth:`send`."""
        try:
            pending = self.write_audio(audio)
            if pending is not None:
                await pending
        except self.write_errors as exc:  # the backend's own close, as send raises it
            raise self.write_failure(exc) from exc

    def write_audio(self, audio: bytes) -> Awaitable[None] | None:
        """:meth:`send_audio`'s work in the fewest calls, for the link's audio path: with nothing
        queued, the protocol's ready-made frame goes to the connection's
        :meth:`~voxengine.transport.DirectConnection.write_utf8` and what that returns
        is returned (``None``: the frame is with the socket; else an awaitable to await
        at once). Otherwise the :meth:`send` coroutine.

        Raises:
            Exception: (now or when awaited) what :meth:`send` raises, or one of
                :attr:`write_errors` in place of a ``ConnectionClosed``
                (:meth:`write_failure` says which).
        """
        hot, direct = self._hot, self._direct
        if (
            hot is not None
            and direct is not None
            and not self._closed
            and not self._outbox
            and self._writing is None
        ):
            frame = hot.encode_audio(audio)
            if frame is not None:
                return direct.write_utf8(frame)
        return self.send(SendAudio(audio=audio))

    @property
    def write_errors(self) -> tuple[type[Exception], ...]:
        """What :meth:`write_audio` may raise in place of ``ConnectionClosed``."""
        direct = self._direct
        return direct.write_errors if direct is not None else ()

    def write_failure(self, exc: Exception) -> TransportError:
        """The ``ConnectionClosed`` that ``exc`` (one of :attr:`write_errors`) means."""
        direct = self._direct
        assert direct is not None
        return direct.write_failure(exc)

    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        """Cancel the active response and truncate assistant audio at ``played`` s.

        ``item_id`` is the assistant item being heard (default: the one whose audio
        arrived last) and ``played`` how much of it the user heard; for the latest item
        it is clamped to the audio received. With ``played=None`` nothing is truncated
        (the caller does not know what was played). ``cancel=False`` skips the cancel
        (the provider already cancelled, e.g. server VAD barge-in). Returns the
        :class:`Interrupted` event, which is also delivered through :meth:`events`.
        """
        tracker = self.tracker
        if cancel and tracker.active_response_id is not None:
            await self.send(CancelResponse())
        item_id = item_id or tracker.audio_item_id
        heard: float | None = None
        if item_id is not None and played is not None:
            heard = max(0.0, played)
            if item_id == tracker.audio_item_id:
                heard = min(heard, tracker.audio_received)
            await self.send(TruncateItem(item_id=item_id, audio_end=heard))
        event = Interrupted(item_id=item_id, played=heard)
        self._dispatch(event)
        return event

    def failure(self) -> VoxError | None:
        """Why the session ended, if it ended because of a failure."""
        return self._protocol.close_exc

    async def aclose(self, code: int = 1000, reason: str = "client closing") -> None:
        """Close the connection; wait for the reader and for sends it started. Idempotent.

        Bounded: returns within :data:`CLOSE_TIMEOUT` seconds whatever the peer does
        (the close handshake, then the reader and the sends it started share that
        time; what is left after it is cancelled).

        A ``code`` other than 1000 closes without marking the close as requested, so
        the session ends as failed (used to abandon a stalled connection).
        """
        if code == 1000:
            self._protocol.start_closing()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CLOSE_TIMEOUT

        def left() -> float:
            return max(0.0, deadline - loop.time())

        conn = self._conn
        if conn is not None:
            with contextlib.suppress(VoxError, OSError, TimeoutError):
                await asyncio.wait_for(conn.close(code, reason), _CLOSE_WAIT)
        reader = self._reader
        if reader is not None and not reader.done():
            await asyncio.wait({reader}, timeout=left())
            if not reader.done():
                reader.cancel()
                await asyncio.wait({reader})  # its finally only dispatches, at once
        if self._conn is not None and not self._closed:  # the close comes as a callback
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wait_closed(), left())
            if not self._closed:  # the connection never reported it: end here
                self._protocol.receive_close(None, "connection did not close in time")
                self._finish_reading()
        if self._sending:  # they end at once on a closed connection (errors are logged)
            sending = set(self._sending)
            await asyncio.wait(sending, timeout=left())
            for task in sending:
                task.cancel()
