"""SessionLink alone: the one event stream, reconnects that restore the conversation and
deliver what was queued, and giving up; over in-memory connections to fake OpenAI peers
(one fake per connection, as a real service would have)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from voxengine.audio.format import AudioFormat
from voxengine.commands import Command, CreateResponse, RestoreItem, SendText, UpdateSession
from voxengine.config import ReconnectPolicy, SessionConfig, WatchdogPolicy
from voxengine.errors import ConnectFailed, ConnectionClosed, InvalidState
from voxengine.events import (
    ConversationItem,
    Event,
    ItemKind,
    Reconnected,
    Reconnecting,
    ResponseDone,
    Role,
    SessionClosed,
    SessionReady,
)
from voxengine.protocols.openai._wire import Dialect
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol
from voxengine.session import RealtimeSession
from voxengine.session.driver import EventSink
from voxengine.session.link import SessionLink, merge_session
from voxengine.testing import FakeOpenAIConfig
from voxengine.testing.fakes.openai import FakeOpenAIServer, serve_fake_connection
from voxengine.transport import Connection
from voxengine.transport.memory import MemoryConnection, memory_pair

PCM = AudioFormat(sample_rate=24_000)
FAST = ReconnectPolicy(initial_delay=0.0, max_delay=0.01, max_attempts=2)


class Peers:
    """Opens in-memory connections, one fake OpenAI server each; ``refuse`` makes every
    later attempt fail as a refused TCP connect would."""

    def __init__(self) -> None:
        self.servers: list[FakeOpenAIServer] = []
        self.ends: list[MemoryConnection] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.refuse = False
        #: When set, a connect waits for it (holds the link in its reconnect).
        self.gate: asyncio.Event | None = None

    async def connect(self, url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse:
            raise ConnectFailed("connection refused")
        server = FakeOpenAIServer(FakeOpenAIConfig(voices=None), connection=len(self.servers))
        client, end = memory_pair()
        server.receive_connect("/v1/realtime?model=gpt-realtime", {"authorization": "Bearer k"})

        async def recv() -> str | bytes | None:
            try:
                return await end.recv()
            except ConnectionClosed:
                return None

        self.servers.append(server)
        self.ends.append(end)
        self.tasks.append(
            asyncio.create_task(
                serve_fake_connection(server, recv, end.send, end.close, 0.0, abort=end.abort)
            )
        )
        return client

    def session(self, sink: EventSink) -> RealtimeSession:
        protocol = OpenAIRealtimeProtocol(
            url="memory://x/v1/realtime?model=gpt-realtime",
            headers={"Authorization": "Bearer k"},
            session=SessionConfig(),
            dialect=Dialect.GA,
        )
        return RealtimeSession(protocol, self.connect, sink=sink)

    def received(self, index: int) -> list[str]:
        return [event["type"] for event in self.servers[index].received]


def _link(peers: Peers, plan: list[Command] | None = None) -> SessionLink:
    return SessionLink(
        peers.session,
        lambda _history: (list(plan or []), 0),
        reconnect=FAST,
        watchdog=WatchdogPolicy(),
        queue_size=100,
        input_format=PCM,
        output_format=PCM,
        name="test",
    )


async def _start(link: SessionLink) -> None:
    session = link.new_session()
    await asyncio.wait_for(session.open(), 10)
    link.start(session)


async def _until(stream: list[Event], kind: type[Event], count: int = 1) -> None:
    for _ in range(1000):
        if sum(isinstance(event, kind) for event in stream) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {kind.__name__} in {[type(e).__name__ for e in stream]}")


async def test_one_stream_from_ready_to_closed_with_the_history_kept() -> None:
    peers = Peers()
    link = _link(peers)
    with pytest.raises(InvalidState):
        await link.send(SendText(text="too early"))
    await _start(link)
    stream: list[Event] = []
    link.deliver_events(lambda event: stream.append(event) if event is not None else None)
    await link.send(SendText(text="Hello!"), CreateResponse())
    await _until(stream, ResponseDone)
    await link.aclose()
    await asyncio.gather(*peers.tasks)
    assert isinstance(stream[0], SessionReady)
    assert isinstance(stream[-1], SessionClosed)
    assert stream[-1].error is None
    assert [entry.role for entry in link.history.entries] == [Role.USER, Role.ASSISTANT]
    assert link.history.entries[1].text == "You said: Hello!"
    with pytest.raises(InvalidState):
        await link.send(SendText(text="after close"))


async def test_a_drop_reconnects_restores_and_delivers_the_queued_commands_in_order() -> None:
    peers = Peers()
    restored = RestoreItem(
        item=ConversationItem(item_id="old", kind=ItemKind.MESSAGE, role=Role.USER, text="Earlier")
    )
    link = _link(peers, [restored])
    await _start(link)
    stream: list[Event] = []
    link.deliver_events(lambda event: stream.append(event) if event is not None else None)
    await link.send(UpdateSession(config=SessionConfig(instructions="Be brief.")))
    peers.gate = asyncio.Event()
    peers.ends[0].abort()  # the service side drops without a close frame
    await _until(stream, Reconnecting)
    assert link.reconnecting
    await link.send(SendText(text="After the drop"), CreateResponse())  # queued meanwhile
    peers.gate.set()
    await _until(stream, ResponseDone)
    assert len(peers.servers) == 2
    await link.aclose()
    first, second_task = await asyncio.gather(*peers.tasks, return_exceptions=True)
    assert first is None or isinstance(first, ConnectionClosed)  # the dropped one
    assert second_task is None
    kinds = [type(event) for event in stream]
    assert kinds.index(Reconnecting) < kinds.index(Reconnected) < kinds.index(ResponseDone)
    reconnected = next(e for e in stream if isinstance(e, Reconnected))
    assert (reconnected.restored_items, reconnected.resent_commands) == (1, 2)
    second = peers.received(1)
    # after the opening configuration: the restored item, the session update made
    # before the drop, then the turn queued while reconnecting
    assert second == [
        "session.update",
        "conversation.item.create",
        "session.update",
        "conversation.item.create",
        "response.create",
    ]
    assert peers.servers[1].session["instructions"] == "Be brief."
    texts = [
        part.get("text")
        for item in peers.servers[1].items
        for part in item.get("content", [])
        if part.get("type") == "input_text"
    ]
    assert texts == ["Earlier", "After the drop"]


async def test_giving_up_ends_the_stream_with_the_typed_failure() -> None:
    peers = Peers()
    link = _link(peers)
    await _start(link)
    stream: list[Event] = []
    link.deliver_events(lambda event: stream.append(event) if event is not None else None)
    peers.refuse = True
    peers.ends[0].abort()
    await _until(stream, SessionClosed)
    await asyncio.gather(*peers.tasks, return_exceptions=True)  # the dropped connection
    closed = stream[-1]
    assert isinstance(closed, SessionClosed)
    assert isinstance(closed.error, ConnectFailed)
    assert "gave up reconnecting after 2" in closed.reason
    assert sum(isinstance(event, Reconnecting) for event in stream) == FAST.max_attempts
    assert not link.active
    with pytest.raises(InvalidState, match="ended"):
        await link.send(SendText(text="too late"))
    await link.aclose()  # idempotent after the end


def test_merge_session_applies_only_the_fields_an_update_sets() -> None:
    base = SessionConfig(instructions="A", voice="marin")
    merged = merge_session(base, SessionConfig(voice="cedar"))
    assert (merged.instructions, merged.voice) == ("A", "cedar")
    update = SessionConfig(instructions="B")
    assert merge_session(None, update) is update
