"""The clients under test, behind one small interface.

Each client connects to the fake server, sends text and 20 ms audio chunks, and calls
its :class:`Recorder` from the place an application would get the data: the callback,
the ``async for`` body, or the next pipeline processor. The recorder does the least it
can (one ``perf_counter()`` and a list append), so it costs every client the same.

Every client hands the application decoded PCM: where a library delivers base64 text
(the raw floor, the ``openai`` package), the client decodes it, as an app must.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from typing import Any, ClassVar, Literal

from benchmarks.bareclients import AsyncForClient, HookClient, ProtocolClient
from benchmarks.compiledclients import AiohttpHookClient, PicowsClient
from benchmarks.recorder import API_KEY, BenchClient, Recorder, user_text_item
from voxengine import VoiceEngine, VoiceEngineConfig
from voxengine.events import AudioDelta, ResponseDone, Role, TranscriptDelta
from voxengine.providers import OpenAIProvider
from voxengine.providers.openai import OpenAIConfig

__all__ = [
    "CLIENTS",
    "OPTIONAL_CLIENTS",
    "BenchClient",
    "FastPicowsClient",
    "OpenAISDKClient",
    "PipecatClient",
    "ProviderClient",
    "AsyncForClient",
    "HookClient",
    "ProtocolClient",
    "Recorder",
    "VoxEngineClient",
]


class VoxEngineClient(BenchClient):
    """``VoiceEngine`` in one mode, with the README's callbacks."""

    mode: ClassVar[Literal["fast", "provider", "big"]]
    #: The WebSocket backend (``VoiceEngineConfig.transport``).
    transport: ClassVar[str] = "websockets"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self.engine: VoiceEngine | None = None

    async def connect(self, base_url: str, model: str) -> None:
        config = VoiceEngineConfig(
            api_key=API_KEY,
            base_url=base_url,
            model=model,
            mode=self.mode,
            retry_count=0,
            transport=self.transport,
        )
        engine = VoiceEngine(config)
        rec = self.rec
        engine.on_audio_response = rec.on_audio
        engine.on_text_response = lambda _text: rec.on_transcript()
        engine.on_response_done = lambda _event: rec.on_done()
        await engine.connect()
        self.engine = engine

    async def send_text(self, text: str) -> None:
        assert self.engine is not None
        await self.engine.send_text(text)

    async def send_audio(self, pcm: bytes) -> None:
        assert self.engine is not None
        await self.engine.send_audio(pcm)

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.disconnect()


class FastClient(VoxEngineClient):
    """``VoiceEngine(mode="fast")``."""

    name = "voxengine fast"
    mode = "fast"


class FastPicowsClient(FastClient):
    """``VoiceEngine(mode="fast", transport="picows")``: fast mode on the compiled
    WebSocket backend (the optional ``picows`` package). Its frames are not read
    through ``websockets``, so the comparison's socket-read stamps
    (:mod:`benchmarks.readstamps`) do not see them, as for ``picows_floor``."""

    name = "voxengine fast (picows)"
    transport = "picows"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._proto: Any = None

    async def connect(self, base_url: str, model: str) -> None:
        from benchmarks.compiledclients import _require

        _require("picows", "fast_picows")
        await super().connect(base_url, model)
        # picows' asyncio protocol (a BufferedProtocol), for benchmarks.framecost
        assert self.engine is not None
        provider: Any = self.engine.provider  # a RealtimeProvider here
        connection = provider.session._conn
        self._proto = connection._handler.transport.underlying_transport.get_protocol()


class ProviderModeClient(VoxEngineClient):
    """``VoiceEngine(mode="provider")``."""

    name = "voxengine provider"
    mode = "provider"


class BigClient(VoxEngineClient):
    """``VoiceEngine(mode="big")``."""

    name = "voxengine big"
    mode = "big"


class ProviderClient(BenchClient):
    """``OpenAIProvider`` driven directly: ``async for event in provider.events()``."""

    name = "voxengine OpenAIProvider"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._provider: OpenAIProvider | None = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, base_url: str, model: str) -> None:
        provider = OpenAIProvider(OpenAIConfig(api_key=API_KEY, base_url=base_url, model=model))
        await provider.connect(retry_count=0)
        self._provider = provider
        self._reader = asyncio.create_task(self._read(provider))

    async def _read(self, provider: OpenAIProvider) -> None:
        rec = self.rec
        async for event in provider.events():
            if isinstance(event, AudioDelta):
                rec.on_audio(event.audio)
            elif isinstance(event, TranscriptDelta) and event.role is Role.ASSISTANT:
                rec.on_transcript()
            elif isinstance(event, ResponseDone):
                rec.on_done()

    async def send_text(self, text: str) -> None:
        assert self._provider is not None
        await self._provider.send_text(text)

    async def send_audio(self, pcm: bytes) -> None:
        assert self._provider is not None
        await self._provider.send_audio(pcm)

    async def close(self) -> None:
        if self._provider is not None:
            await self._provider.disconnect()
        if self._reader is not None:
            await self._reader


