"""Fixtures for the browser endpoints: the app on a real uvicorn, spoken WAV files."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette

from voxengine.audio.format import AudioFormat
from voxengine.audio.wav import write_wav
from voxengine.serve.server import serving as serve_app

SPEECH_RATE = 22_050


@contextlib.asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    """``app`` on uvicorn at 127.0.0.1 (a free port); yields its base URL."""
    async with serve_app(app) as running:
        yield running.http_url


async def speak(text: str, *, words_per_minute: int = 160) -> tuple[bytes, int]:
    """``text`` spoken by espeak-ng (PCM16 mono at its rate); skips without espeak."""
    if importlib.util.find_spec("espeakng_loader") is None:
        pytest.skip("espeak-ng (the espeakng-loader package) is not installed")
    from voxengine.providers.pipeline import EspeakTTS

    tts = EspeakTTS(voice="en-us", words_per_minute=words_per_minute)
    await tts.open()
    try:
        return b"".join([c async for c in tts.synthesize(text)]), tts.sample_rate
    finally:
        await tts.aclose()


@pytest.fixture
def spoken_wav(tmp_path: Path) -> Callable[..., Awaitable[Path]]:
    """Writes a WAV of spoken phrases, each followed by ``gap`` seconds of silence."""

    async def make(
        *phrases: str, gap: float = 1.5, lead: float = 0.5, name: str = "mic.wav"
    ) -> Path:
        parts: list[bytes] = []
        rate = SPEECH_RATE
        for phrase in phrases:
            pcm, rate = await speak(phrase)
            parts.append(pcm)
            parts.append(bytes(AudioFormat(sample_rate=rate).bytes_for(gap)))
        fmt = AudioFormat(sample_rate=rate)
        path = tmp_path / name
        write_wav(path, bytes(fmt.bytes_for(lead)) + b"".join(parts), fmt)
        return path

    return make
