"""The state stores: the in-memory one and Redis (a real redis-server on loopback)
keep the same contract: records round-trip, expire, generations fence stale writers,
claims are single-use; a dead Redis is a typed StateUnavailable, never a crash."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest

from voxengine.errors import ConfigError, ProtocolViolation
from voxengine.events import Role
from voxengine.serve.state import (
    CallRecord,
    InProgress,
    MemoryStore,
    StateStore,
    StateUnavailable,
    open_store,
)
from voxengine.serve.state.record import decode_record, encode_record
from voxengine.session.history import HistoryEntry
from voxengine.session.snapshot import ConversationSnapshot

from ..redis_server import RedisServer, free_port


def record(call_id: str = "call-1", generation: int = 0, text: str = "hello") -> CallRecord:
    return CallRecord(
        call_id=call_id,
        settings={"provider": "openai", "voice": "marin"},
        snapshot=ConversationSnapshot.of(
            [HistoryEntry(item_id="i1", role=Role.USER, text=text)], "handle-9"
        ),
        in_progress=InProgress(user_speaking=True),
        generation=generation,
        updated_at=1.0,
    )


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    redis_store = open_store(server.url)
    try:
        yield redis_store
    finally:
        await redis_store.aclose()


async def test_records_round_trip_and_expire(store: StateStore) -> None:
    assert await store.load("call-1") is None
    assert await store.save(record(), ttl=0.3)
    assert await store.load("call-1") == record()
    await store.touch("call-1", ttl=0.3)
    await asyncio.sleep(0.6)
    assert await store.load("call-1") is None  # expired: nothing kept forever


async def test_a_claim_moves_the_generation_on_and_fences_the_old_writer(
    store: StateStore,
) -> None:
    await store.save(record(generation=0), ttl=30)
    claimed = await store.claim("call-1", 0, ttl=30)
    assert claimed == record(generation=0)
    assert await store.claim("call-1", 0, ttl=30) is None  # a token is good once
    # the worker that carried generation 0 is refused; the new one writes
    assert not await store.save(record(generation=0, text="stale"), ttl=30)
    assert await store.save(record(generation=1, text="new"), ttl=30)
    loaded = await store.load("call-1")
    assert loaded is not None
    assert loaded.snapshot.history[0].text == "new"
    await store.delete("call-1")
    assert await store.load("call-1") is None
    assert await store.claim("missing", 0, ttl=30) is None


async def test_single_use_keys_are_spent_once_until_they_expire(store: StateStore) -> None:
    assert await store.spend("jti:a", ttl=0.3)
    assert not await store.spend("jti:a", ttl=0.3)  # a replay, from any worker
    assert await store.spend("jti:b", ttl=0.3)
    await asyncio.sleep(0.6)
    assert await store.spend("jti:a", ttl=30)  # forgotten once expired: nothing kept forever
    assert not await store.spend("jti:a", ttl=30)


def test_records_refuse_credentials_and_mask_known_secrets() -> None:
    with pytest.raises(ConfigError, match="api_key"):
        CallRecord(call_id="c", settings={"api_key": "sk-x"})
    with pytest.raises(ConfigError):
        CallRecord(call_id="c", settings={"nested": {"a": 1}})  # type: ignore[dict-item]
    from voxengine.redaction import remember_secrets

    secret = "sk-proj-resume-test-0123456789abcdef"
    remember_secrets([secret])
    raw = encode_record(record(text=f"my key is {secret}"))
    assert secret.encode() not in raw
    assert b"***" in raw


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[]", b'{"version": 7}', json.dumps({"version": 1, "call_id": 3}).encode()],
)
def test_corrupt_records_are_a_typed_error(raw: bytes) -> None:
    with pytest.raises(ProtocolViolation):
        decode_record(raw)


def test_open_store_urls() -> None:
    assert isinstance(open_store(None), MemoryStore)
    assert isinstance(open_store("memory://"), MemoryStore)
    assert open_store("redis://127.0.0.1:1/0").shared
    with pytest.raises(ConfigError, match="unknown state store"):
        open_store("mongodb://x")


async def test_an_unreachable_redis_is_state_unavailable_without_the_password() -> None:
    store = open_store(f"redis://:hunter2-secret-pw@127.0.0.1:{free_port()}/0", timeout=0.3)
    try:
        assert "hunter2" not in repr(store)
        for operation in (
            store.ping(),
            store.save(record(), 5),
            store.load("c"),
            store.claim("c", 0, 5),
            store.touch("c", 5),
            store.delete("c"),
            store.spend("jti:c", 5),
        ):
            with pytest.raises(StateUnavailable) as caught:
                await operation
            assert "hunter2" not in str(caught.value)
    finally:
        await store.aclose()


async def test_redis_killed_and_restarted(redis_server: RedisServer) -> None:
    store = open_store(redis_server.url, timeout=0.3)
    try:
        assert await store.save(record(), ttl=30)
        redis_server.kill()
        with pytest.raises(StateUnavailable):
            await store.load("call-1")
        redis_server.start()  # same port, empty (no persistence)
        assert await store.load("call-1") is None
        assert await store.save(record(), ttl=30)
        assert await store.load("call-1") == record()
    finally:
        await store.aclose()


def test_import_voxengine_does_not_import_redis() -> None:
    code = (
        "import sys, voxengine, voxengine.serve.state;"
        "assert 'redis' not in sys.modules, 'redis imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
