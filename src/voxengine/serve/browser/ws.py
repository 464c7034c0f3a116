"""The browser WebSocket endpoint (``/ws``) and its wire protocol, version 1.

Text frames are JSON objects with a ``"type"``; binary frames are audio: PCM16
little-endian mono, the caller's microphone at the hello's ``input_sample_rate``
(client to server) or the assistant at ``output_sample_rate`` (server to client).
docs/serving-design.md lists every message; in short:

client -> server
    ``hello`` (first message, within ``hello_timeout``): ``token``, ``protocol`` (1),
    ``input_sample_rate``, ``output_sample_rate``, ``resume_token`` (``null``, or the
    token of a call to continue: then ``token`` may be empty; see
    :mod:`voxengine.serve.continuity`), ``metadata`` (object, passed to the session
    factory).
    Binary audio. ``played`` (``epoch``, ``seconds``): assistant audio actually played
    since clear ``epoch``. ``text`` (``text``). ``interrupt``. ``ping`` (``id``). ``bye``.

server -> client
    ``ready`` (``call_id``, rates, ``resume_token``, ``durable``, ``limits``), then
    ``resumed`` after a resume.
    Binary audio. ``clear`` (``epoch``): stop playback now, drop the queue, count
    ``played`` from zero for this epoch. ``transcript`` (``role``, ``item_id``,
    ``text``, ``final``), ``speech`` (``state``), ``response`` (``state``...),
    ``latency`` (``first_audio``), ``interrupted`` (``item_id``, ``played``),
    ``error`` (``code``, ``message``: a recoverable provider error), ``pong``
    (``id``), ``going_away`` (``seconds``), ``bye`` (``reason``, ``detail``), then the
    close with the reason's code (:class:`~voxengine.serve.errors.CloseReason`).

Hostile input (malformed JSON, a message over ``max_message_bytes``, odd-length or
early audio, an unknown type, a flood) ends that connection's call only, with the
matching close reason; nothing else is affected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any, Final, final

from starlette.websockets import WebSocket, WebSocketState

from voxengine.audio.format import AudioFormat
from voxengine.serve.browser.control import PROTOCOL_VERSION, handle_control
from voxengine.serve.call import Call
from voxengine.serve.continuity import Resumption
from voxengine.serve.errors import CallRefused, CloseReason
from voxengine.serve.limits import RateWindow
from voxengine.serve.switchboard import Switchboard, new_call_id, switchboard_of

__all__ = ["PROTOCOL_VERSION", "SAMPLE_RATES", "BrowserPort", "browser_endpoint"]

logger = logging.getLogger("voxengine.serve.browser")

#: Sample rates a browser may use for either direction.
SAMPLE_RATES: Final = frozenset({8000, 16000, 22050, 24000, 32000, 44100, 48000})


@final
class BrowserPort:
    """:class:`~voxengine.serve.call.CallerPort` over a Starlette WebSocket."""

    def __init__(self, websocket: WebSocket, output_sample_rate: int) -> None:
        self._ws = websocket
        self._format = AudioFormat(sample_rate=output_sample_rate)
        self._closed = False

    @property
    def output_format(self) -> AudioFormat:
        """PCM16 mono at the hello's ``output_sample_rate``."""
        return self._format

    async def send_audio(self, pcm16: bytes, sample_rate: int) -> None:
        """One binary frame."""
        await self._ws.send_bytes(pcm16)

    async def clear_playback(self, epoch: int) -> None:
        """``{"type": "clear", "epoch": n}``."""
        await self.send_event({"type": "clear", "epoch": epoch})

    async def send_event(self, message: Mapping[str, Any]) -> None:
        """One JSON text frame."""
        await self._ws.send_text(json.dumps(message, separators=(",", ":")))

    async def close(self, reason: CloseReason, detail: str = "") -> None:
        """``bye`` then the WebSocket close with the reason's code. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await _close(self._ws, reason, detail)


async def _close(ws: WebSocket, reason: CloseReason, detail: str = "") -> None:
    if ws.application_state != WebSocketState.CONNECTED:
        return
    with contextlib.suppress(Exception):
        await ws.send_text(
            json.dumps({"type": "bye", "reason": reason.wire_name, "detail": detail})
        )
    with contextlib.suppress(Exception):
        await ws.close(reason.code, reason.description)


def _client(ws: WebSocket) -> str | None:
    return f"{ws.client.host}:{ws.client.port}" if ws.client else None


def _rate(hello: Mapping[str, Any], name: str, default: int) -> int:
    value = hello.get(name, default)
    if type(value) is not int or value not in SAMPLE_RATES:
        raise CallRefused(CloseReason.BAD_AUDIO, f"{name} must be one of {sorted(SAMPLE_RATES)}")
    return value


def _parse(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError:
        raise CallRefused(CloseReason.MALFORMED, "not JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise CallRefused(CloseReason.MALFORMED, "a JSON object with a string 'type' expected")
    return message


async def _receive(
    ws: WebSocket, board: Switchboard, rate: RateWindow | None
) -> str | bytes | None:
    """The next message's text or bytes; ``None`` when the client went away.

    Raises:
        CallRefused: ``too_big`` or ``rate_limited``.
    """
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return None
    data: str | bytes | None = message.get("text")
    if data is None:
        data = message.get("bytes") or b""
    size = len(data) if isinstance(data, bytes) else len(data.encode())
    limit = board.config.limits.max_message_bytes
    if size > limit:
        raise CallRefused(CloseReason.TOO_BIG, f"{size} bytes, at most {limit}")
    if rate is not None and not rate.allow():
        raise CallRefused(CloseReason.RATE_LIMITED, "over max_messages_per_second")
    return data


async def browser_endpoint(ws: WebSocket) -> None:
    """Serve one browser call on ``ws`` (see the module docstring)."""
    board = switchboard_of(ws)
    call_id = new_call_id()
    await ws.accept()
    resumption: Resumption | None = None
    try:
        hello = await _hello(ws, board)
        if hello.get("resume_token") is not None:  # a call continued from another worker
            resumption = await board.continuity.claim(hello["resume_token"])
            call_id, caller = resumption.call_id, resumption.caller
        else:
            caller = (await board.redeem(hello.get("token"))).subject
        in_rate = _rate(hello, "input_sample_rate", 16000)
        out_rate = _rate(hello, "output_sample_rate", 24000)
        metadata = hello.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise CallRefused(CloseReason.MALFORMED, "metadata must be an object")
    except CallRefused as exc:
        board.refuse(call_id, exc)
        if resumption is not None:  # claimed, then refused (bad metadata): give it back
            await board.continuity.unclaim(resumption)
        await _close(ws, exc.reason, exc.detail)
        return
    except Exception:  # the client left during the hello
        await _close(ws, CloseReason.NORMAL)
        return
    port = BrowserPort(ws, out_rate)
    try:
        async with board.open_call(
            port,
            endpoint="browser",
            caller=caller,
            client=_client(ws),
            params=metadata,
            call_id=call_id,
            resume=resumption,
        ) as call:
            await port.send_event(
                {
                    "type": "ready",
                    "protocol": PROTOCOL_VERSION,
                    "call_id": call.call_id,
                    "input_sample_rate": in_rate,
                    "output_sample_rate": out_rate,
                    **board.continuity.ready_fields(call.call_id),  # resume_token, durable
                    "limits": {
                        "max_message_bytes": board.config.limits.max_message_bytes,
                        "max_call_seconds": board.config.limits.max_call_seconds,
                    },
                }
            )
            if resumption is not None and call.restored is not None:
                await port.send_event(board.continuity.resumed_message(resumption, call.restored))
            await _converse(ws, board, call, in_rate)
    except CallRefused as exc:
        await _close(ws, exc.reason, exc.detail)


async def _hello(ws: WebSocket, board: Switchboard) -> dict[str, Any]:
    try:
        data = await asyncio.wait_for(_receive(ws, board, None), board.config.limits.hello_timeout)
    except TimeoutError:
        raise CallRefused(CloseReason.TIMEOUT) from None
    if data is None:
        raise ConnectionAbortedError("client left before hello")
    if isinstance(data, bytes):
        raise CallRefused(CloseReason.PROTOCOL, "audio before hello")
    hello = _parse(data)
    if hello["type"] != "hello":
        raise CallRefused(CloseReason.PROTOCOL, f"expected hello, got {hello['type']!r}")
    if hello.get("protocol", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        raise CallRefused(CloseReason.PROTOCOL, f"protocol {PROTOCOL_VERSION} only")
    return hello


async def _converse(ws: WebSocket, board: Switchboard, call: Call, in_rate: int) -> None:
    """Feed the caller's messages to ``call`` until either side ends it."""
    rate = RateWindow(board.config.limits.max_messages_per_second)
    try:
        while not call.closed:
            data = await _receive(ws, board, rate)
            if data is None:
                return
            if isinstance(data, bytes):
                await call.receive_audio(data, in_rate)
            else:
                await handle_control(call, _parse(data))
    except CallRefused as exc:
        board.metrics.caller_error(call.call_id, exc.reason, exc.detail)
        await call.close(exc.reason, exc.detail)
    except (RuntimeError, OSError):  # the socket closed under us (drain, time limit)
        return
