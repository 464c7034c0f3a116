"""The bare clients: what a hand-written client without voxengine does, three ways.

* :class:`HookClient` — **the floor**: ``websockets``' asyncio client opened with a
  ``ClientConnection`` subclass (``connect(create_connection=...)``, the extension point
  voxengine's own transport uses) whose ``process_event`` decodes each whole text frame
  right in the read callback: ``orjson.loads`` (voxengine's JSON library) and a strict
  base64 decode with voxengine's base64 library (``pybase64``'s validating decode when
  it is installed, as voxengine uses it, else strict ``binascii``), then the application
  callback. The same work as voxengine's fast mode and nothing else.
* :class:`AsyncForClient` — the idiomatic ``websockets`` client, ``async for frame in
  ws`` with stdlib ``json`` (the previous floor): every frame goes through
  ``websockets``' queue and a reader-task wake-up. A labelled reference, not the floor.
* :class:`ProtocolClient` — **the physical reference**: a raw ``asyncio.Protocol`` whose
  ``data_received`` feeds ``websockets``' sans-I/O ``ClientProtocol`` (framing, masking
  and the handshake come from the library; nothing else runs between the socket and the
  decode). What CPython with asyncio can do at best per frame.

All three speak the OpenAI Realtime handshake the fake expects (``session.created``,
``session.update`` → ``session.updated``) and send with orjson as text frames.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from typing import Any, cast

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import Event
from websockets.uri import parse_uri

from benchmarks.recorder import API_KEY, BenchClient, Recorder, user_text_item

__all__ = ["AsyncForClient", "HookClient", "ProtocolClient"]

_AUDIO = "response.output_audio.delta"
_TRANSCRIPT = "response.output_audio_transcript.delta"
_DONE = "response.done"

try:  # the base64 library voxengine's decode uses (voxengine.audio.b64), called bare
    import pybase64 as _pybase64
except ImportError:  # pragma: no cover - pybase64 is in the dev extra
    _pybase64 = None  # type: ignore[assignment]
_pb64decode = None if _pybase64 is None else _pybase64.b64decode  # called with its keyword:
_a2b = binascii.a2b_base64  # a partial with keywords would build a dict per call
if _pybase64 is not None:
    BASE64_LIBRARY = "pybase64 (validating)"
    _encode = _pybase64.b64encode_as_string
else:  # pragma: no cover
    BASE64_LIBRARY = "strict binascii"

    def _encode(pcm: bytes) -> str:
        return binascii.b2a_base64(pcm, newline=False).decode("ascii")


_SESSION_UPDATE = {"type": "session.update", "session": {"type": "realtime"}}


def _dispatch(rec: Recorder, data: bytes | bytearray | memoryview) -> None:
    """Decode one server frame and hand it to the application (shared by hook/protocol)."""
    msg = orjson.loads(data)
    kind = msg["type"]
    if kind == _AUDIO:
        delta = msg["delta"]
        if _pb64decode is not None:
            rec.on_audio(_pb64decode(delta, validate=True))
        else:  # pragma: no cover
            rec.on_audio(_a2b(delta, strict_mode=True))
    elif kind == _TRANSCRIPT:
        rec.on_transcript()
    elif kind == _DONE:
        rec.on_done()


def _append_frame(pcm: bytes) -> bytes:
    audio = _encode(pcm)  # voxengine's base64 library, as for the decode
    return orjson.dumps({"type": "input_audio_buffer.append", "audio": audio})


class AsyncForClient(BenchClient):
    """``websockets`` with ``async for frame in ws``, ``json.loads``, ``base64.b64decode``."""

    name = "raw websockets async for (reference)"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, base_url: str, model: str) -> None:
        ws = await connect(
            f"{base_url}/realtime?model={model}",
            additional_headers={"Authorization": f"Bearer {API_KEY}"},
            compression=None,
            max_size=2**24,
        )
        self._ws = ws
        created = json.loads(await ws.recv())
        assert created["type"] == "session.created", created
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        updated = json.loads(await ws.recv())
        assert updated["type"] == "session.updated", updated
        self._reader = asyncio.create_task(self._read(ws))

    async def _read(self, ws: ClientConnection) -> None:
        rec = self.rec
        b64decode = base64.b64decode
        async for frame in ws:
            msg = json.loads(frame)
            kind = msg["type"]
            if kind == _AUDIO:
                rec.on_audio(b64decode(msg["delta"]))
            elif kind == _TRANSCRIPT:
                rec.on_transcript()
            elif kind == _DONE:
                rec.on_done()

    async def send_text(self, text: str) -> None:
        assert self._ws is not None
        item = {"type": "conversation.item.create", "item": user_text_item(text)}
        await self._ws.send(json.dumps(item))
        await self._ws.send('{"type":"response.create"}')

    async def send_audio(self, pcm: bytes) -> None:
        assert self._ws is not None
        audio = base64.b64encode(pcm).decode("ascii")
        await self._ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader


class _HookConnection(ClientConnection):
    """Once :attr:`rec` is set, whole text frames are decoded in ``process_event``."""

    def __init__(self, protocol: ClientProtocol, **kwargs: Any) -> None:
        super().__init__(protocol, **kwargs)
        self.rec: Recorder | None = None

    def process_event(self, event: Event) -> None:
        rec = self.rec
        if rec is not None and type(event) is Frame and event.opcode is Opcode.TEXT and event.fin:
            _dispatch(rec, event.data)
            return
        super().process_event(event)  # handshake frames, control frames, fragments


class HookClient(BenchClient):
    """The floor: decode in ``websockets``' read hook, orjson + strict base64."""

    name = "bare websockets read hook (floor)"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._ws: _HookConnection | None = None

    async def connect(self, base_url: str, model: str) -> None:
        ws = await connect(
            f"{base_url}/realtime?model={model}",
            additional_headers={"Authorization": f"Bearer {API_KEY}"},
            compression=None,
            max_size=2**24,
            create_connection=_HookConnection,
        )
        assert isinstance(ws, _HookConnection)
        self._ws = ws
        created = orjson.loads(await ws.recv())
        assert created["type"] == "session.created", created
        await ws.send(orjson.dumps(_SESSION_UPDATE), text=True)
        updated = orjson.loads(await ws.recv())
        assert updated["type"] == "session.updated", updated
        ws.rec = self.rec  # from now on frames are decoded in the read callback

    async def send_text(self, text: str) -> None:
        assert self._ws is not None
        item = {"type": "conversation.item.create", "item": user_text_item(text)}
        await self._ws.send(orjson.dumps(item), text=True)
        await self._ws.send(b'{"type":"response.create"}', text=True)

    async def send_audio(self, pcm: bytes) -> None:
        assert self._ws is not None
        await self._ws.send(_append_frame(pcm), text=True)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()


