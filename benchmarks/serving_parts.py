"""The processes of the serving benchmark (benchmarks/serving.py): the provider fake and
the two servers under test.

* **Provider fake** (its own process): the bundled sans-I/O fake OpenAI Realtime server
  (:class:`voxengine.testing.FakeOpenAIServer`, paced: one 20 ms audio delta every 20 ms,
  server VAD on the caller's audio), driven like ``benchmarks/fakeserver.py``. It stamps
  (``time.perf_counter()``, ``CLOCK_MONOTONIC``: one clock for every process) each
  ``input_audio_buffer.append`` it receives with the caller audio received so far, and
  each ``response.output_audio.delta`` it sends with the reply audio sent so far.
  Connections are told apart by their ``model`` query value (one per caller).
* **Server under test** (its own process, one uvicorn): voxengine's app (Twilio routes and
  the browser endpoint, provider ``openai`` pointed at the fake), or Pipecat's
  FastAPI WebSocket transport with its ``TwilioFrameSerializer`` and its
  ``OpenAIRealtimeLLMService`` pointed at the same fake.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import multiprocessing
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from benchmarks.fakeserver import _drive
from voxengine.testing import FakeOpenAIConfig, FakeOpenAIServer, FakeReply, FakeTurn

__all__ = [
    "AUTH_TOKEN",
    "SECRET",
    "ProviderLog",
    "Subprocess",
    "model_for",
    "probe_main",
    "provider_main",
    "server_main",
]

AUTH_TOKEN = "bench-twilio-auth-token-0123456789"
SECRET = "bench-deployment-secret-0123456789"
_PCM24_BYTES_PER_SECOND = 48_000


def model_for(tag: str) -> str:
    """The model name a caller's provider connection uses (the fake accepts any
    ``gpt-realtime...``); it keys the provider logs."""
    return f"gpt-realtime-bench-{tag}"


@dataclass(slots=True)
class ProviderLog:
    """One connection's stamps: (perf_counter, seconds so far) of audio in and out."""

    audio_in: list[tuple[float, float]] = field(default_factory=list)
    audio_out: list[tuple[float, float]] = field(default_factory=list)
    responses: int = 0


class _StampingSocket:
    """The fake's socket, stamping each audio append as it is read."""

    def __init__(self, ws: ServerConnection, log: ProviderLog) -> None:
        self._ws = ws
        self._log = log
        self._seconds = 0.0

    async def __aiter__(self) -> AsyncIterator[str | bytes]:
        async for data in self._ws:
            if isinstance(data, str) and '"input_audio_buffer.append"' in data[:200]:
                now = time.perf_counter()
                audio = json.loads(data).get("audio", "")
                self._seconds += len(base64.b64decode(audio)) / _PCM24_BYTES_PER_SECOND
                self._log.audio_in.append((now, self._seconds))
            yield data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._ws.close(code, reason)


def _answer(turn: FakeTurn) -> FakeReply:
    # 7 words of 0.3 s: a 2.1 s reply, which ends before the caller speaks again
    return FakeReply(text="this is the answer to your question")


