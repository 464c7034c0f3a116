"""Hostile OpenAI Realtime servers against the public API (providers and VoiceEngine).

Each server is a raw ``websockets`` handler written from openai-realtime.md (see
``_peer.py``); each test asserts what the application sees — typed events, bounded
attempts, nothing the user sent lost or duplicated — and, through the suite-wide
fixture in tests/conftest.py, that no background task died unobserved.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Mapping
from typing import Any

from voxengine import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionClosed,
    Event,
    ItemDone,
    RateLimitsUpdated,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ResponseStatus,
    SessionClosed,
    SessionReady,
    StallDetected,
    UndeliveredInput,
)
from voxengine.audio.format import PCM16_24K
from voxengine.config import ReconnectPolicy, WatchdogPolicy
from voxengine.providers import OpenAIConfig, OpenAIProvider
from voxengine.transport import Connector

from ._peer import HostileServer, Peer

KEY = "sk-hostile-secret-123"
FAST = ReconnectPolicy(initial_delay=0.02, max_delay=0.2, max_attempts=3)
LONG = 60.0  # generous: the machine is shared


def provider(server: HostileServer, **kwargs: Any) -> OpenAIProvider:
    kwargs.setdefault("reconnect", FAST)
    return OpenAIProvider(OpenAIConfig(api_key=KEY, base_url=server.url, **kwargs))


async def events_until(
    stream: AsyncIterator[Event], stop: type[Event], *, count: int = 1, timeout: float = LONG
) -> list[Event]:
    """Events until the ``count``-th ``stop`` (or the end of the stream)."""
    seen: list[Event] = []

    async def run() -> None:
        left = count
        async for event in stream:
            seen.append(event)
            if isinstance(event, stop):
                left -= 1
                if not left:
                    return

    await asyncio.wait_for(run(), timeout)
    return seen


async def rest_of(stream: AsyncIterator[Event], timeout: float = LONG) -> list[Event]:
    """Every remaining event; fails unless the stream ends by itself."""
    return await asyncio.wait_for(_drain(stream), timeout)


async def _drain(stream: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in stream]


# -- reconnects are bounded --------------------------------------------------------


async def test_drop_after_session_updated_every_time_is_bounded_and_reported() -> None:
    async def accept_then_drop(peer: Peer) -> None:
        await peer.handshake()
        peer.drop()

    async with HostileServer(accept_then_drop) as server:
        p = provider(server)
        await p.connect()
        events = await rest_of(p.events())  # the stream ends by itself
        await p.disconnect()

    # The first connection plus max_attempts recoveries, never more.
    assert len(server.peers) == FAST.max_attempts + 1
    reconnecting = [e for e in events if isinstance(e, Reconnecting)]
    assert [e.attempt for e in reconnecting] == [1, 2, 3]
    delays = [e.delay for e in reconnecting]
    assert delays == sorted(delays)
    assert delays[-1] > delays[0]  # the backoff grows across consecutive recoveries
    closed = events[-1]
    assert isinstance(closed, SessionClosed)
    assert "gave up reconnecting after 3" in closed.reason
    assert isinstance(closed.error, ConnectionClosed)


async def test_a_healthy_session_resets_the_budget() -> None:
    """Each connection completes a response before dropping: never given up."""
    drops = 6  # more than max_attempts

    async def answer_then_drop(peer: Peer) -> None:
        await peer.handshake()
        if peer.index >= drops:
            await peer.serve()
        message = await peer.recv_type("response.create")
        await peer.answer(message)
        peer.drop()

    async with HostileServer(answer_then_drop) as server:
        p = provider(server)
        await p.connect()
        stream = p.events()
        await p.create_response()
        for _ in range(drops):
            await events_until(stream, Reconnected)
            await p.create_response()  # the next connection answers, then drops
        events = await events_until(stream, ResponseDone)
        await p.disconnect()
        await rest_of(stream)
    assert len(server.peers) == drops + 1
    assert not any(isinstance(e, SessionClosed) for e in events)


# -- nothing lost, nothing duplicated --------------------------------------------


async def test_drop_mid_response_restores_and_answers_once() -> None:
    async def drop_mid_response(peer: Peer) -> None:
        await peer.handshake()
        if peer.index > 0:
            await peer.serve()
        while (message := await peer.recv())["type"] != "response.create":
            await peer.answer(message)
        await peer.send({"type": "response.created", "response": {"id": "resp_x"}})
        await peer.send(
            {"type": "response.output_text.delta", "response_id": "resp_x", "delta": "par"}
        )
        peer.drop()

    async with HostileServer(drop_mid_response) as server:
        p = provider(server)
        await p.connect()
        stream = p.events()
        await p.send_text("hello there")
        events = await events_until(stream, ResponseDone)
        await p.disconnect()
    assert any(isinstance(e, Reconnected) for e in events)
    done = events[-1]
    assert isinstance(done, ResponseDone)
    assert done.status is ResponseStatus.COMPLETED
    final = server.peers[-1]
    assert final.user_texts() == ["hello there"]
    assert [m["type"] for m in final.received].count("response.create") == 1


async def test_unconfirmed_texts_are_resent_exactly_once() -> None:
    """The server acknowledges t1, loses t2 without acknowledging it; t3 is sent during
    the drop. The final conversation holds each text exactly once, in order."""

    async def lose_second(peer: Peer) -> None:
        await peer.handshake()
        if peer.index > 0:
            await peer.serve()
        while True:
            message = await peer.recv()
            if message["type"] == "conversation.item.create" and peer.items:
                peer.drop()  # the second item: never acknowledged
                return
            await peer.answer(message)

    async with HostileServer(lose_second) as server:
        p = provider(server)
        await p.connect()
        stream = p.events()
        await p.send_text("t1", respond=False)
        await events_until(stream, ItemDone)  # t1 acknowledged
        await p.send_text("t2", respond=False)
        await p.send_text("t3", respond=False)
        await events_until(stream, Reconnected)
        await p.send_text("t4")
        await events_until(stream, ResponseDone)
        await p.disconnect()
    final = server.peers[-1]
    assert final.user_texts() == ["t1", "t2", "t3", "t4"]
    for peer in server.peers:  # no connection ever got a text twice
        texts = peer.received_texts()
        assert len(texts) == len(set(texts)), texts


async def test_drop_during_restore_is_retried_and_loses_nothing() -> None:
    async def script(peer: Peer) -> None:
        await peer.handshake()
        if peer.index == 0:  # answers "first", loses "second" unacknowledged
            while True:
                message = await peer.recv()
                if message["type"] == "conversation.item.create" and peer.user_texts():
                    peer.drop()
                    return
                await peer.answer(message)
        if peer.index == 1:  # drops at the first item the client restores
            await peer.recv_type("conversation.item.create")
            peer.drop()
            return
        await peer.serve()

    async with HostileServer(script) as server:
        p = provider(server)
        await p.connect()
        stream = p.events()
        await p.send_text("first")
        await events_until(stream, ResponseDone)
        await p.send_text("second")
        events = await events_until(stream, ResponseDone)
        await p.disconnect()
    assert len(server.peers) == 3
    # Lost while restoring (or right after, before it was healthy): one more attempt,
    # counted as a consecutive failure; the third connection carries on.
    reconnected = [e for e in events if isinstance(e, Reconnected)]
    assert reconnected[-1].attempt == 2
    assert not any(isinstance(e, SessionClosed) for e in events)
    assert server.peers[-1].user_texts() == ["first", "second"]


async def test_giving_up_reports_what_was_never_delivered() -> None:
    async def never_acknowledge(peer: Peer) -> None:
        await peer.handshake()
        if peer.index > 0:
            peer.drop()
            return
        await peer.recv_type("conversation.item.create")
        peer.drop()

    async with HostileServer(never_acknowledge) as server:
        p = provider(server)
        await p.connect()
        await p.send_audio(b"\x00\x00" * (PCM16_24K.sample_rate // 2))  # 0.5 s, uncommitted
        await p.send_text("please keep me", respond=False)
        events = await rest_of(p.events())
        await p.disconnect()
    lost = [e for e in events if isinstance(e, UndeliveredInput)]
    assert len(lost) == 1
    assert lost[0].texts == ("please keep me",)
    assert abs(lost[0].audio_seconds - 0.5) < 1e-6
    assert isinstance(events[-1], SessionClosed)
    assert events.index(lost[0]) == len(events) - 2  # reported right before the close


# -- the watchdog watches progress ---------------------------------------------------


async def test_keepalives_alone_are_a_stall() -> None:
    async def keepalive_only(peer: Peer) -> None:
        await peer.handshake()
        await peer.recv_type("response.create")
        await peer.send({"type": "response.created", "response": {"id": "resp_k"}})
        while True:  # traffic, but no progress
            await peer.send(
                {
                    "type": "rate_limits.updated",
                    "rate_limits": [{"name": "tokens", "limit": 1, "remaining": 1}],
                }
            )
            await asyncio.sleep(0.1)

    async with HostileServer(keepalive_only) as server:
        p = provider(
            server, watchdog=WatchdogPolicy(response_stall=1.0, reconnect=False, check_interval=0.1)
        )
        await p.connect()
        await p.create_response()
        events = await events_until(p.events(), StallDetected)
        await p.disconnect()
    assert sum(isinstance(e, RateLimitsUpdated) for e in events) >= 3
    stall = events[-1]
    assert isinstance(stall, StallDetected)
    assert stall.response_id == "resp_k"
    assert stall.silent_for >= 1.0


# -- fatal errors ---------------------------------------------------------------------


async def test_invalid_key_mid_session_without_close_ends_the_session_typed() -> None:
    async def revoke_key(peer: Peer) -> None:
        await peer.handshake()
        if peer.index > 0:
            await peer.serve()
        await peer.recv_type("response.create")
        await peer.send(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                    "message": "Incorrect API key provided.",
                },
            }
        )
        await peer.ws.wait_closed()  # never closes itself: the client must

    async with HostileServer(revoke_key) as server:
        p = provider(server)
        await p.connect()
        await p.create_response()
        events = await rest_of(p.events())
        closed = events[-1]
        assert isinstance(closed, SessionClosed)
        assert isinstance(closed.error, AuthenticationFailed)
        assert KEY not in closed.reason
        assert len(server.peers) == 1  # refused credentials are never retried
        await asyncio.wait_for(server.peers[0].closed.wait(), LONG)  # no half-open socket
        assert not p.is_connected
        await p.connect()  # nothing blocks a later connect
        assert (await events_until(p.events(), SessionReady))[-1]
        await p.disconnect()


async def test_session_expired_without_close_reconnects() -> None:
    async def expire(peer: Peer) -> None:
        await peer.handshake()
        if peer.index > 0:
            await peer.serve()
        await peer.recv_type("response.create")
        await peer.send(
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "session_expired",
                    "message": "Your session hit the maximum duration of 60 minutes.",
                },
            }
        )
        await peer.ws.wait_closed()

    async with HostileServer(expire) as server:
        p = provider(server)
        await p.connect()
        stream = p.events()
        await p.create_response()
        events = await events_until(stream, ResponseDone)
        await p.disconnect()
    assert any(isinstance(e, Reconnected) for e in events)
    assert len(server.peers) == 2
    await asyncio.wait_for(server.peers[0].closed.wait(), LONG)


# -- a server that says when to come back ------------------------------------------


class _Throttled(ConnectFailed):
    """A refused upgrade that carries ``Retry-After`` (what ``RateLimited`` carries)."""

    retry_after = 0.5


async def test_reconnect_backoff_honours_retry_after() -> None:
    async def drop_first(peer: Peer) -> None:
        await peer.handshake()
        if peer.index == 0:
            peer.drop()
            return
        await peer.serve()

    async with HostileServer(drop_first) as server:
        p = provider(server)
        attempts = 0

        def throttle_once(connect: Connector) -> Connector:
            async def connector(url: str, headers: Mapping[str, str], *, timeout: float) -> Any:
                nonlocal attempts
                attempts += 1
                if attempts == 2:  # the first reconnect is refused, Retry-After: 0.5
                    raise _Throttled("HTTP 429: slow down")
                return await connect(url, headers, timeout=timeout)

            return connector

        p.connector_wrappers.append(throttle_once)
        await p.connect()
        events = await events_until(p.events(), Reconnected)
        await p.disconnect()
    delays = [e.delay for e in events if isinstance(e, Reconnecting)]
    assert len(delays) == 2
    assert delays[0] == FAST.initial_delay
    assert delays[1] >= _Throttled.retry_after  # beyond max_delay: the server said when


async def test_audio_of_the_turn_in_progress_is_resent_after_the_drop() -> None:
    """§5: the new connection's input buffer is empty; the uncommitted turn is re-sent,
    and audio sent during the drop follows it, in order and complete."""
    chunk = b"\x01\x00" * (PCM16_24K.sample_rate // 10)  # 100 ms
    reconnect_now = asyncio.Event()

    async def drop_mid_turn(peer: Peer) -> None:
        await peer.handshake()
        if peer.index > 0:
            await peer.serve()
        for _ in range(3):
            await peer.recv_type("input_audio_buffer.append")
        peer.drop()
        reconnect_now.set()

    async with HostileServer(drop_mid_turn) as server:
        p = provider(server)
        await p.connect()
        stream = p.events()
        for _ in range(3):
            await p.send_audio(chunk)
        await reconnect_now.wait()
        await events_until(stream, Reconnecting)
        await p.send_audio(chunk)  # during the drop (or just after): never lost
        await p.commit_audio()
        await p.create_response()
        await events_until(stream, ResponseDone)
        await p.disconnect()
    final = server.peers[-1]
    appended = [
        base64.b64decode(m["audio"])
        for m in final.received
        if m["type"] == "input_audio_buffer.append"
    ]
    assert b"".join(appended) == chunk * 4
    kinds = [m["type"] for m in final.received if m["type"].startswith("input_audio_buffer")]
    assert kinds[-1] == "input_audio_buffer.commit"
