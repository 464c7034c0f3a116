"""End of turn on real speech: a pause inside a sentence ("I want to ... book a table")
does not end the user's turn with the default settings, and the reply the pipeline
starts during that pause is dropped unheard when the user goes on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from voxengine.audio.vad import SpeechEnd, VADConfig
from voxengine.config import ToolSpec, TurnDetectionConfig
from voxengine.events import (
    AudioDelta,
    Event,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SpeechStopped,
    TranscriptDone,
)
from voxengine.providers.pipeline import (
    LLMChunk,
    PipelineConfig,
    PipelineProvider,
    PiperTTS,
    SileroVAD,
    TextChunk,
    WhisperSTT,
)
from voxengine.providers.pipeline.stages import ChatMessage, FinishChunk

from .conftest import piper_speech, trimmed

pytestmark = pytest.mark.local_models

RATE = 16_000
PAUSE = 0.35


class AskedLLM:
    """Replies "Reply N." to its N-th request; notes each request and signals it."""

    label = "asked"

    def __init__(self) -> None:
        self.requests: list[list[ChatMessage]] = []
        self.asked = asyncio.Event()

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: object
    ) -> AsyncIterator[LLMChunk]:
        self.requests.append(list(messages))
        self.asked.set()
        yield TextChunk(text=f"Reply {len(self.requests)}.")
        yield FinishChunk(stop_reason="stop")


async def paused_sentence(piper: PiperTTS) -> tuple[bytes, bytes]:
    """ "I want to", then (after the caller's pause) "book a table for two.", spoken by
    Piper without its sampling noise, each half without its own leading and trailing
    silence, so that the pause between them is exactly the one the test inserts."""
    steady = PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
    await steady.open()
    del piper  # the fixture opened the shared voice; ``steady`` reuses it
    first = trimmed(await piper_speech(steady, "I want to"))
    second = trimmed(await piper_speech(steady, "book a table for two."))
    return first, second


def silence(seconds: float) -> bytes:
    return bytes(2 * round(seconds * RATE))


def turns_ended(audio: bytes, speech_end: float) -> int:
    vad = SileroVAD(VADConfig(speech_end=speech_end), RATE)
    return sum(
        isinstance(event, SpeechEnd)
        for i in range(0, len(audio), 640)
        for event in vad.process(audio[i : i + 640])
    )


async def test_a_short_end_of_turn_silence_would_cut_the_pause_the_default_does_not(
    opened: tuple[WhisperSTT, PiperTTS, object],
) -> None:
    first, second = await paused_sentence(opened[1])
    audio = silence(0.3) + first + silence(PAUSE) + second + silence(1.2)
    default = TurnDetectionConfig().silence_duration
    assert turns_ended(audio, default) == 1  # one turn: the pause is inside it
    assert turns_ended(audio, 0.3) == 2  # a 0.3 s setting would answer "I want to"


async def test_a_pause_mid_sentence_starts_a_reply_that_is_dropped_when_the_user_goes_on(
    opened: tuple[WhisperSTT, PiperTTS, object],
) -> None:
    whisper, piper, _ = opened
    first, second = await paused_sentence(piper)
    llm = AskedLLM()
    provider = PipelineProvider(
        # speculative replies, as the local stack has them by default; every
        # turn-taking setting (silence_duration, early_transcription) at its default
        PipelineConfig(stt=whisper, llm=llm, tts=piper, vad_engine="silero", speculate=True)
    )
    await provider.connect()
    seen: list[Event] = []

    async def collect() -> None:
        async for event in provider.events():
            seen.append(event)
            if isinstance(event, ResponseDone):
                return

    collector = asyncio.create_task(collect())

    async def feed(audio: bytes) -> None:
        for i in range(0, len(audio), 640):
            await provider.send_audio(audio[i : i + 640])
            await asyncio.sleep(0)

    try:
        await feed(silence(0.3) + first + silence(PAUSE))
        # the early transcription of "I want to" ends in the pause and the reply to it
        # starts, held back; only then does the user go on
        await asyncio.wait_for(llm.asked.wait(), 120)
        await feed(second + silence(1.2))
        await asyncio.wait_for(collector, 120)
    finally:
        collector.cancel()
        await provider.disconnect()
    assert [type(e) for e in seen].count(SpeechStopped) == 1  # the pause did not end it
    assert [type(e) for e in seen].count(ResponseStarted) == 1
    assert seen.index(next(e for e in seen if isinstance(e, SpeechStopped))) < seen.index(
        next(e for e in seen if isinstance(e, AudioDelta))
    )  # nothing was spoken before the turn ended
    user = next(e for e in seen if isinstance(e, TranscriptDone) and e.role is Role.USER)
    assert "table" in user.transcript.lower()  # the whole sentence, one turn
    assert "want" in user.transcript.lower()
    assert len(llm.requests) == 2  # the reply to the first half was dropped
    assert "table" not in (llm.requests[0][-1].text or "").lower()
    assert llm.requests[1][-1] == ChatMessage(role=Role.USER, text=user.transcript)
    done = seen[-1]
    assert isinstance(done, ResponseDone)
    assert done.status is ResponseStatus.COMPLETED
    assert [i.role for i in provider.conversation] == [Role.USER, Role.ASSISTANT]
    assert provider.conversation[1].text == "Reply 2."
