"""A fake Twilio for CI: places a phone call into a Media Streams application.

Written from Twilio's published protocol (twilio.com/docs/voice/media-streams,
/websocket-messages, /twiml/stream, /usage/security), it plays Twilio's side:

1. posts the voice webhook (form parameters ``CallSid``, ``AccountSid``, ``From``,
   ``To``, ``CallStatus``, ``Direction``) signed with ``X-Twilio-Signature``;
2. reads the ``<Connect><Stream url>`` TwiML with its ``<Parameter>`` elements;
3. opens the stream WebSocket (the upgrade signed too) and sends ``connected``,
   ``start`` (``customParameters`` from the TwiML) and the caller's audio as
   ``media`` frames of 20 ms of 8 kHz μ-law, paced in real time;
4. plays what comes back in real time: ``media`` joins the playback queue, a ``mark``
   is acknowledged when playback reaches it, ``clear`` drops the queue and
   acknowledges every pending mark at once (as Twilio does);
5. ``hang_up()`` sends ``stop`` and closes.

Anything the application sends that Twilio would not accept (not JSON, an unknown
event, another ``streamSid``, bad base64, a mark without a name) is recorded in
:attr:`FakeTwilioCall.violations`.

Usage::

    async with place_call("http://127.0.0.1:8000", auth_token) as call:
        await call.stream_pcm(question_8k)   # PCM16 at 8 kHz, sent in real time
        await call.wait_for_audio(1.0)       # a second of reply played
        await call.hang_up()
    assert not call.violations

Not imported by ``import voxengine`` nor ``voxengine.testing``: import this module.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import secrets
import socket
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, final
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
from websockets.asyncio.client import ClientConnection, connect

from voxengine.audio.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from voxengine.errors import EventTimeout

__all__ = ["FakeTwilioCall", "StreamInstructions", "place_call", "read_twiml"]

_FRAME_SECONDS = 0.02
_FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law


@dataclass(frozen=True, slots=True)
class StreamInstructions:
    """What ``<Connect><Stream>`` TwiML asks for: the URL and the custom parameters."""

    url: str
    parameters: dict[str, str]


def read_twiml(twiml: str) -> StreamInstructions:
    """The ``<Connect><Stream>`` of a TwiML document.

    Raises:
        ValueError: not TwiML, or no ``<Response><Connect><Stream url>``.
    """
    root = ElementTree.fromstring(twiml)
    stream = root.find("./Connect/Stream") if root.tag == "Response" else None
    if stream is None or not stream.get("url"):
        raise ValueError("TwiML has no <Response><Connect><Stream url=...>")
    parameters = {
        p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter") if p.get("name")
    }
    return StreamInstructions(url=stream.get("url", ""), parameters=parameters)


def _sign(auth_token: str, url: str, form: dict[str, str] | None = None) -> str:
    """Twilio's signature: base64 HMAC-SHA1 over the URL + sorted name/value pairs.

    Written here from Twilio's security docs on purpose, apart from the server's
    implementation, so the two check each other.
    """
    text = url + "".join(f"{name}{(form or {})[name]}" for name in sorted(form or {}))
    mac = hmac.new(auth_token.encode("utf-8"), text.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@final
class FakeTwilioCall:
    """One call in progress (see the module docstring); made by :func:`place_call`."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        call_sid: str,
        stream_sid: str,
        account_sid: str,
        instructions: StreamInstructions,
        on_media: Callable[[bytes, float], None] | None = None,
    ) -> None:
        self.ws = ws
        self.call_sid = call_sid
        self.stream_sid = stream_sid
        self.account_sid = account_sid
        self.instructions = instructions
        self.violations: list[str] = []
        self.played_audio = bytearray()  # PCM16 8 kHz, what the caller heard
        self.media_frames = 0
        self.clears = 0
        self.marks_acknowledged: list[str] = []
        self.close_code: int | None = None
        self._on_media = on_media
        self._sequence = 0
        self._chunk = 0
        self._sent_seconds = 0.0
        self._queue: deque[tuple[str, bytes | str]] = deque()
        self._queued = asyncio.Event()
        self._cleared = asyncio.Event()
        self._progress = asyncio.Condition()
        self._tasks: list[asyncio.Task[None]] = []

    # -- sending (Twilio -> application) ----------------------------------------------------

    async def _send(self, message: dict[str, Any]) -> None:
        self._sequence += 1
        message.setdefault("sequenceNumber", str(self._sequence))
        await self.ws.send(json.dumps(message))

    async def _open(self) -> None:
        await self.ws.send(
            json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        )
        start = {
            "accountSid": self.account_sid,
            "streamSid": self.stream_sid,
            "callSid": self.call_sid,
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": self.instructions.parameters,
        }
        await self._send({"event": "start", "start": start, "streamSid": self.stream_sid})
        self._tasks = [
            asyncio.create_task(self._receive_loop(), name="fake-twilio-receive"),
            asyncio.create_task(self._play_loop(), name="fake-twilio-play"),
        ]

    async def send_media(self, ulaw: bytes) -> None:
        """One ``media`` frame of μ-law (no pacing)."""
        self._chunk += 1
        media = {
            "track": "inbound",
            "chunk": str(self._chunk),
            "timestamp": str(round(self._sent_seconds * 1000)),
            "payload": base64.b64encode(ulaw).decode("ascii"),
        }
        self._sent_seconds += len(ulaw) / 8000
        await self._send({"event": "media", "media": media, "streamSid": self.stream_sid})

    async def stream_pcm(
        self,
        pcm16_8k: bytes,
        *,
        realtime: bool = True,
        on_frame: Callable[[int], None] | None = None,
    ) -> None:
        """Send PCM16 8 kHz audio as 20 ms μ-law frames, one every 20 ms (real time).

        ``on_frame(i)`` is called just before frame ``i`` is sent (benchmarks).
        """
        ulaw = pcm16_to_ulaw(pcm16_8k)
        loop = asyncio.get_running_loop()
        begin = loop.time()
        for i in range(0, len(ulaw), _FRAME_BYTES):
            if realtime:
                delay = begin + (i // _FRAME_BYTES) * _FRAME_SECONDS - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            if on_frame is not None:
                on_frame(i // _FRAME_BYTES)
            await self.send_media(ulaw[i : i + _FRAME_BYTES])

    async def send_silence(self, seconds: float) -> None:
        """``seconds`` of digital silence in real time."""
        await self.stream_pcm(bytes(2 * round(seconds * 8000)))

    async def send_dtmf(self, digit: str) -> None:
        """A key press."""
        dtmf = {"track": "inbound_track", "digit": digit}
        await self._send({"event": "dtmf", "dtmf": dtmf, "streamSid": self.stream_sid})

    def stop_reading(self) -> None:
        """Stop reading the application's frames, as a caller whose network stalled:
        nothing more is played or acknowledged, and once the socket's buffers fill the
        application can send no more (its server must bound what it queues)."""
        for task in self._tasks[:2]:  # the receive and play loops
            task.cancel()

    async def send_raw(self, frame: str | bytes) -> None:
        """Any frame at all (for hostile-input tests)."""
        await self.ws.send(frame)

    async def hang_up(self) -> None:
        """``stop``, then close the WebSocket."""
        stop = {"accountSid": self.account_sid, "callSid": self.call_sid}
        with contextlib.suppress(Exception):
            await self._send({"event": "stop", "stop": stop, "streamSid": self.stream_sid})
        await self.ws.close()

    # -- receiving and playing (application -> Twilio) ------------------------------------

    @property
    def played_seconds(self) -> float:
        """Seconds of the application's audio played to the caller so far."""
        return len(self.played_audio) / 16000

    async def _receive_loop(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                self._receive(raw)
        self.close_code = self.ws.close_code
        async with self._progress:
            self._progress.notify_all()

    def _receive(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (ValueError, TypeError):
            self.violations.append("a frame that is not JSON text")
            return
        if not isinstance(message, dict):
            self.violations.append("a frame that is not a JSON object")
            return
        if message.get("streamSid") != self.stream_sid:
            self.violations.append(f"{message.get('event')!r} without this streamSid")
        match message.get("event"):
            case "media":
                payload = (message.get("media") or {}).get("payload")
                try:
                    if not isinstance(payload, str):
                        raise TypeError(payload)
                    audio = base64.b64decode(payload, validate=True)
                except (binascii.Error, ValueError, TypeError):
                    self.violations.append("media payload that is not base64")
                    return
                self.media_frames += 1
                if self._on_media is not None:
                    self._on_media(audio, time.perf_counter())
                self._queue.append(("media", audio))
                self._queued.set()
            case "mark":
                name = (message.get("mark") or {}).get("name")
                if not isinstance(name, str) or not name:
                    self.violations.append("mark without a name")
                    return
                self._queue.append(("mark", name))
                self._queued.set()
            case "clear":
                self.clears += 1
                pending = [value for kind, value in self._queue if kind == "mark"]
                self._queue.clear()
                self._cleared.set()
                for name in pending:  # Twilio acknowledges the dropped marks at once
                    self._ack_soon(str(name))
            case other:
                self.violations.append(f"unknown event {other!r}")

    def _ack_soon(self, name: str) -> None:
        task = asyncio.create_task(self._ack(name))
        self._tasks.append(task)

    async def _ack(self, name: str) -> None:
        self.marks_acknowledged.append(name)
        with contextlib.suppress(Exception):
            await self._send(
                {"event": "mark", "mark": {"name": name}, "streamSid": self.stream_sid}
            )

    async def _play_loop(self) -> None:
        loop = asyncio.get_running_loop()
        play_head = loop.time()
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            kind, value = self._queue.popleft()
            if kind == "mark":
                await self._ack(str(value))
                continue
            assert isinstance(value, bytes)
            self._cleared.clear()
            play_head = max(play_head, loop.time()) + len(value) / 8000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cleared.wait(), max(0.0, play_head - loop.time()))
            if self._cleared.is_set():  # cut off mid-chunk: count what was heard
                heard = len(value) - round(max(0.0, play_head - loop.time()) * 8000)
                value = value[: max(0, heard)]
                play_head = loop.time()
            self.played_audio += ulaw_to_pcm16(value)
            async with self._progress:
                self._progress.notify_all()

    async def wait_for_audio(self, seconds: float, *, timeout: float = 20.0) -> None:
        """Wait until ``seconds`` of reply audio have been played.

        Raises:
            EventTimeout: not in ``timeout`` seconds (or the stream closed first).
        """
        await self._wait(lambda: self.played_seconds >= seconds, timeout, f"{seconds}s of audio")

    async def wait_for_clear(self, *, timeout: float = 20.0) -> None:
        """Wait until the application has sent ``clear``."""
        await self._wait(lambda: self.clears > 0, timeout, "a clear")

    async def wait_closed(self, *, timeout: float = 20.0) -> int | None:
        """Wait until the application closes the stream; returns the close code."""
        await self._wait(lambda: self.close_code is not None, timeout, "the close")
        return self.close_code

    async def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        async def until() -> None:
            async with self._progress:
                while not done():
                    if self.close_code is not None and what != "the close":
                        raise EventTimeout(f"stream closed ({self.close_code}) before {what}")
                    await self._progress.wait()

        try:
            await asyncio.wait_for(until(), timeout)
        except TimeoutError:
            raise EventTimeout(f"no {what} within {timeout}s") from None

    async def aclose(self) -> None:
        """Stop the tasks and close the socket (idempotent)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.ws.close()


async def _small_window_socket(url: str, receive_buffer_bytes: int) -> socket.socket:
    """A connected TCP socket to ``url``'s host with a small receive buffer."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer_bytes)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except BaseException:
        sock.close()
        raise
    return sock


@contextlib.asynccontextmanager
async def place_call(
    server_url: str,
    auth_token: str,
    *,
    voice_path: str = "/twilio/voice",
    from_number: str = "+15550100",
    to_number: str = "+15550199",
    signed_url: str | None = None,
    on_media: Callable[[bytes, float], None] | None = None,
    timeout: float = 10.0,
    receive_buffer_bytes: int | None = None,
) -> AsyncIterator[FakeTwilioCall]:
    """Place a call: signed webhook, TwiML, signed stream upgrade, ``connected`` + ``start``.

    Args:
        server_url: the application's base URL (``http://127.0.0.1:8000``).
        auth_token: the auth token the application verifies signatures with.
        voice_path: the voice webhook path.
        signed_url: the URL to sign for the webhook, when it differs from the one
            requested (an application behind a proxy, ``public_url``).
        on_media: called with each outbound media payload and its arrival time.
        receive_buffer_bytes: the stream socket's receive buffer (``SO_RCVBUF``); a
            small one makes a caller that stops reading (:meth:`FakeTwilioCall.stop_reading`)
            push back on the application at once, as a stalled network does.

    Raises:
        httpx.HTTPStatusError: the webhook was refused (e.g. 403 for a bad signature).
        websockets.exceptions.InvalidStatus: the stream upgrade was refused.
    """
    call_sid, account_sid, stream_sid = _sid("CA"), _sid("AC"), _sid("MZ")
    url = server_url.rstrip("/") + voice_path
    form = {
        "CallSid": call_sid,
        "AccountSid": account_sid,
        "From": from_number,
        "To": to_number,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "ApiVersion": "2010-04-01",
    }
    headers = {"X-Twilio-Signature": _sign(auth_token, signed_url or url, form)}
    async with httpx.AsyncClient(timeout=timeout) as http:
        response = await http.post(url, data=form, headers=headers)
        response.raise_for_status()
    instructions = read_twiml(response.text)
    ws_headers = {"X-Twilio-Signature": _sign(auth_token, instructions.url)}
    sock = None
    if receive_buffer_bytes is not None:
        sock = await _small_window_socket(instructions.url, receive_buffer_bytes)
    ws = await connect(
        instructions.url,
        additional_headers=ws_headers,
        open_timeout=timeout,
        max_size=2**20,
        sock=sock,
    )
    call = FakeTwilioCall(
        ws,
        call_sid=call_sid,
        stream_sid=stream_sid,
        account_sid=account_sid,
        instructions=instructions,
        on_media=on_media,
    )
    try:
        await call._open()
        yield call
    finally:
        await call.aclose()
