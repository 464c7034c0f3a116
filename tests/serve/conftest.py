"""Fixtures of the serving tests: a real uvicorn on 127.0.0.1 (ephemeral port) serving
the app on this test's event loop, with the mock provider by default."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from voxengine import VoiceEngine
from voxengine.serve import CallContext, Limits, ServeConfig, build_app, default_session_factory
from voxengine.serve.client import fetch_token
from voxengine.serve.server import RunningServer, serving
from voxengine.serve.switchboard import Switchboard
from voxengine.testing import FakeOpenAIConfig, FakeOpenAIServerHandle, run_fake_openai_server

from ..session.test_resume import remembering
from .redis_server import RedisServer

if TYPE_CHECKING:
    from benchmarks.cluster import Cluster

SECRET = "test-deployment-secret-0123456789"


@dataclass
class Served:
    """A running server and what the tests inspect."""

    running: RunningServer
    board: Switchboard
    engines: list[VoiceEngine] = field(default_factory=list)
    contexts: list[CallContext] = field(default_factory=list)

    @property
    def http(self) -> str:
        return self.running.http_url

    @property
    def ws(self) -> str:
        return self.running.ws_url

    async def token(self, **kwargs: Any) -> str:
        return await fetch_token(self.http, **kwargs)


@contextlib.asynccontextmanager
async def serve(
    *,
    engine: dict[str, Any] | None = None,
    make_engine: Callable[[CallContext], VoiceEngine] | None = None,
    **settings: Any,
) -> AsyncIterator[Served]:
    """The app on a free port; every call's engine (and context) is recorded."""
    settings.setdefault("provider", "mock")
    settings.setdefault("secret", SECRET)
    config = ServeConfig(engine=engine or {}, **settings)
    engines: list[VoiceEngine] = []
    contexts: list[CallContext] = []

    def factory(context: CallContext) -> VoiceEngine:
        built = (make_engine or default_session_factory)(context)
        engines.append(built)
        contexts.append(context)
        return built

    app = build_app(config, factory)
    async with serving(app) as running:
        yield Served(running, app.state.switchboard, engines, contexts)


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    """The default server: mock provider, default limits."""
    async with serve() as s:
        yield s


def small_limits(**changes: Any) -> Limits:
    """Limits with short timeouts for tests."""
    values: dict[str, Any] = {"hello_timeout": 2.0}
    values.update(changes)
    return Limits(**values)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server on a free loopback port (skips without Debian's binary)."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIServerHandle]:
    """The fake OpenAI Realtime service answering with ``remembering`` (it knows the
    caller's name from earlier turns: what a resumed call must keep). A test module
    may override it with a fake of its own."""
    async with run_fake_openai_server(FakeOpenAIConfig(responder=remembering)) as handle:
        yield handle


@contextlib.contextmanager
def running_cluster(**settings: Any) -> Iterator[Cluster]:
    """A started :class:`benchmarks.cluster.Cluster` (redis-server, ``voxengine serve``
    workers, HAProxy; ``settings`` go to it). Skips when a Debian binary is missing;
    prints the processes' logs when the test fails; on the way out, a worker the test
    stopped (SIGSTOP) is let go, then everything is stopped."""
    from benchmarks.cluster import Cluster, MissingBinary

    try:
        cluster = Cluster(**settings)
        cluster.start()
    except MissingBinary as exc:
        pytest.skip(str(exc))
    try:
        yield cluster
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        for worker in cluster.nodes:
            if worker.alive and worker.process is not None:
                worker.process.send_signal(signal.SIGCONT)
        cluster.stop()
