"""The fake OpenAI Realtime server driven by Pipecat's ``OpenAIRealtimeLLMService``.

An optional group (extra ``sdk-tests``, installed by ``.ci/run``): skipped with the
reason when ``pipecat-ai`` is not installed. The service runs in a real Pipecat
pipeline and talks to the fake over ws://127.0.0.1; every frame the fake sent is then
validated against both the ``openai`` SDK's ``RealtimeServerEvent`` union and
Pipecat's own event models.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai.types.realtime import RealtimeServerEvent
from pydantic import TypeAdapter

from voxengine.testing import (
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    run_fake_openai_server,
    synthesize_speech,
)

pytest.importorskip(
    "pipecat.services.openai.realtime.llm",
    reason="pipecat-ai is not installed (pip install -e '.[sdk-tests]')",
)

from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.realtime import events as pipecat_events
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.workers.runner import WorkerRunner

SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
TIMEOUT = 30.0


class Collector(FrameProcessor):
    """The end of the pipeline: keeps every frame, signals each response's end."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []
        self.responses_done = 0
        self.changed = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        self.frames.append(frame)
        if isinstance(frame, LLMFullResponseEndFrame):
            self.responses_done += 1
            self.changed.set()
        await self.push_frame(frame, direction)

    async def wait_responses(self, count: int) -> None:
        async def wait() -> None:
            while self.responses_done < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), TIMEOUT)

    def spoken(self) -> str:
        return "".join(f.text for f in self.frames if isinstance(f, TTSTextFrame))

    def audio(self) -> bytes:
        return b"".join(f.audio for f in self.frames if isinstance(f, TTSAudioRawFrame))


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAIServerHandle]:
    async with run_fake_openai_server(FakeOpenAIConfig(record_sent=True)) as handle:
        yield handle
    frames = [frame for fake in handle.connections for frame in fake.sent]
    for frame in frames:
        SERVER_EVENT.validate_json(frame)
        pipecat_events.parse_server_event(frame)  # raises on a shape Pipecat rejects
    received = sum(len(fake.received) for fake in handle.connections)
    print(f"\npipecat: client->server {received}, server->client {len(frames)}")


async def run_pipeline(
    handle: FakeOpenAIServerHandle, *stages: tuple[list[Frame], int]
) -> Collector:
    """Queue each stage's frames, then wait until that many responses have ended."""
    llm = OpenAIRealtimeLLMService(
        api_key="sk-test", base_url=f"ws://{handle.host}:{handle.port}/v1/realtime"
    )
    collector = Collector()
    task = PipelineWorker(Pipeline([llm, collector]))
    workers = WorkerRunner(handle_sigint=False)
    await workers.add_workers(task)
    runner = asyncio.create_task(workers.run())
    try:
        for frames, responses in stages:
            await task.queue_frames(frames)
            await collector.wait_responses(responses)
    finally:
        await task.cancel()
        await asyncio.wait_for(runner, TIMEOUT)
    return collector


async def test_text_turn(server: FakeOpenAIServerHandle) -> None:
    context = LLMContext(messages=[{"role": "user", "content": "Hello Pipecat"}])
    collector = await run_pipeline(server, ([LLMContextFrame(context=context)], 1))
    assert collector.spoken() == "You said: Hello Pipecat"
    assert len(collector.audio()) > 24_000
    (fake,) = server.connections
    kinds = [e["type"] for e in fake.received]
    assert kinds[0] == "session.update"
    assert "response.create" in kinds


async def test_audio_turn_with_server_vad(server: FakeOpenAIServerHandle) -> None:
    context = LLMContext(messages=[{"role": "user", "content": "Hi"}])
    pcm = synthesize_speech("what time is it", sample_rate=16_000) + bytes(16_000 * 2)
    audio = [
        InputAudioRawFrame(audio=pcm[start : start + 3200], sample_rate=16_000, num_channels=1)
        for start in range(0, len(pcm), 3200)
    ]
    # Pipecat answers its first context at once; the speech then gets the reply the
    # fake's server VAD starts (Pipecat resamples its 16 kHz input to 24 kHz). Sent
    # together, the speech's VAD response can win and Pipecat's response.create is
    # refused (conversation_already_has_active_response), as on the live service.
    collector = await run_pipeline(server, ([LLMContextFrame(context=context)], 1), (audio, 2))
    # 1.2 s of speech (4 words of 0.3 s) ended by the session's 200 ms of silence
    assert re.search(r"I heard 1\.[2-4] seconds of audio\.$", collector.spoken())
    (fake,) = server.connections
    assert any(e["type"] == "input_audio_buffer.append" for e in fake.received)
