"""The bundled fake OpenAI Realtime server, run in a subprocess and instrumented.

Every connection is served by the sans-I/O :class:`voxengine.testing.FakeOpenAIServer`
in paced mode (one audio chunk per :meth:`~FakeOpenAIServer.step`). Like
:func:`voxengine.testing.serve_fake_peer` it paces on absolute deadlines (so server lag
cannot hide client lag); unlike it, it stamps frames: ``time.perf_counter()`` is taken
right before each frame is written, appended to the frame as an extra ``bench_sent``
field (clients ignore unknown fields) and kept in a per-connection log. The parent
process fetches the logs over a pipe and matches the n-th logged audio delta with the n-th
audio callback of the client (TCP and every client keep the order).

``perf_counter`` is ``CLOCK_MONOTONIC`` on Linux, one clock for every process, so stamps
taken here compare with stamps taken in the client process. The server runs in its own
process so that it does not share the client's CPU time or event loop.

Connections are told apart by their ``model`` query value (the fake accepts any model
starting with ``gpt-realtime``); every client under test lets the benchmark choose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from benchmarks.stats import percentile, process_cpu_seconds

if TYPE_CHECKING:  # imported where the full fake serves: the lean server does without
    from voxengine.testing import FakeOpenAIServer, FakeReply, FakeTurn

__all__ = ["AUDIO", "TRANSCRIPT", "FakeServerProcess", "ServerSettings", "SessionLog"]

#: Frame kinds whose send times are logged, keyed by the frame's JSON prefix.
AUDIO = "audio"
TRANSCRIPT = "transcript"
_TRACKED = {
    '{"type":"response.output_audio.delta"': AUDIO,
    '{"type":"response.output_audio_transcript.delta"': TRANSCRIPT,
}


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the fake answers.

    Attributes:
        pace_seconds: time between two paced response steps (one audio chunk each).
        chunk_seconds: audio carried by each ``response.output_audio.delta``.
        seconds_per_word: reply audio per word; the reply echoes the user's text.
        stamp_frames: add the ``bench_sent`` field to every frame.
        loop: the server process's event loop, "asyncio" or "uvloop" (leaner).
        cpus: pin the server process to these CPUs (Linux ``sched_setaffinity``).
        lean: serve with :mod:`benchmarks.leanserver` (pre-encoded reply frames, input
            audio dropped unread) instead of ``FakeOpenAIServer``: the scale test's
            load generator, so that the server side is not what it measures.
        lean_engine: the lean server's WebSocket front end: "picows" (its Cython
            server does the upgrade, framing and pongs) or "protocol" (a bare
            ``asyncio.Protocol`` with websockets' sans-I/O upgrade and a hand parse).
        watch_health: run the loop-lag watcher (off only where the server's own
            instructions are counted: ``benchmarks.servercost``).
    """

    pace_seconds: float = 0.02
    chunk_seconds: float = 0.02
    seconds_per_word: float = 0.3
    stamp_frames: bool = True
    loop: str = "asyncio"
    cpus: tuple[int, ...] | None = None
    lean: bool = False
    lean_engine: str = "picows"
    watch_health: bool = True


@dataclass(slots=True)
class SessionLog:
    """Send times (``perf_counter``) of one connection's tracked frames, by kind."""

    sent: dict[str, list[float]] = field(default_factory=lambda: {AUDIO: [], TRANSCRIPT: []})
    frames: int = 0


def _echo(turn: FakeTurn) -> FakeReply:
    # The reply repeats the user's words, so the client chooses the reply length.
    from voxengine.testing import FakeReply

    return FakeReply(text=turn.text or "hello")


def _model_of(path: str) -> str:
    query = parse_qs(urlsplit(path).query)
    return query.get("model", [""])[-1]


async def _drive(
    fake: FakeOpenAIServer,
    ws: ServerConnection,
    send: Callable[[str], Awaitable[None]],
    pace: float,
) -> None:
    """Feed ``fake`` from ``ws``; step its responses every ``pace`` s on fixed deadlines."""
    lock = asyncio.Lock()  # one flush at a time keeps the frames in queue order
    responding = asyncio.Event()

    async def flush() -> bool:
        async with lock:
            for frame in fake.data_to_send():
                await send(frame)
            closing = fake.close_to_send()
            if closing is not None:
                await ws.close(*closing)
                return True
            return False

    async def pacer() -> None:
        deadline = 0.0
        while True:
            if not fake.response_active:
                responding.clear()
                await responding.wait()
                deadline = time.perf_counter()
            deadline += pace
            pause = deadline - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
            fake.step()
            if await flush():
                return

    if await flush():
        return
    stepper = asyncio.create_task(pacer())
    try:
        async for data in ws:
            fake.receive_message(data)
            if fake.response_active:
                responding.set()
            if await flush() or stepper.done():
                break
    finally:
        stepper.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await stepper
        fake.receive_close()


