"""A browser-protocol call that survives its server: :func:`open_resilient_call`.

:class:`ResilientCall` wraps :class:`~voxengine.serve.client.CallClient`. When the
connection ends without the call having ended (the worker was killed, it drained
for a restart, the network dropped, or its WebSocket pings went unanswered), it says
hello again at the same URL (a load balancer sends it to a live worker) with the
latest ``resume_token`` from ``ready``, with a short backoff, until
``reconnect_timeout``. The server answers ``ready`` (a new token) and ``resumed``
(what came back; what was ``lost``).

While disconnected, microphone audio cannot reach anyone: it is dropped and counted
in :attr:`ResilientCall.dropped_audio_seconds` (and reported in
:attr:`ResilientCall.losses`), never silently. Texts wait for the reconnection. A
text sent just before the loss was noticed (into a socket whose server was already
dead) is sent again after the resume unless the ``resumed`` transcript shows the
server had it (``losses[-1]["resent_texts"]``).

Example::

    async with open_resilient_call("ws://lb:8080/ws", token) as call:
        await call.send_text("My name is Ada")
        ...  # the worker dies; the call resumes elsewhere on its own
        resumed = await call.wait_for("resumed")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, final

from websockets.exceptions import ConnectionClosed, WebSocketException

from voxengine.errors import EventTimeout
from voxengine.serve.client import CallClient, CallEnded, PlayerMode, open_call

__all__ = ["ResilientCall", "open_resilient_call"]

logger = logging.getLogger("voxengine.serve.client")

#: ``bye`` reasons after which the call is over (no resume is attempted).
_FINAL = frozenset({"normal", "time_limit", "unauthorized", "forbidden", "too_many_calls"})


@final
class ResilientCall:
    """See the module docstring; made by :func:`open_resilient_call`.

    Attributes:
        client: the current connection's client.
        reconnects: how many times the call was resumed.
        reconnect_seconds: for each resume, seconds from the loss to ``ready``.
        losses: one entry per loss: ``{"dropped_audio_seconds", "lost"}`` (the
            server's ``resumed.lost``) once known.
    """

    def __init__(
        self,
        url: str,
        connect: Callable[[str | None], contextlib.AbstractAsyncContextManager[CallClient]],
        *,
        reconnect_timeout: float,
    ) -> None:
        self.url = url
        self._connect = connect
        self._reconnect_timeout = reconnect_timeout
        self._stack = contextlib.AsyncExitStack()
        self.client: CallClient | None = None
        self._old: list[dict[str, Any]] = []
        self._token: str | None = None
        self._connected = asyncio.Event()
        self._ended = asyncio.Event()
        self._hanging_up = False
        self.reconnects = 0
        self.reconnect_seconds: list[float] = []
        self.losses: list[dict[str, Any]] = []
        self.dropped_audio_seconds = 0.0
        self._sent_texts: list[tuple[str, int]] = []  # (text, len(messages) when sent)
        self.end_reason: str | None = None
        self._supervisor: asyncio.Task[None] | None = None

    async def _open(self, resume_token: str | None) -> None:
        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(self._connect(resume_token))
        self._stack = stack
        self.client = client
        self._token = client.resume_token
        self._connected.set()

    async def start(self) -> None:
        """Open the first connection and start watching it."""
        await self._open(None)
        self._supervisor = asyncio.create_task(self._supervise(), name="resilient-call")

    @property
    def call_id(self) -> str:
        """The call's id (the same on every worker)."""
        assert self.client is not None
        return self.client.call_id

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every JSON message received, across connections, in order."""
        current = self.client.messages if self.client is not None else []
        return [*self._old, *current]

    @property
    def ended(self) -> bool:
        """True once the call is over (hung up, refused, or could not be resumed)."""
        return self._ended.is_set()

    async def _supervise(self) -> None:
        try:
            while True:
                client = self.client
                assert client is not None
                await client.wait_closed(timeout=1e9)
                reason = (client.bye or {}).get("reason")
                if self._hanging_up or reason in _FINAL:
                    self.end_reason = reason or "closed"
                    return
                lost_at = time.monotonic()
                self._connected.clear()
                self.client = None  # (with the next line, no await between: no duplicates)
                self._old.extend(client.messages)
                with contextlib.suppress(Exception):
                    await self._stack.aclose()
                self.losses.append({"dropped_audio_seconds": 0.0, "lost": None})
                if not await self._resume(lost_at):
                    return
        finally:
            self._ended.set()
            self._connected.set()  # wake waiters: they see the end

    async def _resume(self, lost_at: float) -> bool:
        delay = 0.05
        deadline = lost_at + self._reconnect_timeout
        while time.monotonic() < deadline and not self._hanging_up:
            try:
                await self._open(self._token)
            except CallEnded as exc:
                if exc.reason in _FINAL or exc.reason == "unauthorized":
                    logger.warning("call could not be resumed: %s", exc)
                    self.end_reason = exc.reason
                    return False
            except (OSError, WebSocketException, TimeoutError) as exc:
                logger.info("resume attempt failed (%s); retrying", type(exc).__name__)
            else:
                self.reconnects += 1
                self.reconnect_seconds.append(time.monotonic() - lost_at)
                await self._resend_unseen_texts()
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)
        self.end_reason = "resume_timeout"
        return False

    def _unanswered_texts(self) -> list[str]:
        """Texts sent with no ``response`` message after them yet."""
        messages = self.messages
        return [
            text
            for text, index in self._sent_texts
            if not any(m.get("type") == "response" for m in messages[index:])
        ]

    async def _resend_unseen_texts(self) -> None:
        pending = self._unanswered_texts()
        self._sent_texts.clear()
        if not pending or self.client is None:
            return
        try:
            resumed = await self.client.wait_for("resumed", timeout=10)
        except EventTimeout:
            return
        known = {e.get("text") for e in resumed.get("transcript", []) if e.get("role") == "user"}
        resent = [text for text in pending if text not in known]
        if self.losses:
            self.losses[-1]["resent_texts"] = resent
        for text in resent:
            await self.send_text(text)

    async def _current(self, timeout: float) -> CallClient:
        async with asyncio.timeout(timeout):
            await self._connected.wait()
        if self.client is None:
            raise EventTimeout(f"the call ended ({self.end_reason})")
        return self.client

    # -- sending ----------------------------------------------------------------------------

    async def send_text(self, text: str, *, timeout: float = 30.0) -> None:
        """A typed message; waits for a reconnection in progress (``timeout``)."""
        while True:
            client = await self._current(timeout)
            try:
                self._sent_texts.append((text, len(self.messages)))
                await client.send_text(text)
                return
            except ConnectionClosed:
                await asyncio.sleep(0)  # the supervisor notices and reconnects

    async def send_audio(self, pcm16: bytes) -> None:
        """One frame of microphone audio; dropped (and counted) while disconnected."""
        client = self.client
        if client is not None and self._connected.is_set():
            with contextlib.suppress(ConnectionClosed):
                await client.send_audio(pcm16)
                return
        seconds = (
            len(pcm16) / 2 / 16000 if client is None else client.input_format.duration(len(pcm16))
        )
        self.dropped_audio_seconds += seconds
        if self.losses:
            self.losses[-1]["dropped_audio_seconds"] += seconds

    async def wait_for(
        self,
        kind: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda message: True,
        *,
        timeout: float = 30.0,
        start: int = 0,
    ) -> dict[str, Any]:
        """The first message (index ``start`` on, across connections) of type ``kind``
        matching ``predicate``; waits through reconnections.

        Raises:
            EventTimeout: none within ``timeout`` seconds, or the call ended first.
        """
        deadline = time.monotonic() + timeout
        while True:
            for message in self.messages[start:]:
                if message.get("type") == kind and predicate(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EventTimeout(f"no {kind!r} message within {timeout}s")
            try:
                client = await self._current(remaining)
            except TimeoutError:
                raise EventTimeout(f"no {kind!r} message within {timeout}s") from None
            seen = len(self._old)
            try:
                message = await client.wait_for(
                    kind, predicate, timeout=remaining, start=max(0, start - seen)
                )
            except EventTimeout:
                if client.close_code is None:
                    raise
                await asyncio.sleep(0)  # closed: wait for the next connection
                continue
            if message.get("type") == "resumed" and self.losses:
                self.losses[-1]["lost"] = message.get("lost")
            return message

    async def hang_up(self) -> None:
        """Say ``bye``: the call is over (no resume)."""
        self._hanging_up = True
        if self.client is not None:
            await self.client.hang_up()

    async def aclose(self) -> None:
        """Stop watching and close the connection."""
        self._hanging_up = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        await self._stack.aclose()


@contextlib.asynccontextmanager
async def open_resilient_call(
    url: str,
    token: str,
    *,
    reconnect_timeout: float = 30.0,
    input_sample_rate: int = 16000,
    output_sample_rate: int = 24000,
    metadata: Mapping[str, Any] | None = None,
    player: PlayerMode = "realtime",
    timeout: float = 30.0,
    ping_interval: float = 2.0,
    ping_timeout: float = 4.0,
) -> AsyncIterator[ResilientCall]:
    """Like :func:`~voxengine.serve.client.open_call`, resuming the call on any worker
    behind ``url`` when its connection is lost (see :class:`ResilientCall`).

    A server that hangs with the socket open (or a machine gone without a TCP reset)
    counts as lost when a WebSocket ping sent every ``ping_interval`` seconds gets no
    pong within ``ping_timeout``: at most ``ping_interval + 2 * ping_timeout`` seconds
    (10 s by default) after it stopped answering (the close handshake is given
    ``ping_timeout`` too).

    Raises:
        as :func:`~voxengine.serve.client.open_call` for the first connection.
    """

    def connect(resume_token: str | None) -> contextlib.AbstractAsyncContextManager[CallClient]:
        return open_call(
            url,
            token if resume_token is None else "",
            input_sample_rate=input_sample_rate,
            output_sample_rate=output_sample_rate,
            metadata=metadata,
            resume_token=resume_token,
            player=player,
            timeout=timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=ping_timeout,
        )

    call = ResilientCall(url, connect, reconnect_timeout=reconnect_timeout)
    await call.start()
    try:
        yield call
    finally:
        await call.aclose()