class OpenAISDKClient(BenchClient):
    """The official ``openai`` package: ``client.realtime.connect()`` and ``async for``."""

    name = "openai SDK"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._manager: Any = None
        self._conn: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def connect(self, base_url: str, model: str) -> None:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(api_key=API_KEY, websocket_base_url=base_url)
        self._manager = client.realtime.connect(model=model)
        conn = await self._manager.enter()
        self._conn = conn
        await conn.session.update(session={"type": "realtime"})
        async for event in conn:
            if event.type == "session.updated":
                break
        self._reader = asyncio.create_task(self._read(conn))

    async def _read(self, conn: Any) -> None:
        rec = self.rec
        b64decode = base64.b64decode
        async for event in conn:
            kind = event.type
            if kind == "response.output_audio.delta":
                rec.on_audio(b64decode(event.delta))
            elif kind == "response.output_audio_transcript.delta":
                rec.on_transcript()
            elif kind == "response.done":
                rec.on_done()

    async def send_text(self, text: str) -> None:
        await self._conn.conversation.item.create(item=user_text_item(text))
        await self._conn.response.create()

    async def send_audio(self, pcm: bytes) -> None:
        await self._conn.input_audio_buffer.append(audio=base64.b64encode(pcm).decode("ascii"))

    async def close(self) -> None:
        if self._manager is not None:
            await self._manager.__aexit__(None, None, None)
        if self._reader is not None:
            await self._reader


class PipecatClient(BenchClient):
    """Pipecat's ``OpenAIRealtimeLLMService`` in the smallest pipeline it runs in.

    ``Pipeline([service, sink])`` under a ``PipelineTask``, no transport: user audio
    enters as ``InputAudioRawFrame``s queued on the task (the path a transport's
    input uses), text turns go through the service's public ``send_client_event``
    (``conversation.item.create`` + ``response.create``), and the sink processor
    records ``TTSAudioRawFrame``s, ``TTSTextFrame``s and ``LLMFullResponseEndFrame``
    as the next processor in the pipeline receives them. Pipecat's log level is
    raised to WARNING, as any deployment would.
    """

    name = "pipecat"

    def __init__(self, recorder: Recorder) -> None:
        super().__init__(recorder)
        self._task: Any = None
        self._runner: asyncio.Task[None] | None = None
        self._service: Any = None

    async def connect(self, base_url: str, model: str) -> None:
        from pipecat.frames.frames import (
            Frame,
            LLMFullResponseEndFrame,
            TTSAudioRawFrame,
            TTSTextFrame,
        )
        from pipecat.pipeline.pipeline import Pipeline
        from pipecat.pipeline.runner import PipelineRunner
        from pipecat.pipeline.task import PipelineParams, PipelineTask
        from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
        from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

        rec = self.rec

        class Sink(FrameProcessor):
            async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
                await super().process_frame(frame, direction)
                if isinstance(frame, TTSAudioRawFrame):
                    rec.on_audio(frame.audio)
                elif isinstance(frame, TTSTextFrame):
                    rec.on_transcript()
                elif isinstance(frame, LLMFullResponseEndFrame):
                    rec.on_done()
                await self.push_frame(frame, direction)

        service = OpenAIRealtimeLLMService(
            api_key=API_KEY,
            base_url=f"{base_url}/realtime",
            settings=OpenAIRealtimeLLMService.Settings(model=model),
        )
        self._service = service
        self._task = PipelineTask(
            Pipeline([service, Sink()]),
            params=PipelineParams(audio_in_sample_rate=24_000, audio_out_sample_rate=24_000),
        )
        runner = PipelineRunner(handle_sigint=False)
        self._runner = asyncio.create_task(runner.run(self._task))
        deadline = time.monotonic() + 10
        # No public "session ready" hook: poll the service's own flag.
        while not service._api_session_ready:
            if time.monotonic() > deadline or self._runner.done():
                raise RuntimeError("pipecat service did not finish the session handshake")
            await asyncio.sleep(0.005)

    async def send_text(self, text: str) -> None:
        from pipecat.services.openai.realtime import events

        item = events.ConversationItem(
            type="message",
            role="user",
            content=[events.ItemContent(type="input_text", text=text)],
        )
        await self._service.send_client_event(events.ConversationItemCreateEvent(item=item))
        await self._service.send_client_event(events.ResponseCreateEvent())

    async def send_audio(self, pcm: bytes) -> None:
        from pipecat.frames.frames import InputAudioRawFrame

        await self._task.queue_frame(
            InputAudioRawFrame(audio=pcm, sample_rate=24_000, num_channels=1)
        )

    async def close(self) -> None:
        if self._task is not None:
            await self._task.cancel()
        if self._runner is not None:
            await self._runner


def quiet_pipecat() -> bool:
    """Import Pipecat with its loguru output at WARNING; False if it is not installed."""
    try:
        from loguru import logger
    except ImportError:
        return False
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    try:
        import pipecat  # noqa: F401
    except ImportError:
        return False
    return True


CLIENTS: dict[str, type[BenchClient]] = {
    "floor": HookClient,
    "raw": AsyncForClient,
    "protocol": ProtocolClient,
    "fast": FastClient,
    "provider": ProviderModeClient,
    "big": BigClient,
    "openai_provider": ProviderClient,
    "openai_sdk": OpenAISDKClient,
    "pipecat": PipecatClient,
    "aiohttp_floor": AiohttpHookClient,
    "picows_floor": PicowsClient,
    "fast_picows": FastPicowsClient,
}

#: Clients on optional libraries (``aiohttp``, ``picows``): run only when named.
OPTIONAL_CLIENTS = ("aiohttp_floor", "picows_floor", "fast_picows")
