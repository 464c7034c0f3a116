"""Pipeline stages scripted by the same responders as the fake servers.

:class:`ScriptedLLM` answers a :class:`~voxengine.providers.pipeline.PipelineProvider`
conversation with a :data:`~voxengine.testing.Responder` (the function that scripts
the fake OpenAI and Gemini servers), streaming its :class:`~voxengine.testing.FakeReply`
word by word and its tool calls as real tool-call chunks. :class:`ScriptedSTT`
"recognises" any audio with speech energy as a fixed sentence. With them the
conformance suite tests the pipeline's plumbing (turns, streaming, barge-in, tools)
deterministically; recognition accuracy is tested against real speech elsewhere.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, final

from voxengine.audio.pcm16 import rms
from voxengine.config import ToolSpec
from voxengine.events import Role, Usage
from voxengine.providers.pipeline.stages import (
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LLMChunk,
    TextChunk,
    ToolArgumentsChunk,
    ToolCallChunk,
    ToolCallRequest,
    Transcript,
)
from voxengine.testing.fakes.openai import FakeTurn, Responder

__all__ = ["ScriptedLLM", "ScriptedSTT"]


def _history(messages: Sequence[ChatMessage]) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"role": m.role.value, "text": m.text, "tool_call_id": m.tool_call_id} for m in messages
    )


@final
class ScriptedLLM:
    """A :class:`~voxengine.providers.pipeline.LanguageModel` driven by a responder.

    Args:
        responder: turns the conversation's last turn into a reply.
        delay: seconds between streamed words (lets tests interrupt a reply).
    """

    def __init__(self, responder: Responder, *, delay: float = 0.0) -> None:
        self._responder = responder
        self._delay = delay
        self._calls = itertools.count(1)

    @property
    def label(self) -> str:
        """Names the stage in logs."""
        return "scripted responder (test double)"

    async def open(self) -> None:
        """Nothing to load."""

    async def aclose(self) -> None:
        """Nothing to release."""

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings,
    ) -> AsyncIterator[LLMChunk]:
        """The responder's reply to the last turn, word by word, then its tool calls."""
        last = messages[-1] if messages else ChatMessage(role=Role.USER)
        turn = FakeTurn(
            kind="tool_output" if last.role is Role.TOOL else "text",
            text=last.text,
            audio_seconds=0.0,
            history=_history(messages),
        )
        reply = self._responder(turn)
        words = reply.text.split(" ") if reply.text else []
        for index, word in enumerate(words):
            if self._delay:
                await asyncio.sleep(self._delay)
            yield TextChunk(text=word if index == 0 else f" {word}")
        for call in reply.tool_calls:
            call_id = f"call_scripted_{next(self._calls)}"
            yield ToolArgumentsChunk(call_id=call_id, name=call.name, delta=call.arguments)
            yield ToolCallChunk(
                call=ToolCallRequest(call_id=call_id, name=call.name, arguments=call.arguments)
            )
        prompt = sum(len(m.text.split()) for m in messages)
        output = len(words) + sum(len(json.dumps(c.arguments)) // 4 for c in reply.tool_calls)
        yield FinishChunk(
            stop_reason="tool_use" if reply.tool_calls else "end_turn",
            usage=Usage(
                input_tokens=prompt,
                output_tokens=output,
                total_tokens=prompt + output,
                input_text_tokens=prompt,
                output_text_tokens=output,
            ),
        )


@final
class ScriptedSTT:
    """A :class:`~voxengine.providers.pipeline.SpeechToText` that hears ``text`` in any
    audio louder than ``threshold`` (RMS, full scale 1.0), and nothing otherwise."""

    def __init__(self, text: str = "hello there", *, threshold: float = 0.01) -> None:
        self._text = text
        self._threshold = threshold

    @property
    def label(self) -> str:
        """Names the stage in logs."""
        return "scripted recogniser (test double)"

    async def open(self) -> None:
        """Nothing to load."""

    async def aclose(self) -> None:
        """Nothing to release."""

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        """``text`` if ``pcm`` carries sound, else an empty transcript."""
        return Transcript(text=self._text if rms(pcm) > self._threshold else "")
