"""Fixtures for the local-model tests: each model is loaded once per test session.

Every test here is marked ``local_models`` and skipped only when the ``local`` extra is
not installed (CI installs it, so CI runs them). The speech they recognise is speech
they synthesise themselves with Piper or espeak-ng, so the expected words are known.
"""

from __future__ import annotations

import os

import jiwer
import numpy as np
import pytest

from voxengine.audio.format import AudioFormat
from voxengine.audio.resample import convert
from voxengine.providers.pipeline import LlamaCppLLM, PiperTTS, WhisperSTT
from voxengine.providers.pipeline._packaged import local_extra_installed

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may reach the Hugging Face hub

if not local_extra_installed():  # pragma: no cover - CI installs the extra
    pytest.skip("the 'local' extra is not installed", allow_module_level=True)


@pytest.fixture(scope="session")
def whisper() -> WhisperSTT:
    """A Whisper stage; the model loads on first use and is shared by all tests."""
    return WhisperSTT()


@pytest.fixture(scope="session")
def piper() -> PiperTTS:
    """A Piper stage with the packaged voice (loaded once)."""
    return PiperTTS()


@pytest.fixture(scope="session")
def llama() -> LlamaCppLLM:
    """SmolLM2 through llama.cpp (loaded once), greedy so replies are repeatable."""
    return LlamaCppLLM(temperature=0.0)


@pytest.fixture
async def opened(
    whisper: WhisperSTT, piper: PiperTTS, llama: LlamaCppLLM
) -> tuple[WhisperSTT, PiperTTS, LlamaCppLLM]:
    """The three stages, opened (a no-op after the first test)."""
    for stage in (whisper, piper, llama):
        await stage.open()
    return whisper, piper, llama


async def piper_speech(tts: PiperTTS, text: str, *, sample_rate: int = 16_000) -> bytes:
    """``text`` spoken by Piper, as PCM16 at ``sample_rate``."""
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    return convert(
        pcm, AudioFormat(sample_rate=tts.sample_rate), AudioFormat(sample_rate=sample_rate)
    )


def trimmed(pcm: bytes, level: int = 500) -> bytes:
    """``pcm`` (PCM16) without its leading and trailing samples quieter than ``level``
    (about -36 dBFS): the speech of a synthesised utterance without its padding."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > level)[0]
    assert loud.size, "no speech in the audio"
    return samples[loud[0] : loud[-1] + 1].tobytes()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER after lower-casing and dropping punctuation (jiwer)."""
    clean = jiwer.Compose(
        [
            jiwer.ToLowerCase(),
            jiwer.RemovePunctuation(),
            jiwer.RemoveMultipleSpaces(),
            jiwer.Strip(),
            jiwer.ReduceToListOfListOfWords(),
        ]
    )
    return float(
        jiwer.wer(reference, hypothesis, reference_transform=clean, hypothesis_transform=clean)
    )
