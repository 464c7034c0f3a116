"""A Python client for the browser WebSocket protocol: :func:`open_call`.

It speaks exactly what the served page speaks (see :mod:`voxengine.serve.browser.ws`),
over the ``websockets`` library: say hello with a token, stream microphone audio
(a WAV file or PCM, paced in real time or not), receive the assistant's audio and
events, and report the played position like a real speaker would (a simulated player
that plays in real time and honours ``clear``). Used by the tests, the serving
benchmark, and (issue 18) to reconnect with the ``resume_token`` from ``ready``.

Example (against a running ``voxengine serve``)::

    token = await fetch_token("http://127.0.0.1:8000")
    async with open_call("ws://127.0.0.1:8000/ws", token) as call:
        await call.stream_wav("question.wav")
        reply = await call.wait_for("response", lambda m: m["state"] == "done")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, final

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from voxengine.audio.format import AudioFormat
from voxengine.audio.resample import convert
from voxengine.audio.wav import read_wav
from voxengine.errors import EventTimeout, VoxError

__all__ = ["CallClient", "CallEnded", "Player", "fetch_token", "open_call"]

PlayerMode = Literal["realtime", "instant", "none"]


async def fetch_token(
    base_url: str, *, secret: str | None = None, subject: str | None = None
) -> str:
    """A call token from the server's ``POST /token`` (with the deployment ``secret``
    when given, as an application backend would).

    Raises:
        httpx.HTTPStatusError: the server refused (401, 403, 429, 503).
    """
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    body = {"subject": subject} if subject else {}
    async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as http:
        response = await http.post("/token", json=body, headers=headers)
        response.raise_for_status()
        token = response.json()["token"]
        assert isinstance(token, str)
        return token


@final
class Player:
    """A simulated speaker: plays received audio in real time (or instantly), counts
    seconds played in the current epoch, and drops its queue on ``clear``."""

    def __init__(
        self, fmt: AudioFormat, mode: PlayerMode, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.format = fmt
        self.mode = mode
        self.epoch = 0
        self.queued = 0.0  # seconds received in this epoch
        self._played = 0.0
        #: Seconds played when each clear arrived (what the listener heard), in order.
        self.played_at_clear: list[float] = []
        self._clock = clock
        self._tick = clock()

    @property
    def played(self) -> float:
        """Seconds played in this epoch."""
        self._advance()
        return self._played

    def _advance(self) -> None:
        now = self._clock()
        if self.mode == "realtime":
            self._played = min(self.queued, self._played + (now - self._tick))
        elif self.mode == "instant":
            self._played = self.queued
        self._tick = now

    def receive(self, pcm: bytes) -> None:
        """Queue received audio."""
        self._advance()
        self.queued += self.format.duration(len(pcm))

    def clear(self, epoch: int) -> None:
        """Stop, drop the queue, start counting ``epoch``."""
        self.played_at_clear.append(self.played)
        self.epoch = epoch
        self.queued = self._played = 0.0
        self._tick = self._clock()


@final
class CallClient:
    """One call over the browser protocol; made by :func:`open_call`.

    Attributes:
        ready: the server's ``ready`` message.
        messages: every JSON message received, in order.
        audio: every byte of assistant audio received (PCM16 at the output rate).
        close_code, bye: how the call ended (once it has).
    """

    def __init__(
        self, ws: ClientConnection, ready: dict[str, Any], player: Player, report_interval: float
    ) -> None:
        self.ws = ws
        self.ready = ready
        self.player = player
        self.messages: list[dict[str, Any]] = []
        self.audio = bytearray()
        self.bye: dict[str, Any] | None = None
        self.close_code: int | None = None
        self._changed = asyncio.Condition()
        self._report_interval = report_interval
        self._tasks = [
            asyncio.create_task(self._receive(), name="call-client-receive"),
        ]
        if player.mode != "none":
            self._tasks.append(asyncio.create_task(self._report(), name="call-client-played"))

    @property
    def call_id(self) -> str:
        """The server's id for this call."""
        return str(self.ready["call_id"])

    @property
    def resume_token(self) -> str | None:
        """The resume token from ``ready`` (reserved for issue 18; ``None`` today)."""
        value = self.ready.get("resume_token")
        return value if isinstance(value, str) else None

    @property
    def input_format(self) -> AudioFormat:
        """What :meth:`send_audio` sends."""
        return AudioFormat(sample_rate=int(self.ready["input_sample_rate"]))

    async def _receive(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, bytes):
                    self.audio += frame
                    self.player.receive(frame)
                else:
                    message = json.loads(frame)
                    if message.get("type") == "clear":
                        self.player.clear(int(message["epoch"]))
                        await self._report_now()
                    elif message.get("type") == "bye":
                        self.bye = message
                    self.messages.append(message)
                async with self._changed:
                    self._changed.notify_all()
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            async with self._changed:
                self._changed.notify_all()

    async def _report_now(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.send_json(
                {"type": "played", "epoch": self.player.epoch, "seconds": self.player.played}
            )

    async def _report(self) -> None:
        last = -1.0
        while True:
            await asyncio.sleep(self._report_interval)
            played = self.player.played
            if played != last:
                last = played
                await self._report_now()

    # -- sending --------------------------------------------------------------------------

    async def send_json(self, message: Mapping[str, Any]) -> None:
        """One JSON control message."""
        await self.ws.send(json.dumps(message))

    async def send_audio(self, pcm16: bytes) -> None:
        """One binary frame of microphone audio (PCM16 at :attr:`input_format`)."""
        await self.ws.send(pcm16)

    async def stream_pcm(
        self,
        pcm16: bytes,
        *,
        sample_rate: int | None = None,
        frame: float = 0.02,
        realtime: bool = True,
    ) -> None:
        """Send ``pcm16`` in ``frame``-second frames, paced like a microphone when
        ``realtime`` (resampled first when ``sample_rate`` differs from the call's)."""
        fmt = self.input_format
        if sample_rate is not None and sample_rate != fmt.sample_rate:
            pcm16 = convert(pcm16, AudioFormat(sample_rate=sample_rate), fmt)
        size = fmt.bytes_for(frame)
        start = time.monotonic()
        for index, offset in enumerate(range(0, len(pcm16), size)):
            await self.send_audio(pcm16[offset : offset + size])
            if realtime:
                delay = start + (index + 1) * frame - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)

    async def stream_wav(
        self, path: str | Path, *, realtime: bool = True, trailing_silence: float = 1.0
    ) -> None:
        """Stream a WAV file as the microphone, then ``trailing_silence`` seconds of
        silence (so a voice activity detector hears the turn end)."""
        pcm, fmt = read_wav(path)
        pcm = convert(pcm, fmt, self.input_format)
        pcm += bytes(self.input_format.bytes_for(trailing_silence))
        await self.stream_pcm(pcm, realtime=realtime)

    async def send_text(self, text: str) -> None:
        """A typed user message."""
        await self.send_json({"type": "text", "text": text})

    async def interrupt(self) -> None:
        """Ask the assistant to stop."""
        await self.send_json({"type": "interrupt"})

    async def hang_up(self) -> None:
        """Say ``bye`` and wait for the server to close."""
        with contextlib.suppress(ConnectionClosed):
            await self.send_json({"type": "bye"})
        await self.wait_closed()

    # -- waiting --------------------------------------------------------------------------

    async def wait_for(
        self,
        kind: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda message: True,
        *,
        timeout: float = 30.0,
        start: int = 0,
    ) -> dict[str, Any]:
        """The first message (from index ``start``) of type ``kind`` matching ``predicate``.

        Raises:
            EventTimeout: none within ``timeout`` seconds, or the call closed first.
        """

        def found() -> dict[str, Any] | None:
            for message in self.messages[start:]:
                if message.get("type") == kind and predicate(message):
                    return message
            return None

        async def wait() -> dict[str, Any]:
            async with self._changed:
                while (message := found()) is None:
                    if self.close_code is not None:
                        raise EventTimeout(f"call closed before a {kind!r} message")
                    await self._changed.wait()
                return message

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise EventTimeout(f"no {kind!r} message within {timeout}s") from None

    async def wait_played(self, seconds: float, *, timeout: float = 30.0) -> float:
        """Wait until the simulated speaker has played ``seconds`` of the current epoch
        (audio must arrive for that); returns the played position.

        Raises:
            EventTimeout: not within ``timeout`` seconds, or the call closed first.
        """

        def enough_queued() -> bool:
            return self.player.queued >= seconds or self.close_code is not None

        async def wait() -> float:
            while True:
                async with self._changed:
                    await self._changed.wait_for(enough_queued)
                if self.close_code is not None:
                    raise EventTimeout("call closed while waiting for playback")
                remaining = seconds - self.player.played
                if remaining <= 0:
                    return self.player.played
                await asyncio.sleep(remaining)  # the speaker plays in real time

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise EventTimeout(f"{seconds}s not played within {timeout}s") from None

    async def wait_closed(self, timeout: float = 30.0) -> int | None:
        """Wait until the server closes; returns the close code."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._tasks[0]), timeout)
        return self.close_code

    async def aclose(self) -> None:
        """Close the socket and stop the client's tasks."""
        for task in self._tasks[1:]:
            task.cancel()
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._tasks[0]
        for task in self._tasks[1:]:
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def open_call(
    url: str,
    token: str,
    *,
    input_sample_rate: int = 16000,
    output_sample_rate: int = 24000,
    metadata: Mapping[str, Any] | None = None,
    resume_token: str | None = None,
    player: PlayerMode = "realtime",
    report_interval: float = 0.05,
    timeout: float = 30.0,
) -> AsyncIterator[CallClient]:
    """Connect to a browser endpoint (``ws://host:port/ws``), say hello, wait for ready.

    Raises:
        ConnectionRefusedError / websockets errors: the server is unreachable.
        CallEnded: the server refused the call (``bye`` + close) instead of ``ready``.
    """
    async with connect(url, max_size=None, open_timeout=timeout) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "hello",
                    "protocol": 1,
                    "token": token,
                    "input_sample_rate": input_sample_rate,
                    "output_sample_rate": output_sample_rate,
                    "resume_token": resume_token,
                    "metadata": dict(metadata or {}),
                }
            )
        )
        ready = await _await_ready(ws, timeout)
        client = CallClient(
            ws, ready, Player(AudioFormat(sample_rate=output_sample_rate), player), report_interval
        )
        try:
            yield client
        finally:
            await client.aclose()


class CallEnded(VoxError):
    """The server ended (or refused) the call: ``reason`` is the ``bye`` reason."""

    def __init__(self, reason: str, detail: str, code: int | None) -> None:
        self.reason, self.detail, self.code = reason, detail, code
        super().__init__(f"{reason}: {detail}" if detail else reason)


async def _await_ready(ws: ClientConnection, timeout: float) -> dict[str, Any]:
    bye: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            async for frame in ws:
                if isinstance(frame, bytes):
                    continue
                message = json.loads(frame)
                if message.get("type") == "ready":
                    return dict(message)
                if message.get("type") == "bye":
                    bye = message
    except ConnectionClosed:
        pass
    raise CallEnded(str(bye.get("reason", "closed")), str(bye.get("detail", "")), ws.close_code)
