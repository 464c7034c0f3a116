"""The deterministic mock provider: a full OpenAI-protocol session with no network.

It lives with the fakes it is built on; the provider registry names it ``"mock"`` and
imports this module on first use, so ``import voxengine`` loads no fake server.
:class:`MockProvider` runs the real OpenAI Realtime client protocol against the
bundled sans-I/O fake server (:mod:`voxengine.testing`) through an in-memory
connection, so it exercises the same code path as the real provider while replying
with scripted text and real PCM16 audio. Latency and failures can be injected.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal, final

from voxengine.errors import AuthenticationFailed, ConfigError, ConnectFailed
from voxengine.protocols import RealtimeProtocol
from voxengine.protocols.openai._wire import Dialect
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol
from voxengine.providers.base import Capability, ProviderConfig
from voxengine.providers.openai import OPENAI_CAPABILITIES
from voxengine.providers.realtime import RealtimeProvider
from voxengine.testing._faults import FakeServerError, Fault, FaultInjector
from voxengine.testing.fakes.openai import (
    FakeOpenAIConfig,
    FakeOpenAIServer,
    FakeReply,
    FakeTurn,
    Responder,
    default_responder,
    serve_fake_connection,
)
from voxengine.transport import Connection, Connector
from voxengine.transport.memory import MemoryConnection, memory_pair

__all__ = ["MockConfig", "MockProvider"]

_MOCK_URL = "memory://mock/v1/realtime?model="


@dataclass(frozen=True, slots=True, kw_only=True)
class MockConfig(ProviderConfig):
    """Mock provider settings.

    Attributes:
        replies: scripted assistant replies, used in order for user turns (then
            cycled); empty means the fake server's default replies ("You said: ...").
        responder: full control instead of ``replies``: a function from
            :class:`~voxengine.testing.FakeTurn` to :class:`~voxengine.testing.FakeReply`.
        latency: one-way delay, in seconds, added to every frame.
        fail_connect: ``"auth"`` refuses the key, ``"network"`` fails to connect.
        fail_on_turn: the response to this user turn (1-based) fails with a
            ``server_error`` error event.
        seconds_per_word: length of the reply audio per word.
        paced_seconds: replies stream one audio chunk per this many seconds. ``None``
            (default): as fast as the event loop allows, but still from the fake
            server's own task, so that (as with the live service) a reply is
            interruptible and a second ``response.create`` meets the active response.
        faults: wire faults (drops, stalls, malformed frames, ...) per connection,
            as with :func:`voxengine.testing.run_fake_openai_server`.
    """

    replies: tuple[str, ...] = ()
    responder: Responder | None = field(default=None, repr=False)
    latency: float = 0.0
    fail_connect: Literal["auth", "network"] | None = None
    fail_on_turn: int | None = None
    seconds_per_word: float = 0.25
    paced_seconds: float | None = None
    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        super(MockConfig, self).__post_init__()
        if self.latency < 0:
            raise ConfigError("latency must be >= 0 seconds")
        if self.fail_on_turn is not None and self.fail_on_turn < 1:
            raise ConfigError("fail_on_turn counts user turns from 1")
        if self.replies and self.responder is not None:
            raise ConfigError("give replies or a responder, not both")
        if self.seconds_per_word <= 0:
            raise ConfigError("seconds_per_word must be positive")
        if self.paced_seconds is not None and self.paced_seconds <= 0:
            raise ConfigError("paced_seconds must be positive or None")


def _scripted(config: MockConfig) -> Responder:
    base = config.responder or default_responder
    replies = itertools.cycle(config.replies) if config.replies else None
    turns = itertools.count(1)

    def respond(turn: FakeTurn) -> FakeReply:
        if turn.kind != "tool_output":
            number = next(turns)
            if number == config.fail_on_turn:
                raise FakeServerError("server_error", f"injected failure on turn {number}")
            if replies is not None:
                return FakeReply(text=next(replies))
        return base(turn)

    return respond


@final
class MockProvider(RealtimeProvider):
    """Deterministic offline provider for tests, demos and CI."""

    name: ClassVar[str] = "mock"
    config_type: ClassVar[type[ProviderConfig]] = MockConfig
    capabilities: ClassVar[frozenset[Capability]] = OPENAI_CAPABILITIES
    #: Any name: the mock has no real voices (the seed's examples use e.g. ``"nova"``).
    voices: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, config: ProviderConfig | None = None) -> None:
        config = MockConfig.of(config) if config is not None else MockConfig()
        self._mock = config
        super().__init__(config)
        self._tasks: set[asyncio.Task[None]] = set()
        self._responder = _scripted(config)
        #: The fake server of the current connection, and of every connection so far.
        self.server: FakeOpenAIServer | None = None
        self.servers: list[FakeOpenAIServer] = []

    def make_protocol(self) -> RealtimeProtocol:
        """The OpenAI GA protocol, addressed to the in-memory fake."""
        key = self._mock.api_key or "mock-key"
        return OpenAIRealtimeProtocol(
            url=_MOCK_URL + (self._mock.model or "gpt-realtime"),
            headers={"Authorization": f"Bearer {key}"},
            session=self._mock.session,
            dialect=Dialect.GA,
        )

    def connector(self) -> Connector:
        """Opens an in-memory connection served by a fresh fake server."""
        return self._open

    async def _open(self, url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        if self._mock.fail_connect == "network":
            raise ConnectFailed("mock: injected network failure")
        if self._mock.fail_connect == "auth":
            raise AuthenticationFailed("mock: injected authentication failure (HTTP 401)")
        client, server_end = memory_pair(self._mock.latency)
        server = FakeOpenAIServer(
            FakeOpenAIConfig(
                responder=self._responder,
                seconds_per_word=self._mock.seconds_per_word,
                voices=None,  # the mock speaks any voice name (MockProvider.voices)
            ),
            connection=len(self.servers),
        )
        server.receive_connect(url.removeprefix("memory://mock"), _lower(headers))
        self.server = server
        self.servers.append(server)
        faults = FaultInjector(self._mock.faults, len(self.servers) - 1)
        pace = self._mock.paced_seconds or 0.0
        task = asyncio.create_task(
            _serve(server, server_end, faults, pace), name="voxengine-mock-server"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return client

    async def disconnect(self) -> None:
        """Close the session and stop the fake server."""
        await super().disconnect()
        for task in list(self._tasks):
            await task


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


async def _serve(
    server: FakeOpenAIServer, conn: MemoryConnection, faults: FaultInjector, pace: float
) -> None:
    from voxengine.errors import ConnectionClosed

    async def recv() -> str | bytes | None:
        try:
            return await conn.recv()
        except ConnectionClosed:
            return None

    async def close(code: int, reason: str) -> None:
        await conn.close(code, reason)

    await serve_fake_connection(
        server, recv, conn.send, close, pace, faults=faults, abort=conn.abort
    )
