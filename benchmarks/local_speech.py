"""Speech for the local benchmarks: the sentences, synthesis at 16 kHz, noise, and
word error rate (:mod:`benchmarks.local`, :mod:`benchmarks.local_wer`,
:mod:`benchmarks.local_pauses`)."""

from __future__ import annotations

import time

import jiwer
import numpy as np

from voxengine.audio.format import AudioFormat
from voxengine.audio.resample import convert
from voxengine.providers.pipeline import TextToSpeech

__all__ = ["RATE", "SENTENCES", "noisy", "pct", "speak", "trimmed", "word_error_rate"]

#: The sample rate every benchmark feeds the pipeline.
RATE = 16_000

SENTENCES = (
    "What is the capital of France?",
    "Please turn off the lights in the kitchen.",
    "How long does it take to boil an egg?",
    "Tell me a short story about a brave little dog.",
    "What time does the library open tomorrow?",
    "Can you recommend a good book about history?",
    "Remind me to call my sister this evening.",
    "What is the weather like in London today?",
    "How do I make a cup of green tea?",
    "Play some relaxing music in the living room.",
    "Why is the sky blue during the day?",
    "Set an alarm for seven in the morning.",
    "What is the difference between a frog and a toad?",
    "Add milk and bread to my shopping list.",
    "How far away is the moon from the earth?",
    "Who wrote the play Romeo and Juliet?",
    "Translate good morning into Spanish.",
    "What should I cook for dinner tonight?",
    "Open the front door for the delivery driver.",
    "How many legs does a spider have?",
    "Explain how a rainbow is formed.",
    "Send a message to my boss saying I am running late.",
    "What is the tallest mountain in the world?",
    "Turn the volume down a little please.",
    "Where can I find a quiet place to study?",
    "How do plants make their own food?",
    "Tell me a joke about computers.",
    "What is the best way to learn a new language?",
    "Book a table for two at an Italian restaurant.",
    "Why do cats like to sleep so much?",
    "What are the planets in our solar system?",
    "Close the window in the bedroom.",
)

_CLEAN = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
        jiwer.ReduceToListOfListOfWords(),
    ]
)


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """jiwer's WER, lower-cased and without punctuation; an empty hypothesis counts as a
    wrong word (jiwer refuses empty strings)."""
    return float(
        jiwer.wer(
            references,
            [h if h.strip() else "<empty>" for h in hypotheses],
            reference_transform=_CLEAN,
            hypothesis_transform=_CLEAN,
        )
    )


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile of ``values``."""
    return float(np.percentile(np.asarray(values), q))


async def speak(tts: TextToSpeech, text: str) -> tuple[bytes, float]:
    """``text`` spoken by ``tts``: PCM16 at :data:`RATE`, and the synthesis seconds."""
    started = time.perf_counter()
    pcm = b"".join([chunk async for chunk in tts.synthesize(text)])
    seconds = time.perf_counter() - started
    return convert(
        pcm, AudioFormat(sample_rate=tts.sample_rate), AudioFormat(sample_rate=RATE)
    ), seconds


def noisy(pcm: bytes, snr_db: float, seed: int) -> bytes:
    """``pcm`` with white noise at ``snr_db`` dB signal-to-noise (seeded)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    power = float(np.mean(samples**2)) or 1.0
    noise = np.random.default_rng(seed).normal(
        0, np.sqrt(power / 10 ** (snr_db / 10)), samples.size
    )
    return (samples + noise).clip(-32768, 32767).astype("<i2").tobytes()


def trimmed(pcm: bytes, level: int = 500) -> bytes:
    """``pcm`` (PCM16) without its leading and trailing samples quieter than ``level``."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.nonzero(np.abs(samples.astype(np.int32)) > level)[0]
    if not loud.size:
        return b""
    return samples[loud[0] : loud[-1] + 1].tobytes()
