"""Word error rate of Whisper and PocketSphinx on the same sentences, synthesised with
three voices, clean and in noise; the real-time factors of STT and of Piper
(``python -m benchmarks.local --sections wer``)."""

from __future__ import annotations

import time
from typing import Any

from voxengine.providers.pipeline import (
    EspeakTTS,
    PiperTTS,
    PocketSphinxSTT,
    TextToSpeech,
    WhisperSTT,
)

from .local_speech import RATE, SENTENCES, noisy, pct, speak, word_error_rate

__all__ = ["bench_wer"]


async def bench_wer(whisper: WhisperSTT, count: int) -> dict[str, Any]:
    """Word error rates per voice and noise condition over the first ``count``
    sentences, with two examples each, and the real-time factors (p50)."""
    sphinx = PocketSphinxSTT()
    await sphinx.open()
    voices: dict[str, TextToSpeech] = {
        "piper joe 1.0x": PiperTTS(),
        "piper joe 0.8x (faster)": PiperTTS(length_scale=0.8),
        "espeak-ng en-us 160 wpm": EspeakTTS(voice="en-us", words_per_minute=160),
    }
    sentences = list(SENTENCES[:count])
    conditions: dict[str, Any] = {}
    tts_rtf: list[float] = []
    stt_rtf: list[float] = []
    for name, tts in voices.items():
        await tts.open()
        for noise in (False, True):
            refs, heard_whisper, heard_sphinx = [], [], []
            for i, sentence in enumerate(sentences):
                pcm, synth_seconds = await speak(tts, sentence)
                seconds = len(pcm) / (2 * RATE)
                if isinstance(tts, PiperTTS) and not noise:
                    tts_rtf.append(synth_seconds / seconds)
                if noise:
                    pcm = noisy(pcm, 10.0, seed=i)
                started = time.perf_counter()
                heard = await whisper.transcribe(pcm, RATE)
                stt_rtf.append((time.perf_counter() - started) / seconds)
                refs.append(sentence)
                heard_whisper.append(heard.text)
                heard_sphinx.append((await sphinx.transcribe(pcm, RATE)).text)
            label = f"{name}, {'white noise 10 dB SNR' if noise else 'clean'}"
            conditions[label] = {
                "whisper_wer": word_error_rate(refs, heard_whisper),
                "pocketsphinx_wer": word_error_rate(refs, heard_sphinx),
                "examples": list(zip(refs[:2], heard_whisper[:2], heard_sphinx[:2], strict=True)),
            }
            print(
                f"  {label}: whisper {conditions[label]['whisper_wer']:.1%}, "
                f"pocketsphinx {conditions[label]['pocketsphinx_wer']:.1%}",
                flush=True,
            )
    return {
        "sentences": len(sentences),
        "whisper_window": whisper.window,
        "conditions": conditions,
        "stt_rtf_p50": pct(stt_rtf, 50),
        "tts_rtf_p50": pct(tts_rtf, 50),
    }
