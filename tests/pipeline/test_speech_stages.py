"""Speech stages: offline espeak-ng and PocketSphinx, and the OpenAI audio endpoints (fake)."""

from __future__ import annotations

import time

import pytest

from voxengine.errors import AudioError, AuthenticationFailed, ConfigError, ProviderError
from voxengine.providers.pipeline import (
    EspeakTTS,
    OpenAISpeechTTS,
    OpenAITranscriptionSTT,
    PocketSphinxSTT,
)
from voxengine.testing.fakes.llm import FakeLLMServer

from .conftest import API_KEY, KEY_WORD, QUESTION, silence, spoken


async def test_espeak_streams_pcm16_at_its_native_rate() -> None:
    pytest.importorskip("espeakng_loader")
    tts = EspeakTTS()
    await tts.open()
    assert tts.sample_rate == 22_050
    chunks = [chunk async for chunk in tts.synthesize("Hello there. How are you today?")]
    assert len(chunks) > 5
    assert all(len(c) % 2 == 0 and c for c in chunks)
    seconds = sum(map(len, chunks)) / 2 / tts.sample_rate
    assert 1.0 < seconds < 4.0
    await tts.aclose()


async def test_espeak_stops_when_the_consumer_does() -> None:
    pytest.importorskip("espeakng_loader")
    tts = EspeakTTS()
    long_text = "This sentence goes on and on. " * 40
    stream = tts.synthesize(long_text)
    started = time.perf_counter()
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    assert time.perf_counter() - started < 1.0
    # the engine is free again at once
    assert [c async for c in tts.synthesize("ok")]


async def test_espeak_rejects_bad_settings() -> None:
    pytest.importorskip("espeakng_loader")
    with pytest.raises(ConfigError):
        EspeakTTS(words_per_minute=10)
    with pytest.raises(ConfigError, match="no voice"):
        await EspeakTTS(voice="xx-not-a-voice").open()


async def test_pocketsphinx_recognises_synthesized_speech() -> None:
    pytest.importorskip("pocketsphinx")
    stt = PocketSphinxSTT()
    await stt.open()
    pcm = silence(0.3) + await spoken(QUESTION) + silence(0.5)
    transcript = await stt.transcribe(pcm, 16_000)
    assert KEY_WORD in transcript.text.split()
    # other rates are resampled; silence gives an empty transcript
    assert (await stt.transcribe(silence(1.0, 24_000), 24_000)).text == ""
    with pytest.raises(AudioError):
        await stt.transcribe(b"\x00", 16_000)
    await stt.aclose()


async def test_openai_transcription_uploads_wav(fake_llm: FakeLLMServer) -> None:
    stt = OpenAITranscriptionSTT(api_key=API_KEY, base_url=fake_llm.openai_base_url, language="en")
    transcript = await stt.transcribe(silence(0.5), 16_000)
    assert transcript.text == "what time is it"
    (request,) = fake_llm.requests_to("/v1/audio/transcriptions")
    assert request.body["model"] == "gpt-4o-mini-transcribe"
    assert request.body["language"] == "en"
    assert request.body["file"] == 44 + 16_000  # a WAV header and 0.5 s of PCM16
    bad = OpenAITranscriptionSTT(api_key="nope", base_url=fake_llm.openai_base_url)
    with pytest.raises(AuthenticationFailed):
        await bad.transcribe(silence(0.1), 16_000)
    await stt.aclose()
    await bad.aclose()


async def test_openai_speech_streams_aligned_pcm(fake_llm: FakeLLMServer) -> None:
    tts = OpenAISpeechTTS(api_key=API_KEY, base_url=fake_llm.openai_base_url, voice="marin")
    assert tts.sample_rate == 24_000
    chunks = [c async for c in tts.synthesize("one two three four")]
    assert len(chunks) > 2
    assert all(len(c) % 2 == 0 for c in chunks)
    assert sum(map(len, chunks)) == 2 * round(4 * 0.3 * 24_000)
    (request,) = fake_llm.requests_to("/v1/audio/speech")
    assert request.body == {
        "model": "gpt-4o-mini-tts",
        "input": "one two three four",
        "voice": "marin",
        "response_format": "pcm",
    }
    fake_llm.fail_next(500, "server_error", "TTS is down")
    with pytest.raises(ProviderError, match="TTS is down"):
        [c async for c in tts.synthesize("x")]
    await tts.aclose()
