"""The lean load generator's ``picows`` front end (``ServerSettings(lean_engine="picows")``).

The same protocol subset and paced replies as :mod:`benchmarks.leanserver` (its
``_Replies``), but the WebSocket work is ``picows``' (Cython): it answers the upgrade,
parses and unmasks every client frame, answers pings (``enable_auto_pong``) and frames
each reply. Per client frame only :meth:`_PicowsSession.on_ws_frame` runs in Python: an
``input_audio_buffer.append`` is recognised by its first bytes and dropped unread; any
other text frame is parsed (orjson) and answered; a close is echoed and the connection
closed. Per reply frame, the pre-encoded payload plus its ``bench_sent`` stamp is handed
to ``WSTransport.send`` (one write). ``picows`` is imported only when this engine serves.
"""

from __future__ import annotations

import functools
from typing import Any

import orjson

from benchmarks.leanserver import _APPEND, _LeanServer, _Replies

__all__ = ["picows_server"]


@functools.cache
def _session_class() -> type[Any]:
    from picows import WSCloseCode, WSListener, WSMsgType

    text, close = WSMsgType.TEXT, WSMsgType.CLOSE

    class _PicowsSession(_Replies, WSListener):  # type: ignore[misc]
        """One client connection on ``picows``."""

        def __init__(self, server: _LeanServer, path: str) -> None:
            _Replies.__init__(self, server)
            WSListener.__init__(self)
            self.path = path
            self.transport: Any = None

        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport
            # one C call per reply frame (picows ignores a send once the close is sent)
            self.send_text = functools.partial(transport.send, text)
            self.opened(self.path)

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            kind = frame.msg_type
            if kind is text:
                if frame.get_payload_as_bytes().startswith(_APPEND):
                    return  # the user's audio: dropped unread
                self.on_message(orjson.loads(frame.get_payload_as_memoryview()))
            elif kind is close:  # echo the close (RFC 6455 §5.5.1), then disconnect
                transport.send_close(frame.get_close_code() or WSCloseCode.OK)
                self.close()

        def on_ws_disconnected(self, transport: Any) -> None:
            self.stop_timer()
            self.transport = None

        def close(self) -> None:
            self.stop_timer()
            if self.transport is not None:
                self.transport.disconnect()

    return _PicowsSession


async def picows_server(lean: _LeanServer) -> Any:
    """A listening ``picows`` server on 127.0.0.1 (a free port), serving ``lean``'s sessions."""
    from picows import ws_create_server

    session = _session_class()

    def factory(request: Any) -> Any:
        return session(lean, request.path.decode("latin-1"))

    return await ws_create_server(
        factory,
        "127.0.0.1",
        0,
        max_frame_size=2**25,
        websocket_handshake_timeout=10,
        enable_auto_pong=True,
    )
