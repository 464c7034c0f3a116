"""RealtimeSession (the driver) alone: the OpenAI protocol over an in-memory connection
to the fake OpenAI server as the peer; events reach the sink, in order, with the session.
Misuse, a handshake that never completes or is refused, and a failing connector give
typed errors that never show the key."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from voxengine.commands import CreateResponse, SendText
from voxengine.config import SessionConfig
from voxengine.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionClosed,
    ConnectTimeout,
    HandshakeClosed,
    InvalidState,
)
from voxengine.events import Event, ResponseDone, SessionClosed, SessionReady
from voxengine.protocols.openai._wire import Dialect
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol
from voxengine.session import RealtimeSession, is_retryable
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


KEY = "sk-live-0123456789abcdef0123"


def _session(connect: object, *, open_timeout: float = 10.0) -> RealtimeSession:
    return RealtimeSession(
        OpenAIRealtimeProtocol(
            url="memory://x/v1/realtime?model=gpt-realtime",
            headers={"Authorization": f"Bearer {KEY}"},
            session=SessionConfig(),
            dialect=Dialect.GA,
        ),
        connect,  # type: ignore[arg-type]
        open_timeout=open_timeout,
        sink=lambda s, e: None,
    )


async def test_commands_need_an_open_session_and_open_works_once() -> None:
    server, tasks, connect = _peer()
    session = _session(connect)
    with pytest.raises(InvalidState, match="not open"):
        await session.send(SendText(text="too early"))
    await asyncio.wait_for(session.open(), 10)
    with pytest.raises(InvalidState, match="already opened"):
        await session.open()
    await session.aclose()
    await asyncio.wait_for(session.wait_closed(), 10)
    await asyncio.gather(*tasks)
    with pytest.raises(InvalidState, match="closed"):
        await session.send(SendText(text="too late"))
    assert session.failure() is None  # closed as asked, not failed
    assert [m["type"] for m in server.received].count("conversation.item.create") == 0


async def test_a_peer_that_never_completes_the_handshake_times_out() -> None:
    peers = []

    async def connect(url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        client, end = memory_pair()
        peers.append(end)  # reads nothing, answers nothing
        return client

    session = _session(connect, open_timeout=0.2)
    with pytest.raises(ConnectTimeout, match="no session handshake"):
        await asyncio.wait_for(session.open(), 10)
    assert not session.is_open


async def test_a_close_before_the_session_is_ready_is_a_retryable_handshake_failure() -> None:
    async def connect(url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        client, end = memory_pair()
        await end.close(1011, "overloaded")
        return client

    session = _session(connect)
    with pytest.raises(HandshakeClosed) as caught:
        await asyncio.wait_for(session.open(), 10)
    assert is_retryable(caught.value)


@pytest.mark.parametrize("error", [ConnectFailed, AuthenticationFailed])
async def test_a_failing_connector_keeps_its_type_and_never_shows_the_key(
    error: type[ConnectFailed],
) -> None:
    async def connect(url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        raise error(f"refused: {headers['Authorization']}")

    session = _session(connect)
    with pytest.raises(error) as caught:
        await session.open()
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)


async def test_frames_a_cancelled_send_left_go_out_without_waiting_for_traffic() -> None:
    """A send cancelled while its first frame is being written leaves the rest queued:
    they go out at once, not only when the next frame comes in (a fast-mode session
    whose audio is tapped may see no other frame for a long time)."""
    server, tasks, connect = _peer()
    gate = asyncio.Event()
    writing = asyncio.Event()

    async def gated(url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        conn = await connect(url, headers, timeout=timeout)  # type: ignore[operator]
        plain_send = conn.send
        first = True

        async def send(data: str | bytes) -> None:
            nonlocal first
            if first and "first words" in str(data):
                first = False
                writing.set()
                await gate.wait()  # held until cancelled
            await plain_send(data)

        conn.send = send
        return conn  # type: ignore[no-any-return]

    session = _session(gated)
    await asyncio.wait_for(session.open(), 10)
    sending = asyncio.create_task(
        session.send(SendText(text="first words"), SendText(text="second words"))
    )
    await asyncio.wait_for(writing.wait(), 10)
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending

    def texts() -> list[str]:
        return [str(m) for m in server.received if m["type"] == "conversation.item.create"]

    for _ in range(200):
        if any("second words" in text for text in texts()):
            break
        await asyncio.sleep(0.01)
    assert any("second words" in text for text in texts())
    await session.aclose()
    await asyncio.gather(*tasks)