async def _provider(control: Connection) -> None:
    config = FakeOpenAIConfig(
        responder=_answer,
        audio_chunk_seconds=0.02,
        seconds_per_word=0.3,
        paced=True,
        record_received=False,
    )
    logs: dict[str, ProviderLog] = {}

    async def handler(ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        fake = FakeOpenAIServer(config)
        fake.receive_connect(request.path, request.headers)
        model = parse_qs(urlsplit(request.path).query).get("model", [""])[-1]
        log = logs.setdefault(model, ProviderLog())
        sent = 0.0

        async def send(frame: str) -> None:
            nonlocal sent
            if frame.startswith('{"type":"response.output_audio.delta"'):
                now = time.perf_counter()
                delta = json.loads(frame)["delta"]
                sent += len(base64.b64decode(delta)) / _PCM24_BYTES_PER_SECOND
                log.audio_out.append((now, sent))
            elif frame.startswith('{"type":"response.created"'):
                log.responses += 1
            await ws.send(frame)

        with contextlib.suppress(ConnectionClosed):
            await _drive(fake, _StampingSocket(ws, log), send, 0.02)  # type: ignore[arg-type]

    loop = asyncio.get_running_loop()
    async with serve(handler, "127.0.0.1", 0, max_size=2**25, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        control.send(("ready", port))
        while True:
            command, argument = await loop.run_in_executor(None, control.recv)
            if command == "logs":
                control.send({key: logs.pop(key, ProviderLog()) for key in argument})
            else:
                break


def provider_main(control: Connection) -> None:
    """Entry point of the provider fake's process."""
    asyncio.run(_provider(control))


# -- servers under test ---------------------------------------------------------------------


def _voxengine_app(provider_url: str) -> Any:
    from voxengine import VoiceEngine, VoiceEngineConfig
    from voxengine.serve import CallContext, Limits, ServeConfig, build_app
    from voxengine.serve.telephony.endpoint import TwilioConfig, twilio_routes

    limits = Limits(
        max_calls=10_000,
        max_calls_per_caller=10_000,
        token_requests_per_minute=100_000,
        max_messages_per_second=1_000,
    )
    config = ServeConfig(provider="openai", secret=SECRET, page=False, limits=limits)

    def factory(context: CallContext) -> VoiceEngine:
        tag = str(context.params.get("tag") or context.caller.rpartition("+")[2])
        engine = VoiceEngineConfig(
            provider="openai", api_key="sk-bench", base_url=provider_url, model=model_for(tag)
        )
        return VoiceEngine(engine)

    routes = twilio_routes(TwilioConfig(auth_token=AUTH_TOKEN))
    return build_app(config, factory, routes=routes)


def _pipecat_app(provider_url: str) -> Any:
    from fastapi import FastAPI, Request, WebSocket
    from fastapi.responses import Response
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.runner.utils import parse_telephony_websocket
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
    from pipecat.transports.websocket.fastapi import (
        FastAPIWebsocketParams,
        FastAPIWebsocketTransport,
    )
    from pipecat.workers.runner import WorkerRunner
    from twilio.twiml.voice_response import Connect, VoiceResponse

    app = FastAPI()

    # Starlette-style routes: FastAPI would resolve the (postponed) annotations of
    # endpoint parameters from this module's globals, where these imports are not
    async def voice(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))  # no python-multipart needed
        response = VoiceResponse()
        connect = Connect()
        stream = connect.stream(url=f"ws://{request.url.netloc}/twilio/stream")
        stream.parameter(name="tag", value=str(form.get("From", "")).rpartition("+")[2])
        response.append(connect)
        return Response(str(response), media_type="text/xml")

    async def stream(websocket: WebSocket) -> None:
        await websocket.accept()
        _, call_data = await parse_telephony_websocket(websocket)
        tag = str(call_data["body"].get("tag", ""))
        serializer = TwilioFrameSerializer(
            stream_sid=call_data["stream_id"],
            call_sid=call_data["call_id"],
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=serializer,
            ),
        )
        llm = OpenAIRealtimeLLMService(
            api_key="sk-bench",
            base_url=f"{provider_url}/realtime",
            settings=OpenAIRealtimeLLMService.Settings(model=model_for(tag)),
        )
        worker = PipelineWorker(
            Pipeline([transport.input(), llm, transport.output()]),
            params=PipelineParams(audio_in_sample_rate=24_000, audio_out_sample_rate=24_000),
        )

        @transport.event_handler("on_client_disconnected")
        async def _gone(transport: Any, client: Any) -> None:
            await worker.cancel()

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()

    app.router.add_route("/twilio/voice", voice, methods=["POST"])
    app.router.add_websocket_route("/twilio/stream", stream)
    return app


async def _server(kind: str, provider_url: str, control: Connection) -> None:
    import uvicorn

    app = _voxengine_app(provider_url) if kind == "voxengine" else _pipecat_app(provider_url)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="error", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    control.send(("ready", server.servers[0].sockets[0].getsockname()[1]))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, control.recv)
    server.should_exit = True
    await task


def probe_main(control: Connection) -> None:
    """Entry point of the scheduling probe: a process that does nothing but sleep 10 ms
    at a time and measure how late it wakes up, while a level runs. Its percentiles are
    the machine's own scheduling delay, the floor under any server's added latency.
    Answers ``("ready", 0)``, then, when told to stop, the lateness samples (seconds)."""
    control.send(("ready", 0))
    late: list[float] = []
    while not control.poll():
        before = time.perf_counter()
        time.sleep(0.01)
        late.append(time.perf_counter() - before - 0.01)
    control.recv()
    control.send(late)


def server_main(kind: str, provider_url: str, control: Connection) -> None:
    """Entry point of a server-under-test process (``kind``: voxengine or pipecat)."""
    import logging

    logging.disable(logging.WARNING)
    with contextlib.suppress(ImportError):
        from loguru import logger

        logger.remove()  # Pipecat logs every frame at debug level to stderr by default
    asyncio.run(_server(kind, provider_url, control))


class Subprocess:
    """A child process with a control pipe that first answers ``("ready", port)``."""

    def __init__(self, target: Any, *args: Any, name: str) -> None:
        context = multiprocessing.get_context("spawn")
        self.control, child = context.Pipe()
        self.process = context.Process(target=target, args=(*args, child), name=name, daemon=True)
        self.port = 0
        self.samples: list[float] = []

    def __enter__(self) -> Subprocess:
        self.process.start()
        if not self.control.poll(120):
            raise RuntimeError(f"{self.process.name} did not start")
        tag, self.port = self.control.recv()
        assert tag == "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError):
            self.control.send(("stop", None))
        if self.process.name == "probe":  # answers its samples before it ends
            with contextlib.suppress(OSError, EOFError):
                if self.control.poll(15):
                    self.samples = self.control.recv()
        self.process.join(15)
        if self.process.is_alive():
            self.process.kill()

    def logs(self, keys: list[str]) -> dict[str, ProviderLog]:
        """The provider fake's logs of these models (then dropped)."""
        self.control.send(("logs", keys))
        result: dict[str, ProviderLog] = self.control.recv()
        return result
