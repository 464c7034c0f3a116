"""Opt-in tests against the real APIs (``pytest -m live``); skipped without keys."""

from __future__ import annotations

import os

import pytest

from voxengine.config import SessionConfig
from voxengine.events import ResponseDone, ResponseStatus, Role, TextDelta, TranscriptDelta
from voxengine.providers.pipeline import (
    AnthropicLLM,
    AnthropicPipelineConfig,
    AnthropicPipelineProvider,
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    OpenAIChatLLM,
    TextChunk,
)

pytestmark = pytest.mark.live

needs_anthropic = pytest.mark.skipif(
    not os.environ.get("ANTHROPIC_API_KEY"), reason="needs ANTHROPIC_API_KEY"
)
needs_openai = pytest.mark.skipif(
    not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY"
)

QUESTION = [ChatMessage(role=Role.USER, text="Say the word 'pineapple' and nothing else.")]


@needs_anthropic
async def test_anthropic_streams() -> None:
    llm = AnthropicLLM()
    chunks = [c async for c in llm.stream(QUESTION, [], GenerationSettings(max_output_tokens=20))]
    await llm.aclose()
    assert "pineapple" in "".join(c.text for c in chunks if isinstance(c, TextChunk)).lower()
    assert isinstance(chunks[-1], FinishChunk)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.output_tokens > 0


@needs_openai
async def test_openai_chat_streams() -> None:
    llm = OpenAIChatLLM(model=os.environ.get("VOXENGINE_OPENAI_CHAT_MODEL", "gpt-4o-mini"))
    chunks = [c async for c in llm.stream(QUESTION, [], GenerationSettings(max_output_tokens=20))]
    await llm.aclose()
    assert "pineapple" in "".join(c.text for c in chunks if isinstance(c, TextChunk)).lower()


@needs_anthropic
async def test_anthropic_pipeline_text_turn() -> None:
    pytest.importorskip("espeakng_loader")
    pytest.importorskip("pocketsphinx")
    provider = AnthropicPipelineProvider(
        AnthropicPipelineConfig(session=SessionConfig(instructions="Answer in one short sentence."))
    )
    await provider.connect()
    await provider.send_text("What is the capital of France?")
    text = ""
    async for event in provider.events():
        if isinstance(event, TextDelta | TranscriptDelta):
            text += event.delta
        if isinstance(event, ResponseDone):
            assert event.status is ResponseStatus.COMPLETED
            break
    await provider.disconnect()
    assert "paris" in text.lower()
