"""Bare floor clients on WebSocket libraries with a compiled frame parser (issue 20).

Would a compiled parser let one process carry the scale goal? These clients do the
floor's exact work per frame (:class:`~benchmarks.bareclients.HookClient`: orjson,
strict base64, the recorder callbacks in the read path; orjson text frames out) on a
different WebSocket library. Each library is imported only when its client connects,
so the benchmarks run (and these clients fail with a clear message) without them.

* :class:`AiohttpHookClient` (``aiohttp_floor``) — ``aiohttp``'s client WebSocket, whose
  frame reader is Cython. ``aiohttp`` has no public read callback (``receive()`` is a
  queue and a task wake-up), so after the handshake the connection's parser is replaced
  by a second ``WebSocketReader`` feeding a ``WebSocketDataQueue`` subclass that decodes
  whole text messages in ``feed_data``, the exact analogue of the floor's
  ``process_event``. That reaches into ``aiohttp`` internals (``set_parser``, the
  queue's ``_protocol``); control frames still go to the public ``receive()``.
* :class:`PicowsClient` (``picows_floor``) — ``picows``, Cython throughout, whose public
  read hook is ``WSListener.on_ws_frame``. Run on the event loop's own transport
  (``use_aiofastnet=False``: the same socket layer as every other client); it does not
  reassemble fragmented messages (the fakes never fragment).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
from typing import Any

import orjson

from benchmarks.bareclients import _SESSION_UPDATE, _append_frame, _dispatch
from benchmarks.recorder import API_KEY, BenchClient, Recorder, user_text_item

__all__ = ["AiohttpHookClient", "PicowsClient"]


def _require(module: str, client: str) -> None:
    """Fail with a clear message when ``client``'s optional library is missing."""
    try:
        importlib.import_module(module)
    except ImportError as exc:
        message = f"the {client} benchmark client needs {module!r}: pip install {module}"
        raise ImportError(message) from exc


@functools.cache
def _aiohttp_hook_queue() -> type[Any]:
    """A ``WebSocketDataQueue`` that decodes whole text messages as the parser yields them."""
    from aiohttp import WSMsgType
    from aiohttp._websocket.reader import WebSocketDataQueue

    text = WSMsgType.TEXT

    class HookQueue(WebSocketDataQueue):
        rec: Recorder
        original: Any  # the connection's own queue: everything but text goes there

        def feed_data(self, data: Any, size: int) -> None:
            if data.type is text:
                _dispatch(self.rec, data.data)
            else:
                self.original.feed_data(data, size)

        def feed_eof(self) -> None:
            self.original.feed_eof()

        def set_exception(self, exc: BaseException, *args: Any) -> None:
            self.original.set_exception(exc, *args)

    return HookQueue


class AiohttpHookClient(BenchClient):
    """``aiohttp``'s Cython frame reader, text messages decoded as it yields them."""

    name = "bare aiohttp read hook (compiled reader)"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._session: Any = None
        self._ws: Any = None
        self._control: asyncio.Task[None] | None = None
        self._text: Any = None
        #: the connection's asyncio protocol (its ``data_received`` is the read callback)
        self._proto: Any = None

    async def connect(self, base_url: str, model: str) -> None:
        _require("aiohttp", "aiohttp_floor")
        import aiohttp
        from aiohttp._websocket.reader import WebSocketReader

        self._session = aiohttp.ClientSession()
        ws = await self._session.ws_connect(
            f"{base_url}/realtime?model={model}",
            headers={"Authorization": f"Bearer {API_KEY}"},
            compress=0,
            max_msg_size=2**24,
            decode_text=False,
        )
        self._ws, self._text = ws, aiohttp.WSMsgType.TEXT
        created = orjson.loads((await ws.receive(timeout=10)).data)
        assert created["type"] == "session.created", created
        await ws.send_frame(orjson.dumps(_SESSION_UPDATE), aiohttp.WSMsgType.TEXT)
        updated = orjson.loads((await ws.receive(timeout=10)).data)
        assert updated["type"] == "session.updated", updated
        # From now on text frames are decoded as the parser yields them (see the module doc).
        original = ws._reader
        proto = original._protocol
        queue = _aiohttp_hook_queue()(proto, 2**16, loop=asyncio.get_running_loop())
        queue.rec, queue.original = self.rec, original
        parser = WebSocketReader(queue, 2**24, compress=False, decode_text=False)
        ws._parser = parser
        proto.set_parser(parser, queue)
        self._proto = proto
        self._control = asyncio.create_task(self._control_frames(ws))

    @staticmethod
    async def _control_frames(ws: Any) -> None:
        """Pings are answered and the close handshake finished inside ``receive()``."""
        async for _ in ws:  # only non-text messages reach the original queue
            pass

    async def send_text(self, text: str) -> None:
        item = {"type": "conversation.item.create", "item": user_text_item(text)}
        await self._ws.send_frame(orjson.dumps(item), self._text)
        await self._ws.send_frame(b'{"type":"response.create"}', self._text)

    async def send_audio(self, pcm: bytes) -> None:
        await self._ws.send_frame(_append_frame(pcm), self._text)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._control is not None:
            await self._control
        if self._session is not None:
            await self._session.close()


