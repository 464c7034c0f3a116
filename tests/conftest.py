"""Shared fixtures: fake servers on 127.0.0.1 and client-event validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai.types.realtime import RealtimeClientEvent
from pydantic import TypeAdapter

from voxengine.testing import FakeOpenAIConfig, FakeOpenAIServerHandle, run_fake_openai_server

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
async def paced_openai() -> AsyncIterator[FakeOpenAIServerHandle]:
    """A fake that streams responses in real time (20 ms per 100 ms audio chunk)."""
    async with run_fake_openai_server(FakeOpenAIConfig(paced=True), pace_seconds=0.02) as handle:
        yield handle
