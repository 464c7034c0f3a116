"""Fixtures for the pipeline tests: the fake HTTP APIs and real synthesized speech."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voxengine.audio.format import AudioFormat
from voxengine.audio.resample import convert
from voxengine.testing._fake_llm import FakeLLMConfig, FakeLLMServer, run_fake_llm_server

API_KEY = "test-key"


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLMServer]:
    async with run_fake_llm_server(FakeLLMConfig(api_key=API_KEY)) as server:
        yield server


async def spoken(text: str, *, sample_rate: int = 16_000) -> bytes:
    """``text`` spoken by espeak-ng, as PCM16 at ``sample_rate``.

    Voice and rate are ones PocketSphinx's default US English model recognises
    reliably (espeak's default voice is much harder for it).
    """
    pytest.importorskip("espeakng_loader")
    from voxengine.providers.pipeline import EspeakTTS

    tts = EspeakTTS(voice="en-us+f2", words_per_minute=160)
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    return convert(
        pcm, AudioFormat(sample_rate=tts.sample_rate), AudioFormat(sample_rate=sample_rate)
    )


def silence(seconds: float, sample_rate: int = 16_000) -> bytes:
    return bytes(2 * round(seconds * sample_rate))
