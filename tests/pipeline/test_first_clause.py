"""The first piece of a spoken reply: it goes to the synthesiser at the first clause
break once it holds ``PipelineConfig.first_clause`` characters, so the first audio
does not wait for the end of the first sentence; later pieces are whole sentences."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from voxengine.config import ToolSpec
from voxengine.errors import ConfigError
from voxengine.events import AudioDelta, Event, ResponseDone, ResponseStatus, Role, TranscriptDone
from voxengine.providers.pipeline import (
    EspeakTTS,
    LLMChunk,
    PipelineConfig,
    PipelineProvider,
    TextChunk,
)
from voxengine.providers.pipeline.sentence import FIRST_CLAUSE_CHARS
from voxengine.providers.pipeline.stages import ChatMessage, FinishChunk

from .test_provider import RecordingSTT

pytest.importorskip("espeakng_loader")

REPLY = "To sleep better, keep a regular bedtime. Avoid coffee late in the day."


class WordsLLM:
    """Streams :data:`REPLY` a word at a time, as a model does."""

    label = "words"

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def stream(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec], settings: object
    ) -> AsyncIterator[LLMChunk]:
        for i, word in enumerate(REPLY.split(" ")):
            yield TextChunk(text=word if i == 0 else f" {word}")
            await asyncio.sleep(0)
        yield FinishChunk(stop_reason="stop")


class HeardTTS:
    """espeak-ng, noting each text it is asked to speak."""

    def __init__(self) -> None:
        self.inner = EspeakTTS()
        self.texts: list[str] = []

    @property
    def label(self) -> str:
        return self.inner.label

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.texts.append(text)
        inner = self.inner.synthesize(text)
        try:
            async for chunk in inner:
                yield chunk
        finally:
            await inner.aclose()  # type: ignore[attr-defined]


async def spoken_pieces(config: PipelineConfig, tts: HeardTTS) -> list[Event]:
    provider = PipelineProvider(config)
    await provider.connect()
    seen: list[Event] = []
    try:
        await provider.send_text("How can I sleep better?")
        await provider.create_response()
        async with asyncio.timeout(60):
            async for event in provider.events():
                seen.append(event)
                if isinstance(event, ResponseDone):
                    break
    finally:
        await provider.disconnect()
    done = seen[-1]
    assert isinstance(done, ResponseDone)
    assert done.status is ResponseStatus.COMPLETED
    said = next(e for e in seen if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT)
    assert said.transcript == REPLY  # every word spoken once, whatever the pieces
    assert sum(isinstance(e, AudioDelta) for e in seen) >= len(tts.texts)
    return seen


@pytest.mark.parametrize(
    ("first_clause", "pieces"),
    [
        (
            16,
            ["To sleep better,", "keep a regular bedtime.", "Avoid coffee late in the day."],
        ),
        (24, ["To sleep better, keep a regular bedtime.", "Avoid coffee late in the day."]),
        (0, ["To sleep better, keep a regular bedtime.", "Avoid coffee late in the day."]),
    ],
)
async def test_the_first_piece_ends_at_a_clause_break_once_long_enough(
    first_clause: int, pieces: list[str]
) -> None:
    tts = HeardTTS()
    config = PipelineConfig(stt=RecordingSTT(), llm=WordsLLM(), tts=tts, first_clause=first_clause)
    await spoken_pieces(config, tts)
    assert tts.texts == pieces


async def test_by_default_a_clause_of_about_four_words_goes_first() -> None:
    tts = HeardTTS()
    await spoken_pieces(PipelineConfig(stt=RecordingSTT(), llm=WordsLLM(), tts=tts), tts)
    assert PipelineConfig().first_clause == FIRST_CLAUSE_CHARS == 24
    # "To sleep better," is shorter: the first piece is the whole first sentence
    assert tts.texts[0] == "To sleep better, keep a regular bedtime."


def test_first_clause_is_checked() -> None:
    with pytest.raises(ConfigError, match="first_clause"):
        PipelineConfig(first_clause=-1)
    with pytest.raises(ConfigError, match="early_transcription"):
        PipelineConfig(early_transcription=-0.1)
