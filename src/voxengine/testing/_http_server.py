"""A tiny HTTP/1.1 server on 127.0.0.1 for the fake HTTP APIs (asyncio + ``h11``).

:func:`serve_http` runs a handler per request over real sockets, with keep-alive and
chunked streaming as HTTP/1.1 clients (httpx, the official SDKs) expect. A handler
gets a :class:`HttpRequest` and a :class:`HttpResponder` and either sends a whole body
(:meth:`HttpResponder.send`) or streams (:meth:`HttpResponder.start` then
:meth:`~HttpResponder.write` ... :meth:`~HttpResponder.end`). A client that goes away
mid-stream makes ``write`` raise :class:`ClientGone`, which handlers may let escape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import h11

__all__ = ["ClientGone", "HttpHandler", "HttpRequest", "HttpResponder", "serve_http"]

logger = logging.getLogger("voxengine.testing")


class ClientGone(Exception):
    """The client closed the connection before the response was complete."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """One received request; header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        return json.loads(self.body)


class HttpResponder:
    """Sends the response to one request."""

    def __init__(self, conn: h11.Connection, writer: asyncio.StreamWriter) -> None:
        self._conn = conn
        self._writer = writer
        self.status: int | None = None

    async def _put(self, event: Any) -> None:
        data = self._conn.send(event)
        if self._writer.is_closing():
            raise ClientGone
        try:
            if data:
                self._writer.write(data)
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            raise ClientGone from exc

    async def start(self, status: int, headers: Mapping[str, str]) -> None:
        """Send the status line and headers of a streamed (chunked) response."""
        self.status = status
        await self._put(h11.Response(status_code=status, headers=list(headers.items())))

    async def write(self, data: bytes) -> None:
        """Send part of the body. Raises :class:`ClientGone` if the client left."""
        if data:
            await self._put(h11.Data(data=data))

    async def end(self) -> None:
        """Finish the body."""
        await self._put(h11.EndOfMessage())

    async def send(self, status: int, body: bytes, content_type: str) -> None:
        """Send a complete response."""
        self.status = status
        headers = {"content-type": content_type, "content-length": str(len(body))}
        await self._put(h11.Response(status_code=status, headers=list(headers.items())))
        await self._put(h11.Data(data=body))
        await self._put(h11.EndOfMessage())

    async def send_json(self, status: int, payload: object) -> None:
        """Send ``payload`` as a JSON response."""
        await self.send(status, json.dumps(payload).encode(), "application/json")


HttpHandler = Callable[[HttpRequest, HttpResponder], Awaitable[None]]


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        conn.receive_data(await reader.read(65536))


async def _serve_connection(
    handler: HttpHandler, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = await _next_event(conn, reader)
            if not isinstance(event, h11.Request):
                return
            body = bytearray()
            while not isinstance(part := await _next_event(conn, reader), h11.EndOfMessage):
                if isinstance(part, h11.Data):
                    body += part.data
                elif isinstance(part, h11.ConnectionClosed):
                    return
            request = HttpRequest(
                method=event.method.decode(),
                path=event.target.decode(),
                headers={k.decode().lower(): v.decode() for k, v in event.headers},
                body=bytes(body),
            )
            await handler(request, HttpResponder(conn, writer))
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (ClientGone, ConnectionError, h11.ProtocolError):
        return
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def serve_http(handler: HttpHandler) -> AsyncIterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port); yields the base URL.

    Leaving the context closes the listener and every open connection.
    """
    connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections[task] = writer
        try:
            await _serve_connection(handler, reader, writer)
        except asyncio.CancelledError:
            return  # shutting down; asyncio's stream callback must not see the cancellation
        finally:
            connections.pop(task, None)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for writer in connections.values():
            writer.close()  # idle keep-alive connections end at once, streams at their next write
        if connections:
            _, pending = await asyncio.wait(list(connections), timeout=2.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()
