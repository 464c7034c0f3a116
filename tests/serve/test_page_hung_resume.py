"""The served page's resume against a server that accepts the connection and never
answers (a hung worker, a black-holed load balancer backend), in headless Chromium
over real sockets: the page's call goes through a TCP relay on 127.0.0.1 to one of
two `voxengine serve` apps sharing a real redis-server. The relay drops the call's
connection and, for the page's next connection, accepts it and says nothing; then it
relays to the other server again. The resume attempt into the silent server must give
up by itself (the page bounds every connect), and the next attempt resumes the call.
Without that bound the page waits on the silent socket for minutes and never resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voxengine.audio.format import AudioFormat
from voxengine.audio.wav import write_wav
from voxengine.testing import FakeOpenAIServerHandle

from .chromium import chromium_page, needs_chromium
from .redis_server import RedisServer
from .test_resume_calls import workers

pytestmark = [pytest.mark.timeout(180), needs_chromium]


class Relay:
    """A TCP relay on 127.0.0.1: each connection goes to ``upstream`` (host, port), or,
    while ``upstream`` is ``None``, is held open and never answered."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream: tuple[str, int] | None = upstream
        self.held = 0
        self.held_one = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def __aenter__(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.drop_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def drop_all(self) -> None:
        """Abort every open connection (both sides get a reset, as when a line drops)."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            if self.upstream is None:  # accepted, read, never answered
                self.held += 1
                self.held_one.set()
                while await reader.read(65536):
                    pass
                return
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(up_writer)
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.transport.abort()


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


@contextlib.asynccontextmanager
async def relayed(fake: FakeOpenAIServerHandle, redis_url: str) -> AsyncIterator[tuple[Relay, str]]:
    async with workers(fake, redis_url) as (first, second), Relay(_address(first.http)) as relay:
        yield relay, second.http


async def test_a_resume_into_a_server_that_never_answers_gives_up_and_retries(
    fake: FakeOpenAIServerHandle, redis_server: RedisServer, tmp_path: Path
) -> None:
    wav = tmp_path / "silence.wav"
    write_wav(wav, bytes(48000 * 2 * 2), AudioFormat(sample_rate=48000))
    async with (
        relayed(fake, redis_server.url) as (relay, other),
        chromium_page(wav) as (
            page,
            errors,
        ),
    ):
        await page.goto(f"{relay.url}/?transport=ws")
        await page.click("#talk")
        await page.wait_for_function("document.body.dataset.state === 'connected'", timeout=30_000)
        assert await page.text_content("#transport") == "WebSocket"
        relay.upstream = None  # the next connection meets a server that never answers
        dropped = time.monotonic()
        relay.drop_all()  # the call's line drops: the page resumes by itself
        async with asyncio.timeout(30):
            await relay.held_one.wait()
        assert await page.evaluate("window.vox.resumes") == 0
        relay.upstream = _address(other)  # the load balancer has a live server again
        await page.wait_for_function(
            "window.vox.resumes >= 1 && document.body.dataset.state === 'connected'",
            timeout=40_000,
        )
        print(f"line dropped -> resumed past a silent server in {time.monotonic() - dropped:.1f} s")
        assert relay.held == 1  # one attempt into the silent server, then a good one
        status = await page.text_content("#status")
        assert status is not None
        assert status.startswith("Resumed on another server")
        await page.click("#hangup")
        await page.wait_for_function("document.body.dataset.state === 'ended'", timeout=20_000)
        assert errors == []