async def _serve(control: Connection, settings: ServerSettings) -> None:
    from voxengine.testing import FakeOpenAIConfig, FakeOpenAIServer

    config = FakeOpenAIConfig(
        responder=_echo,
        audio_chunk_seconds=settings.chunk_seconds,
        seconds_per_word=settings.seconds_per_word,
        paced=True,
        record_received=False,  # a load run: the log would grow by every append
    )
    logs: dict[str, SessionLog] = {}
    perf_counter = time.perf_counter

    async def handler(ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        fake = FakeOpenAIServer(config)
        fake.receive_connect(request.path, request.headers)
        log = logs.setdefault(_model_of(request.path), SessionLog())
        sent = log.sent

        async def send(frame: str) -> None:
            now = perf_counter()
            kind = _TRACKED.get(frame[: frame.find('"', 9) + 1])
            if kind is not None:
                sent[kind].append(now)
            log.frames += 1
            if settings.stamp_frames:
                frame = f'{frame[:-1]},"bench_sent":{now!r}}}'
            await ws.send(frame)

        with contextlib.suppress(ConnectionClosed):
            await _drive(fake, ws, send, settings.pace_seconds)

    loop = asyncio.get_running_loop()
    health = _Health()
    watcher = asyncio.create_task(health.watch())
    async with serve(handler, "127.0.0.1", 0, max_size=2**25, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        control.send(("ready", port))
        while True:
            command, argument = await loop.run_in_executor(None, control.recv)
            if command == "logs":
                control.send({key: logs.pop(key, SessionLog()) for key in argument})
            elif command == "cpu":
                control.send(time.process_time())
            elif command == "health":
                control.send(health.between(*argument))
            else:
                break
    watcher.cancel()


class _Health:
    """Stamps of the server loop's lag and of its garbage-collector pauses.

    A watcher task sleeps ``tick`` s in a loop and keeps ``(woke_at, lag)``; a ``gc``
    callback keeps ``(ended_at, pause)``. The parent asks for the stamps inside its
    measuring window afterwards, so the query never runs during the window.
    """

    def __init__(self, tick: float = 0.005, keep: int = 20_000) -> None:
        self.tick = tick
        self.lags: deque[tuple[float, float]] = deque(maxlen=keep)
        self.gc_pauses: deque[tuple[float, float]] = deque(maxlen=keep)
        self._gc_started = 0.0
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        now = time.perf_counter()
        if phase == "start":
            self._gc_started = now
        else:
            self.gc_pauses.append((now, now - self._gc_started))

    async def watch(self) -> None:
        """Run forever, stamping how late each ``tick`` sleep woke up."""
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.tick)
            now = time.perf_counter()
            self.lags.append((now, now - before - self.tick))

    def between(self, start: float, end: float) -> dict[str, float]:
        """Loop lag p99/max and GC pauses (ms) stamped in ``[start, end)``."""
        lags = sorted(lag for at, lag in self.lags if start <= at < end)
        pauses = [pause for at, pause in self.gc_pauses if start <= at < end]
        p99 = percentile(lags, 99) if lags else 0.0
        return {
            "loop_lag_p99_ms": 1e3 * p99,
            "loop_lag_max_ms": 1e3 * (lags[-1] if lags else 0.0),
            "gc_max_ms": 1e3 * max(pauses, default=0.0),
            "gc_count": float(len(pauses)),
        }


def _main(control: Connection, settings: ServerSettings) -> None:
    from benchmarks.loops import run

    if settings.cpus is not None:
        os.sched_setaffinity(0, settings.cpus)
    if settings.lean:
        from benchmarks.leanserver import serve_lean

        run(serve_lean(control, settings), settings.loop)
    else:
        run(_serve(control, settings), settings.loop)


class FakeServerProcess:
    """A fake OpenAI Realtime server in a child process; use as a context manager."""

    def __init__(
        self, settings: ServerSettings, *, start_timeout: float = 60, stop_timeout: float = 10
    ) -> None:
        self.settings = settings
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        context = multiprocessing.get_context("spawn")
        self._control, child = context.Pipe()
        self._process = context.Process(
            target=_main, args=(child, settings), name="fake-openai", daemon=True
        )
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL, as for ``AsyncOpenAI(websocket_base_url=...)``."""
        return f"ws://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeServerProcess:
        self._process.start()
        if not self._control.poll(self.start_timeout):
            raise RuntimeError("fake server process did not start")
        tag, self.port = self._control.recv()
        assert tag == "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self._control.send(("stop", None))
        self._process.join(self.stop_timeout)
        if self._process.is_alive():
            self._process.kill()

    def _ask(self, command: str, argument: Any = None) -> Any:
        self._control.send((command, argument))
        return self._control.recv()

    def logs(self, keys: list[str]) -> dict[str, SessionLog]:
        """The send logs of the connections opened with these model names (then dropped)."""
        result: dict[str, SessionLog] = self._ask("logs", keys)
        return result

    def health(self, start: float, end: float) -> dict[str, float]:
        """Server loop lag and GC pauses stamped in ``[start, end)`` (``perf_counter``).

        Blocks until the server answers: call it after a measuring window, not in one.
        """
        result: dict[str, float] = self._ask("health", (start, end))
        return result

    def cpu_seconds(self) -> float:
        """CPU time used by the server process so far.

        Read from ``/proc`` on Linux, so it never waits for the server's event loop
        (a busy server answers a query late and would stall the caller's loop).
        """
        seconds = process_cpu_seconds(self.pid) if self.pid is not None else None
        if seconds is None:
            seconds = self._ask("cpu")
        return float(seconds)

    @property
    def pid(self) -> int | None:
        """The server's process id."""
        return self._process.pid


@contextlib.contextmanager
def fake_server(settings: ServerSettings) -> Iterator[FakeServerProcess]:
    """Run a :class:`FakeServerProcess` for the duration of the block."""
    with FakeServerProcess(settings) as server:
        yield server
