"""RealtimeSession (the driver) alone: the OpenAI protocol over an in-memory connection
to the fake OpenAI server as the peer; events reach the sink, in order, with the session."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from voxengine.commands import CreateResponse, SendText
from voxengine.config import SessionConfig
from voxengine.errors import ConnectionClosed
from voxengine.events import Event, ResponseDone, SessionClosed, SessionReady
from voxengine.protocols.openai._wire import Dialect
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol
from voxengine.session import RealtimeSession
from voxengine.testing import FakeOpenAIConfig
from voxengine.testing.fakes.openai import FakeOpenAIServer, serve_fake_connection
from voxengine.transport import Connection
from voxengine.transport.memory import memory_pair


def _peer() -> tuple[FakeOpenAIServer, list[asyncio.Task[None]], object]:
    server = FakeOpenAIServer(FakeOpenAIConfig(voices=None), connection=0)
    tasks: list[asyncio.Task[None]] = []

    async def connect(url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        client, end = memory_pair()
        server.receive_connect("/v1/realtime?model=gpt-realtime", {"authorization": "Bearer k"})

        async def recv() -> str | bytes | None:
            try:
                return await end.recv()
            except ConnectionClosed:
                return None

        tasks.append(
            asyncio.create_task(
                serve_fake_connection(server, recv, end.send, end.close, 0.0, abort=end.abort)
            )
        )
        return client

    return server, tasks, connect


async def test_the_driver_sends_commands_and_hands_every_event_to_its_sink() -> None:
    server, tasks, connect = _peer()
    seen: list[tuple[RealtimeSession, Event]] = []
    session = RealtimeSession(
        OpenAIRealtimeProtocol(
            url="memory://x/v1/realtime?model=gpt-realtime",
            headers={"Authorization": "Bearer k"},
            session=SessionConfig(),
            dialect=Dialect.GA,
        ),
        connect,  # type: ignore[arg-type]
        sink=lambda s, e: seen.append((s, e)),
    )
    await asyncio.wait_for(session.open(), 10)
    assert session.is_open
    await session.send(SendText(text="Hello!"), CreateResponse())
    for _ in range(500):
        if any(isinstance(e, ResponseDone) for _, e in seen):
            break
        await asyncio.sleep(0.01)
    await session.aclose()
    await asyncio.wait_for(session.wait_closed(), 10)
    await asyncio.gather(*tasks)
    events = [e for _, e in seen]
    assert all(s is session for s, _ in seen)
    assert isinstance(events[0], SessionReady)
    assert isinstance(events[-1], SessionClosed)
    assert sum(isinstance(e, ResponseDone) for e in events) == 1
    received = [m["type"] for m in server.received]
    assert received.index("conversation.item.create") < received.index("response.create")
