"""Every fault against every provider: recovery within the bound, the typed events the
application should see, no unhandled task exception, and no leaked key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from voxengine import (
    Event,
    ProviderErrorEvent,
    Reconnected,
    Reconnecting,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    SessionClosed,
    StallDetected,
    UnknownEvent,
)
from voxengine.config import ReconnectPolicy, WatchdogPolicy
from voxengine.providers import (
    AzureOpenAIConfig,
    AzureOpenAIProvider,
    GeminiConfig,
    GeminiProvider,
    MockConfig,
    MockProvider,
    OpenAIConfig,
    OpenAIProvider,
)
from voxengine.providers.realtime import RealtimeProvider
from voxengine.testing import (
    FakeGeminiConfig,
    FakeOpenAIConfig,
    Fault,
    FaultAction,
    run_fake_gemini_server,
    run_fake_openai_server,
)

from .conftest import collect_until

KEY = "sk-matrix-secret-4242"
POLICY = {
    "reconnect": ReconnectPolicy(initial_delay=0.05, max_delay=0.2, max_attempts=4),
    "watchdog": WatchdogPolicy(response_stall=0.3, check_interval=0.05),
}
PACE = 0.01


@dataclass
class Target:
    provider: RealtimeProvider
    connections: Callable[[], int]


#: Where faults trigger, per wire: a reply's audio, the start of a reply, the handshake.
TRIGGERS = {
    "openai": {
        "audio": "response.output_audio.delta",
        "reply": "response.created",
        "setup": "session.created",
    },
    "gemini": {"audio": "serverContent", "reply": "serverContent", "setup": "setupComplete"},
}


def trigger(kind: str, point: str) -> str:
    return TRIGGERS["gemini" if kind == "gemini" else "openai"][point]


@contextlib.asynccontextmanager
async def open_target(kind: str, faults: tuple[Fault, ...]) -> AsyncIterator[Target]:
    if kind == "gemini":
        async with run_fake_gemini_server(
            FakeGeminiConfig(paced=True), pace_seconds=PACE, faults=faults
        ) as server:
            gemini = GeminiProvider(GeminiConfig(api_key=KEY, base_url=server.url, **POLICY))
            yield Target(gemini, lambda: len(server.connections))
        return
    if kind == "mock":
        provider = MockProvider(
            MockConfig(api_key=KEY, faults=faults, paced_seconds=PACE, **POLICY)
        )
        yield Target(provider, lambda: len(provider.servers))
        return
    async with run_fake_openai_server(
        FakeOpenAIConfig(paced=True), pace_seconds=PACE, faults=faults
    ) as handle:
        if kind == "openai":
            provider_: RealtimeProvider = OpenAIProvider(
                OpenAIConfig(api_key=KEY, base_url=handle.url, **POLICY)
            )
        else:
            provider_ = AzureOpenAIProvider(
                AzureOpenAIConfig(
                    api_key=KEY,
                    base_url=handle.url.removesuffix("/v1"),
                    model="gpt-realtime",
                    **POLICY,
                )
            )
        yield Target(provider_, lambda: len(handle.connections))


KINDS = ["openai", "azure", "gemini", "mock"]


@pytest.fixture(autouse=True)
def guards(
    caplog: pytest.LogCaptureFixture, no_task_errors: list[dict[str, Any]]
) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    assert KEY not in caplog.text


async def run_turn(target: Target, *stops: type[Event], timeout: float = 10) -> list[Event]:
    provider = target.provider
    await provider.connect()
    try:
        await provider.send_text("Tell me about the weather at sea today")
        return await collect_until(provider.events(), *stops, timeout=timeout)
    finally:
        await provider.disconnect()


def completed(events: list[Event]) -> bool:
    return any(isinstance(e, ResponseDone) and e.status is ResponseStatus.COMPLETED for e in events)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_drop_mid_response(kind: str) -> None:
    fault = Fault(action=FaultAction.DROP, after=trigger(kind, "audio"), nth=2)
    async with open_target(kind, (fault,)) as target:
        events = await run_turn(target, Reconnected, ResponseDone)
    assert completed(events)
    assert target.connections() == 2
    if kind == "gemini":  # voxengine makes Gemini's ids; they must not repeat across connections
        started = [e.response_id for e in events if isinstance(e, ResponseStarted)]
        assert len(started) == 2
        assert len(set(started)) == 2


async def test_stall(kind: str) -> None:
    fault = Fault(action=FaultAction.STALL, after=trigger(kind, "audio"), nth=2)
    async with open_target(kind, (fault,)) as target:
        loop = asyncio.get_running_loop()
        start = loop.time()
        events = await run_turn(target, StallDetected, Reconnected, ResponseDone)
        elapsed = loop.time() - start
    assert completed(events)
    assert elapsed < 5.0  # detection bound 0.3 s + reconnect + a full answer


async def test_malformed_and_unknown_frames(kind: str) -> None:
    faults = (
        Fault(action=FaultAction.MALFORMED, after=trigger(kind, "reply")),
        Fault(action=FaultAction.UNKNOWN_EVENT, after=trigger(kind, "audio"), nth=2),
    )
    async with open_target(kind, faults) as target:
        events = await run_turn(target, ResponseDone)
    assert completed(events)
    assert any(isinstance(e, ProviderErrorEvent) and e.code == "malformed_frame" for e in events)
    assert any(isinstance(e, UnknownEvent) for e in events)
    assert target.connections() == 1


@pytest.mark.parametrize("code", ["rate_limit_exceeded", "server_error", "invalid_request"])
async def test_error_events(kind: str, code: str) -> None:
    if kind == "gemini":
        pytest.skip("Gemini Live has no in-band error events: errors close the connection")
    fault = Fault(action=FaultAction.ERROR, after="response.created", error_code=code)
    async with open_target(kind, (fault,)) as target:
        events = await run_turn(target, ResponseDone)
    assert [e.code for e in events if isinstance(e, ProviderErrorEvent)] == [code]
    assert completed(events)


async def test_session_cap(kind: str) -> None:
    fault = Fault(action=FaultAction.SESSION_CAP, after=trigger(kind, "audio"))
    async with open_target(kind, (fault,)) as target:
        events = await run_turn(target, Reconnected, ResponseDone)
    assert completed(events)


async def test_refused_reconnect_gives_up_at_once(kind: str) -> None:
    faults = (
        Fault(action=FaultAction.DROP, after=trigger(kind, "audio")),
        Fault(action=FaultAction.REFUSE_AUTH, after=trigger(kind, "setup"), connection=1),
    )
    async with open_target(kind, faults) as target:
        events = await run_turn(target, SessionClosed)
    assert sum(isinstance(e, Reconnecting) for e in events) == 1
    assert target.connections() == 2


def test_matrix_covers_every_fault() -> None:
    covered = {
        FaultAction.DROP,
        FaultAction.STALL,
        FaultAction.MALFORMED,
        FaultAction.UNKNOWN_EVENT,
        FaultAction.ERROR,
        FaultAction.SESSION_CAP,
        FaultAction.REFUSE_AUTH,
        FaultAction.SLOW_READ,  # tests/test_reliability.py::test_slow_reading_server_loses_no_audio
    }
    assert covered == set(FaultAction)