class _RawProtocol(asyncio.Protocol):
    """``asyncio.Protocol`` over ``websockets``' sans-I/O ``ClientProtocol``."""

    def __init__(self, uri: str, rec: Recorder) -> None:
        self.ws = ClientProtocol(parse_uri(uri), max_size=2**24)
        self.rec = rec
        self.transport: asyncio.Transport | None = None
        self.messages: asyncio.Queue[bytes | bytearray | memoryview] = (
            asyncio.Queue()
        )  # before the handshake is done
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ready = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's TCPTransport is one without subclassing asyncio's)
        self.transport = cast(asyncio.Transport, transport)
        request = self.ws.connect()
        request.headers["Authorization"] = f"Bearer {API_KEY}"
        self.ws.send_request(request)
        self.flush()

    def flush(self) -> None:
        """Write what the protocol has to send (an empty chunk means: close the socket)."""
        assert self.transport is not None
        for data in self.ws.data_to_send():
            if data:
                self.transport.write(data)
            else:
                self.transport.write_eof()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        rec = self.rec
        for event in ws.events_received():
            if type(event) is Frame:
                if event.opcode is Opcode.TEXT:
                    if self.ready:
                        _dispatch(rec, event.data)
                    else:
                        self.messages.put_nowait(event.data)
            elif isinstance(event, Response) and not self.open.done():
                if ws.handshake_exc is not None:
                    self.open.set_exception(ws.handshake_exc)
                else:
                    self.open.set_result(None)
        self.flush()  # pongs, the close reply

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or ConnectionError("connection lost"))
        if not self.lost.done():
            self.lost.set_result(None)

    def send(self, data: bytes) -> None:
        """Send one text frame."""
        self.ws.send_text(data)
        self.flush()


class ProtocolClient(BenchClient):
    """The physical reference: a raw ``asyncio.Protocol`` with sans-I/O framing."""

    name = "asyncio.Protocol + sans-I/O (reference)"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._proto: _RawProtocol | None = None

    async def connect(self, base_url: str, model: str) -> None:
        uri = f"{base_url}/realtime?model={model}"
        parsed = parse_uri(uri)
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(
            lambda: _RawProtocol(uri, self.rec), parsed.host, parsed.port
        )
        self._proto = proto
        await asyncio.wait_for(proto.open, 10)
        created = orjson.loads(await asyncio.wait_for(proto.messages.get(), 10))
        assert created["type"] == "session.created", created
        proto.send(orjson.dumps(_SESSION_UPDATE))
        updated = orjson.loads(await asyncio.wait_for(proto.messages.get(), 10))
        assert updated["type"] == "session.updated", updated
        proto.ready = True

    async def send_text(self, text: str) -> None:
        assert self._proto is not None
        item = {"type": "conversation.item.create", "item": user_text_item(text)}
        self._proto.send(orjson.dumps(item))
        self._proto.send(b'{"type":"response.create"}')

    async def send_audio(self, pcm: bytes) -> None:
        assert self._proto is not None
        self._proto.send(_append_frame(pcm))

    async def close(self) -> None:
        proto = self._proto
        if proto is None or proto.transport is None:
            return
        with contextlib.suppress(Exception):
            proto.ws.send_close(1000)
            proto.flush()
        try:
            await asyncio.wait_for(asyncio.shield(proto.lost), 5)
        except TimeoutError:
            proto.transport.close()
