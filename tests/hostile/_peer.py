"""Raw WebSocket servers for the hostile tests, written from the protocol notes.

Nothing here comes from voxengine (no fake server, no fault injection): each server is
a ``websockets.asyncio.server`` handler that speaks just enough of the wire protocol
(/work/shared/protocols/openai-realtime.md §5, §6, §9, §10, §15 and gemini-live.md
§4, §12) and then misbehaves the way a scenario says. Every connection is recorded,
with every client message it received, so a test can assert what reached the service.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Json = dict[str, Any]

_ids = itertools.count(1)


def _event_id() -> str:
    return f"event_{next(_ids)}"


class Peer:
    """The server side of one connection (OpenAI Realtime wire shape unless noted)."""

    def __init__(self, ws: ServerConnection, index: int) -> None:
        self.ws = ws
        self.index = index
        #: Every client message received on this connection, in order.
        self.received: list[Json] = []
        #: The conversation as this connection's server holds it (items by creation).
        self.items: list[Json] = []
        self.closed = asyncio.Event()
        self._items = itertools.count(1)

    # -- wire -----------------------------------------------------------------------

    async def send(self, event: Json) -> None:
        await self.ws.send(json.dumps({"event_id": _event_id(), **event}))

    async def recv(self) -> Json:
        message = json.loads(await self.ws.recv())
        self.received.append(message)
        return message

    async def recv_type(self, *kinds: str) -> Json:
        """The next client event of one of ``kinds`` (others are recorded and skipped)."""
        while True:
            message = await self.recv()
            if message.get("type") in kinds:
                return message

    def drop(self) -> None:
        """Lose the connection: no close frame, the TCP connection just ends."""
        self.ws.transport.abort()

    # -- OpenAI Realtime behaviour --------------------------------------------------

    async def handshake(self) -> Json:
        """§15.1: session.created, wait for the client's session.update, session.updated."""
        await self.send({"type": "session.created", "session": _session()})
        update = await self.recv_type("session.update")
        await self.send({"type": "session.updated", "session": _session()})
        return update

    def new_item_id(self) -> str:
        return f"item_{self.index}_{next(self._items)}"

    async def add_item(self, message: Json) -> None:
        """§5/§9: conversation.item.create → conversation.item.added, .done."""
        item = dict(message.get("item", {}))
        item["id"] = item.get("id") or self.new_item_id()
        item["status"] = "completed"
        self.items.append(item)
        previous = self.items[-2]["id"] if len(self.items) > 1 else None
        for kind in ("conversation.item.added", "conversation.item.done"):
            await self.send({"type": kind, "previous_item_id": previous, "item": item})

    async def text_response(self, text: str = "ok") -> str:
        """§15.2: a complete text response; returns its id."""
        response_id = f"resp_{self.index}_{next(self._items)}"
        item_id = self.new_item_id()
        await self.send({"type": "response.created", "response": _response(response_id)})
        message = {"id": item_id, "type": "message", "role": "assistant", "content": []}
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": {**message, "status": "in_progress"},
            }
        )
        await self.send(
            {
                "type": "response.output_text.delta",
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": text,
            }
        )
        done = {
            **message,
            "status": "completed",
            "content": [{"type": "output_text", "text": text}],
        }
        self.items.append(done)
        await self.send({"type": "conversation.item.done", "previous_item_id": None, "item": done})
        await self.send(
            {"type": "response.done", "response": _response(response_id, "completed", [done])}
        )
        return response_id

    async def function_call(self, call_id: str, name: str, arguments: str = "{}") -> None:
        """§15.4: a response made of one function call, then response.done."""
        response_id = f"resp_{self.index}_{next(self._items)}"
        item = {
            "id": self.new_item_id(),
            "type": "function_call",
            "status": "completed",
            "name": name,
            "call_id": call_id,
            "arguments": arguments,
        }
        await self.send({"type": "response.created", "response": _response(response_id)})
        await self.send(
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": {**item, "status": "in_progress", "arguments": ""},
            }
        )
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                "response_id": response_id,
                "item_id": item["id"],
                "output_index": 0,
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            }
        )
        self.items.append(item)
        await self.send({"type": "conversation.item.done", "previous_item_id": None, "item": item})
        await self.send(
            {"type": "response.done", "response": _response(response_id, "completed", [item])}
        )

    async def serve(self) -> None:
        """Behave (§9) until the client closes: items acknowledged, text responses."""
        while True:
            message = await self.recv()
            await self.answer(message)

    async def answer(self, message: Json) -> None:
        """The well-behaved reply to one client event."""
        kind = message.get("type")
        if kind == "conversation.item.create":
            await self.add_item(message)
        elif kind == "response.create":
            await self.text_response()
        elif kind == "session.update":
            await self.send({"type": "session.updated", "session": _session()})

    # -- views ----------------------------------------------------------------------

    def user_texts(self) -> list[str]:
        """Texts of the user messages in this connection's conversation, in order."""
        return [
            part.get("text", "")
            for item in self.items
            if item.get("type") == "message" and item.get("role") == "user"
            for part in item.get("content", [])
        ]

    def tool_outputs(self) -> list[str]:
        """Call ids of the function outputs in this connection's conversation."""
        return [i["call_id"] for i in self.items if i.get("type") == "function_call_output"]

    def received_texts(self) -> list[str]:
        """Every user text this connection received (item creates), duplicates included."""
        return [
            part.get("text", "")
            for m in self.received
            if m.get("type") == "conversation.item.create"
            and m.get("item", {}).get("role") == "user"
            for part in m["item"].get("content", [])
        ]


def _session() -> Json:
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": "sess_hostile",
        "model": "gpt-realtime",
        "output_modalities": ["text"],
    }


def _response(response_id: str, status: str = "in_progress", output: Any = ()) -> Json:
    return {
        "object": "realtime.response",
        "id": response_id,
        "status": status,
        "output": list(output),
        "usage": None,
    }


Behaviour = Callable[[Peer], Awaitable[None]]


class HostileServer:
    """A raw WebSocket server on 127.0.0.1 running ``behave`` for every connection.

    ``behave`` may pick its conduct from ``peer.index`` (0 for the first connection).
    """

    def __init__(self, behave: Behaviour) -> None:
        self._behave = behave
        self._server: Server | None = None
        self.peers: list[Peer] = []
        self.connection = asyncio.Condition()

    async def __aenter__(self) -> HostileServer:
        self._server = await serve(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    async def wait_connections(self, count: int, timeout: float = 30) -> None:
        async with self.connection:
            await asyncio.wait_for(
                self.connection.wait_for(lambda: len(self.peers) >= count), timeout
            )

    async def _handle(self, ws: ServerConnection) -> None:
        peer = Peer(ws, len(self.peers))
        self.peers.append(peer)
        async with self.connection:
            self.connection.notify_all()
        try:
            await self._behave(peer)
        except ConnectionClosed:
            pass
        finally:
            peer.closed.set()


def open_sockets() -> int:
    """How many sockets this process holds open (Linux /proc)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            continue  # closed while listing
    return count


def voxengine_tasks() -> list[asyncio.Task[Any]]:
    """Tasks of voxengine still alive (by their ``voxengine-`` names or coroutines)."""
    current = asyncio.current_task()
    alive = []
    for task in asyncio.all_tasks():
        if task is current or task.done():
            continue
        coro = task.get_coro()
        module = getattr(getattr(coro, "cr_code", None), "co_filename", "")
        if task.get_name().startswith("voxengine") or "/voxengine/" in module:
            alive.append(task)
    return alive
