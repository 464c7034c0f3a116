"""CallStateKeeper with a real engine (fake OpenAI over loopback) and a real Redis:
the record follows the conversation; Redis dying mid-call costs durability, never the
call; REQUIRED durability refuses a call cleanly; a resumed call fences its old copy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest

from voxengine import ResponseDone, ResponseStatus, VoiceEngine, VoiceEngineConfig
from voxengine.serve.state import (
    CallStateKeeper,
    Durability,
    MemoryStore,
    StateStore,
    StateUnavailable,
    open_store,
)
from voxengine.serve.state.keeper import WATCHED_EVENTS
from voxengine.testing import FakeOpenAIConfig, FakeOpenAIServerHandle, run_fake_openai_server

from ..redis_server import RedisServer, free_port

KEY = "sk-keeper-secret-0123456789"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIServerHandle]:
    async with run_fake_openai_server(FakeOpenAIConfig(paced=False)) as handle:
        yield handle


@pytest.fixture
async def engine(fake: FakeOpenAIServerHandle) -> AsyncIterator[VoiceEngine]:
    engine = VoiceEngine(VoiceEngineConfig(api_key=KEY, base_url=fake.url, mode="big"))
    async with engine:
        yield engine


async def turn(engine: VoiceEngine, text: str) -> None:
    done = engine.events.wait_for(
        ResponseDone, timeout=15, filter=lambda e: e.status is ResponseStatus.COMPLETED
    )
    await engine.send_text(text)
    await done


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # noqa: ASYNC110 - polls state that has no event of its own
            await asyncio.sleep(0.02)


def keep(engine: VoiceEngine, store: StateStore, **kwargs: object) -> CallStateKeeper:
    keeper = CallStateKeeper(
        store,
        "call-1",
        engine.snapshot,
        settings={"provider": "openai"},
        **kwargs,  # type: ignore[arg-type]
    )
    engine.events.on(WATCHED_EVENTS, keeper.observe)
    return keeper


async def saved_texts(store: StateStore) -> list[str]:
    record = await store.load("call-1")
    return [e.text for e in record.snapshot.history] if record else []


async def test_the_record_follows_the_conversation_and_is_deleted_at_hang_up(
    engine: VoiceEngine,
) -> None:
    store = MemoryStore()
    keeper = keep(engine, store, ttl=5)
    await keeper.start()
    await turn(engine, "first question")
    await eventually(lambda: len(engine.history) == 2)
    await eventually(lambda: keeper.stats.saves >= 2)
    await asyncio.sleep(0.1)
    assert await saved_texts(store) == [e.text for e in engine.history]
    assert not keeper.durable  # in-memory: no other worker can resume it
    await keeper.aclose(ended=True)
    assert await store.load("call-1") is None


async def test_redis_killed_mid_call_the_call_goes_on_and_recovers(
    engine: VoiceEngine, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "voxengine.serve.state")
    store = open_store(redis_server.url, timeout=0.3)
    keeper = keep(engine, store, ttl=3)
    try:
        await keeper.start()
        assert keeper.durable
        await turn(engine, "one")
        await eventually(lambda: len(engine.history) == 2)
        redis_server.kill()
        await turn(engine, "two")  # the call does not notice
        await turn(engine, "three")
        await eventually(lambda: keeper.stats.failures >= 1)
        assert not keeper.durable
        warnings = [r for r in caplog.records if "state not durable" in r.message]
        assert len(warnings) == 1  # once per outage, not per write
        redis_server.start()  # back, empty
        await eventually(lambda: keeper.durable)
        texts = await saved_texts(store)
        assert texts[:1] == ["one"]
        assert "three" in texts  # everything said during the outage was written after it
        assert any("answers again" in r.message for r in caplog.records)
        assert KEY not in caplog.text
    finally:
        await keeper.aclose(ended=True)
        await store.aclose()


async def test_required_durability_refuses_the_call_when_redis_is_down(
    engine: VoiceEngine,
) -> None:
    store = open_store(f"redis://127.0.0.1:{free_port()}/0", timeout=0.3)
    try:
        keeper = keep(engine, store, durability=Durability.REQUIRED)
        with pytest.raises(StateUnavailable):
            await keeper.start()
        best_effort = keep(engine, store)
        await best_effort.start()  # starts; not durable
        assert not best_effort.durable
        await best_effort.aclose(ended=True)
    finally:
        await store.aclose()


async def test_a_resume_elsewhere_fences_the_old_copy(
    engine: VoiceEngine, redis_server: RedisServer
) -> None:
    store = open_store(redis_server.url)
    superseded: list[bool] = []
    keeper = keep(engine, store, ttl=5, on_superseded=lambda: superseded.append(True))
    try:
        await keeper.start()
        claimed = await store.claim("call-1", 0, ttl=5)  # another worker resumes
        assert claimed is not None
        await turn(engine, "still here?")
        await eventually(lambda: superseded)
        assert keeper.superseded
        assert superseded == [True]
    finally:
        await keeper.aclose(ended=True)
        await store.aclose()
    # the old copy did not delete the new owner's record
    other = open_store(redis_server.url)
    try:
        assert await other.load("call-1") is not None
    finally:
        await other.aclose()
