"""Fixtures for the pipeline tests: the fake HTTP APIs and real synthesized speech."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voxengine.audio.format import AudioFormat
from voxengine.audio.resample import convert
from voxengine.testing.fakes.llm import FakeLLMConfig, FakeLLMServer, run_fake_llm_server

API_KEY = "test-key"


@pytest.fixture
async def fake_llm() -> AsyncIterator[FakeLLMServer]:
    async with run_fake_llm_server(FakeLLMConfig(api_key=API_KEY)) as server:
        yield server


#: The spoken question of the speech tests, and the word each must recognise.
QUESTION = "what is the weather like today"
KEY_WORD = "weather"


async def spoken(text: str, *, sample_rate: int = 16_000) -> bytes:
    """``text`` spoken by espeak-ng, as PCM16 at ``sample_rate``.

    espeak-ng's waveform differs slightly on every call, and PocketSphinx's default US
    English model is brittle on synthetic voices: tests speak :data:`QUESTION` with a
    voice and rate it recognised in every one of 60 trials (``"what time is it"`` with
    the same voice failed about one time in ten).
    """
    pytest.importorskip("espeakng_loader")
    from voxengine.providers.pipeline import EspeakTTS

    tts = EspeakTTS(voice="en-us", words_per_minute=160)
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    return convert(
        pcm, AudioFormat(sample_rate=tts.sample_rate), AudioFormat(sample_rate=sample_rate)
    )


def silence(seconds: float, sample_rate: int = 16_000) -> bytes:
    return bytes(2 * round(seconds * sample_rate))
