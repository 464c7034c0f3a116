"""What every benchmark client shares: the recorder and the client interface."""

from __future__ import annotations

import abc
import asyncio
import time
from typing import Any, ClassVar

__all__ = ["API_KEY", "BenchClient", "Recorder", "user_text_item"]

API_KEY = "sk-bench"
_perf_counter = time.perf_counter


class Recorder:
    """What the application saw, with ``perf_counter`` stamps."""

    __slots__ = ("audio", "audio_bytes", "done", "transcript")

    def __init__(self) -> None:
        self.audio: list[float] = []
        self.transcript: list[float] = []
        self.audio_bytes = 0
        self.done = asyncio.Event()

    def on_audio(self, pcm: bytes) -> None:
        """An audio chunk reached the application."""
        self.audio.append(_perf_counter())
        self.audio_bytes += len(pcm)

    def on_transcript(self) -> None:
        """An assistant transcript fragment reached the application."""
        self.transcript.append(_perf_counter())

    def on_done(self) -> None:
        """The response ended."""
        self.done.set()


class BenchClient(abc.ABC):
    """One realtime session of one client library."""

    name: ClassVar[str]

    def __init__(self, recorder: Recorder) -> None:
        self.rec = recorder

    @abc.abstractmethod
    async def connect(self, base_url: str, model: str) -> None:
        """Open the session on ``base_url`` (``ws://host:port/v1``) and finish the handshake."""

    @abc.abstractmethod
    async def send_text(self, text: str) -> None:
        """Add a user message and ask for a response."""

    @abc.abstractmethod
    async def send_audio(self, pcm: bytes) -> None:
        """Append PCM16 24 kHz mono audio to the input buffer."""

    @abc.abstractmethod
    async def close(self) -> None:
        """End the session."""


def user_text_item(text: str) -> dict[str, Any]:
    """A ``conversation.item.create`` user message item."""
    return {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": text}],
    }