@functools.cache
def _picows_listener() -> type[Any]:
    """The ``picows`` listener: decodes whole text frames in ``on_ws_frame``."""
    from picows import WSCloseCode, WSListener, WSMsgType

    text, close = WSMsgType.TEXT, WSMsgType.CLOSE

    class Listener(WSListener):
        def __init__(self) -> None:
            super().__init__()
            self.rec: Recorder | None = None
            self.messages: asyncio.Queue[bytes] = asyncio.Queue()  # before the handshake

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            msg_type = frame.msg_type
            if msg_type is text and frame.fin:
                rec = self.rec
                if rec is not None:
                    _dispatch(rec, frame.get_payload_as_memoryview())
                else:
                    self.messages.put_nowait(frame.get_payload_as_bytes())
            elif msg_type is close:
                transport.send_close(frame.get_close_code() or WSCloseCode.OK)
                transport.disconnect()
            elif not frame.fin or msg_type is WSMsgType.CONTINUATION:
                raise ValueError("fragmented messages are not supported by this client")

    return Listener


class PicowsClient(BenchClient):
    """``picows`` (Cython), text frames decoded in its ``on_ws_frame`` read hook."""

    name = "bare picows on_ws_frame (compiled parser)"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._transport: Any = None
        self._listener: Any = None
        self._text: Any = None
        #: the connection's asyncio protocol (a ``BufferedProtocol``)
        self._proto: Any = None

    async def connect(self, base_url: str, model: str) -> None:
        _require("picows", "picows_floor")
        from picows import WSMsgType, ws_connect

        transport, listener = await ws_connect(
            _picows_listener(),
            f"{base_url}/realtime?model={model}",
            extra_headers={"Authorization": f"Bearer {API_KEY}"},
            max_frame_size=2**24,
            websocket_handshake_timeout=10,
            use_aiofastnet=False,
        )
        self._transport, self._listener, self._text = transport, listener, WSMsgType.TEXT
        self._proto = transport.underlying_transport.get_protocol()
        created = orjson.loads(await asyncio.wait_for(listener.messages.get(), 10))
        assert created["type"] == "session.created", created
        transport.send(WSMsgType.TEXT, orjson.dumps(_SESSION_UPDATE))
        updated = orjson.loads(await asyncio.wait_for(listener.messages.get(), 10))
        assert updated["type"] == "session.updated", updated
        listener.rec = self.rec

    async def send_text(self, text: str) -> None:
        item = {"type": "conversation.item.create", "item": user_text_item(text)}
        self._transport.send(self._text, orjson.dumps(item))
        self._transport.send(self._text, b'{"type":"response.create"}')

    async def send_audio(self, pcm: bytes) -> None:
        self._transport.send(self._text, _append_frame(pcm))

    async def close(self) -> None:
        transport = self._transport
        if transport is None:
            return
        from picows import WSCloseCode

        with contextlib.suppress(Exception):
            transport.send_close(WSCloseCode.OK)
        try:
            await asyncio.wait_for(transport.wait_disconnected(), 5)
        except TimeoutError:
            transport.disconnect(graceful=False)
