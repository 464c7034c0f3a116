""":class:`RedisStore`: call records shared by every worker, in Redis (redis-py asyncio).

Per call two keys, in one hash slot (``{call_id}``, so Redis Cluster keeps them
together): ``voxengine:call:{ID}:rec`` (the JSON record) and ``voxengine:call:{ID}:gen``
(the resume generation). Both expire together (``PX``); every write, claim and touch
is one server-side Lua script, so each is atomic and costs one round trip:

* save: refused (0) when the stored generation is newer than the record's;
* claim: moves the generation on only if it is the expected one;
* touch: pushes both expiries back.

Spent single-use keys (call token ids) are ``voxengine:spent:KEY``, written with
``SET NX PX``: one atomic command; the first worker to write it wins.

Every Redis call is bounded (``timeout``); any failure (refused connection, timeout,
Redis error) is raised as :class:`~voxengine.serve.state.store.StateUnavailable`
with a message naming no credential.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from voxengine.redaction import redact
from voxengine.serve.state.record import CallRecord, decode_record, encode_record
from voxengine.serve.state.store import StateUnavailable

__all__ = ["RedisStore"]

logger = logging.getLogger("voxengine.serve.state")

_SAVE = """
local cur = redis.call('GET', KEYS[2])
if cur and tonumber(cur) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
"""

_CLAIM = """
local cur = redis.call('GET', KEYS[2])
local raw = redis.call('GET', KEYS[1])
if (not cur) or (not raw) or cur ~= ARGV[1] then return false end
redis.call('SET', KEYS[2], tostring(tonumber(cur) + 1), 'PX', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return raw
"""

_TOUCH = """
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return 1
"""


def _keys(call_id: str) -> list[str]:
    base = f"voxengine:call:{{{call_id}}}"
    return [f"{base}:rec", f"{base}:gen"]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


@final
class RedisStore:
    """A shared :class:`~voxengine.serve.state.store.StateStore` in Redis.

    Args:
        client: a ``redis.asyncio.Redis`` (its own timeouts apply); the store closes it.
        where: how to name the server in messages (no credentials).
    """

    def __init__(self, client: aioredis.Redis, where: str = "redis") -> None:
        self._redis = client
        self._where = where
        self._save = client.register_script(_SAVE)
        self._claim = client.register_script(_CLAIM)
        self._touch = client.register_script(_TOUCH)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 0.5) -> RedisStore:
        """A store on ``url`` (``redis://[:password@]host:port/db``); connects lazily,
        each call bounded by ``timeout`` seconds."""
        client = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry_on_timeout=False,
            health_check_interval=0,
        )
        kwargs = client.connection_pool.connection_kwargs
        where = f"redis at {kwargs.get('host', kwargs.get('path', '?'))}:{kwargs.get('port', '')}"
        return cls(client, where.rstrip(":"))

    def __repr__(self) -> str:
        return f"RedisStore({self._where!r})"

    @property
    def shared(self) -> bool:
        """Always True: every worker on this Redis sees the records."""
        return True

    @contextlib.asynccontextmanager
    async def _failures(self, what: str) -> AsyncIterator[None]:
        try:
            yield
        except (RedisError, OSError, TimeoutError) as exc:
            message = redact(f"{self._where}: {what} failed: {type(exc).__name__}: {exc}")
            raise StateUnavailable(message) from exc

    async def save(self, record: CallRecord, ttl: float) -> bool:
        """See :meth:`StateStore.save`."""
        raw = encode_record(record)
        async with self._failures("save"):
            done: Any = await self._save(
                keys=_keys(record.call_id), args=[raw, record.generation, _ms(ttl)]
            )
        return bool(done)

    async def load(self, call_id: str) -> CallRecord | None:
        """See :meth:`StateStore.load`."""
        async with self._failures("load"):
            raw: Any = await self._redis.get(_keys(call_id)[0])
        return decode_record(raw) if raw is not None else None

    async def claim(self, call_id: str, generation: int, ttl: float) -> CallRecord | None:
        """See :meth:`StateStore.claim`."""
        async with self._failures("claim"):
            raw: Any = await self._claim(keys=_keys(call_id), args=[str(generation), _ms(ttl)])
        return decode_record(raw) if raw else None

    async def touch(self, call_id: str, ttl: float) -> None:
        """See :meth:`StateStore.touch`."""
        async with self._failures("touch"):
            await self._touch(keys=_keys(call_id), args=[_ms(ttl)])

    async def delete(self, call_id: str) -> None:
        """See :meth:`StateStore.delete`."""
        async with self._failures("delete"):
            await self._redis.delete(*_keys(call_id))

    async def spend(self, key: str, ttl: float) -> bool:
        """See :meth:`StateStore.spend`."""
        async with self._failures("spend"):
            done: Any = await self._redis.set(f"voxengine:spent:{key}", b"1", nx=True, px=_ms(ttl))
        return bool(done)

    async def ping(self) -> None:
        """See :meth:`StateStore.ping`."""
        async with self._failures("ping"):
            await self._redis.ping()

    async def aclose(self) -> None:
        """Close the connection pool; idempotent, never raises."""
        try:
            await self._redis.aclose()
        except Exception:  # closing a broken connection must not add a failure
            logger.debug("closing the Redis client raised", exc_info=True)
