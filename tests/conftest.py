"""Shared fixtures: fake servers on 127.0.0.1 and client-event validation."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openai.types.realtime import RealtimeClientEvent
from pydantic import TypeAdapter

from voxengine.events import Event
from voxengine.testing import (
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    Fault,
    FaultAction,
    run_fake_openai_server,
)

_CLIENT_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeClientEvent)


def assert_valid_client_events(events: list[dict[str, Any]]) -> None:
    """Every client event the fake received validates against the openai package's models."""
    assert events, "the fake server received nothing"
    for event in events:
        _CLIENT_EVENT.validate_python(event)


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAIServerHandle]:
    async with run_fake_openai_server() as handle:
        yield handle


@pytest.fixture
async def dropping() -> AsyncIterator[FakeOpenAIServerHandle]:
    """Drops the first connection at its third audio delta; later ones behave."""
    fault = Fault(action=FaultAction.DROP, after="response.output_audio.delta", nth=3)
    async with run_fake_openai_server(
        FakeOpenAIConfig(paced=True), pace_seconds=0.01, faults=(fault,)
    ) as handle:
        yield handle


@pytest.fixture
async def paced_openai() -> AsyncIterator[FakeOpenAIServerHandle]:
    """A fake that streams responses in real time (20 ms per 100 ms audio chunk)."""
    async with run_fake_openai_server(FakeOpenAIConfig(paced=True), pace_seconds=0.02) as handle:
        yield handle


@pytest.fixture(autouse=True)
def _fail_on_unhandled_asyncio_errors(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Suite-wide: an error asyncio reports without raising it fails the test.

    "Task exception was never retrieved", "Future exception was never retrieved" and
    exceptions in loop callbacks reach the loop's default exception handler (only a
    log line otherwise). Tasks are collected at teardown, after the test's loop
    closed, so a task that died unobserved is reported in the test that made it.
    Tests that expect such errors install their own handler (``no_task_errors``).
    """
    errors: list[dict[str, Any]] = []
    original = asyncio.BaseEventLoop.default_exception_handler

    def record(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        errors.append(context)
        original(loop, context)  # type: ignore[arg-type]

    monkeypatch.setattr(asyncio.BaseEventLoop, "default_exception_handler", record)
    yield
    # Collect what the test left (a dead task in a reference cycle is only reported
    # when collected), then freeze the survivors: the next collection only scans
    # objects made by the next test (a full collection of the suite's heap would
    # cost ~0.5 s per test on a loaded machine).
    gc.collect()
    gc.freeze()
    if errors:
        messages = "; ".join(f"{c.get('message')}: {c.get('exception')!r}" for c in errors)
        pytest.fail(f"unhandled asyncio error(s): {messages}", pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Give the objects frozen after each test back to the collector, and collect.

    ``gc.freeze()`` (above) moves every survivor to a permanent generation that no
    collection scans, not even the last one at interpreter exit. A survivor that later
    becomes part of an unreachable cycle (what a session fixture, a module-level list
    or a failed test's traceback kept alive past a test's end) would then never be
    freed (tens of thousands of objects at the end of a full run), and an extension
    object among them would outlive its module (nanobind reports such objects at exit
    as leaked). Unfreezing here lets that garbage be collected while every module is
    still alive.
    """
    gc.unfreeze()
    gc.collect()


@pytest.fixture
async def no_task_errors() -> AsyncIterator[list[dict[str, Any]]]:
    """Fails the test if any asyncio task dies with an unhandled exception."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    yield errors
    loop.set_exception_handler(previous)
    assert errors == []


async def collect_until(
    stream: AsyncIterator[Event], *stops: type[Event], count: int = 1, timeout: float = 10
) -> list[Event]:
    """Events of ``stream`` until ``count`` of each ``stops`` class (any order) have
    arrived, or the stream ends."""
    seen: list[Event] = []
    missing = dict.fromkeys(stops, count)

    async def run() -> None:
        async for event in stream:
            seen.append(event)
            for stop, left in missing.items():
                if left and isinstance(event, stop):
                    missing[stop] = left - 1
            if not any(missing.values()):
                return

    await asyncio.wait_for(run(), timeout)
    return seen
