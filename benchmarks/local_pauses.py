"""Pauses inside a sentence: how often does the local pipeline's end of turn cut one?

A user who stops for a moment in the middle of a sentence ("I want to ... book a
table") has not finished the turn. Silero VAD ends a turn after
``silence_duration`` of silence; a shorter setting answers sooner but cuts more such
pauses. Speculative replies start after ``early_transcription`` seconds of silence;
an earlier start makes the reply ready sooner but starts (and drops) work in more
pauses.

Each case is a sentence said in two halves synthesised separately (Piper joe at two
speeds without its sampling noise, espeak-ng), their own leading and trailing
silence trimmed, joined by a pause of exactly ``pause`` seconds and followed by 1.2 s
of silence; it is fed to
:class:`~voxengine.providers.pipeline.SileroVAD` in 20 ms chunks as the pipeline
does. Reported per silence setting: the share of cases cut in two (more than one
turn); per early-transcription setting: the share of cases where that much silence
was reached inside the pause (the speculative reply starts and is dropped). Also the
highest speech probability Silero gave inside the pauses and inside the final
silences: if the two overlapped less, the probability could end turns sooner.

:func:`bench_early_wer`: the early transcription hears the turn only up to
``early_transcription`` seconds after Silero's last voiced frame; does a shorter margin
cut the end of the last word? Word error rate of Whisper on the audio the early
transcription would get, per setting, on the same voices.

Deterministic (no timing): valid on a loaded machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from voxengine.audio.vad import SpeechEnd, VADConfig
from voxengine.providers.pipeline import (
    EspeakTTS,
    PiperTTS,
    SileroVAD,
    TextToSpeech,
    WhisperSTT,
)

from .local_speech import RATE, speak, trimmed, word_error_rate

__all__ = ["HALVES", "bench_early_wer", "bench_pauses", "trimmed"]

CHUNK = 640  # 20 ms

#: Sentences and where a speaker may pause in them.
HALVES = (
    ("I want to", "book a table for two."),
    ("Can you tell me", "what the weather is like?"),
    ("Please remind me", "to call my sister tonight."),
    ("What is the best way", "to learn a new language?"),
    ("I would like", "a cup of green tea."),
    ("Tell me about", "the history of Rome."),
    ("How far is it", "from here to the station?"),
    ("Set an alarm", "for seven in the morning."),
    ("Turn the lights", "off in the kitchen."),
    ("Where can I find", "a quiet place to study?"),
)

SILENCES = (0.3, 0.4, 0.5)
EARLY = (0.1, 0.15, 0.2, 0.3)


async def _said(tts: TextToSpeech, text: str, *, trim: bool = True) -> bytes:
    pcm, _ = await speak(tts, text)
    return trimmed(pcm) if trim else pcm


def _run(
    audio: bytes, speech_end: float, pause: tuple[int, int]
) -> tuple[int, float, float, float]:
    """Feed ``audio`` to Silero with ``speech_end``: the turns it ended, the longest
    trailing silence it counted inside ``pause`` (byte offsets), and the highest speech
    probability of the windows it counted as silence there and in the silence that
    ended the turn."""
    vad = SileroVAD(VADConfig(speech_end=speech_end), RATE)
    ends, longest, in_pause, at_end = 0, 0.0, 0.0, 0.0
    for i in range(0, len(audio), CHUNK):
        ends += sum(isinstance(e, SpeechEnd) for e in vad.process(audio[i : i + CHUNK]))
        if not vad.trailing_silence:
            continue
        if pause[0] <= i < pause[1] + 2 * CHUNK:
            longest = max(longest, vad.trailing_silence)
            in_pause = max(in_pause, vad.probability)
        elif i >= pause[1]:
            at_end = max(at_end, vad.probability)
    return ends, longest, in_pause, at_end


def _voices() -> dict[str, TextToSpeech]:
    return {
        # without sampling noise: the same audio on every run
        "piper joe 1.0x": PiperTTS(noise_scale=0.0, noise_w_scale=0.0),
        "piper joe 0.8x": PiperTTS(length_scale=0.8, noise_scale=0.0, noise_w_scale=0.0),
        "espeak-ng en-us 160 wpm": EspeakTTS(voice="en-us", words_per_minute=160),
    }


async def bench_pauses(pause: float = 0.35) -> dict[str, Any]:
    voices = _voices()
    cases: list[tuple[bytes, tuple[int, int]]] = []
    for tts in voices.values():
        await tts.open()
        for first, second in HALVES:
            head = bytes(2 * int(RATE * 0.3)) + await _said(tts, first)
            gap = bytes(2 * int(RATE * pause))
            audio = head + gap + await _said(tts, second) + bytes(2 * int(RATE * 1.2))
            cases.append((audio, (len(head), len(head) + len(gap))))
    cut: dict[str, float] = {}
    longest: list[float] = []
    probability_in_pause: list[float] = []
    probability_at_end: list[float] = []
    for silence in SILENCES:
        runs = [_run(audio, silence, span) for audio, span in cases]
        cut[str(silence)] = sum(ends > 1 for ends, *_ in runs) / len(runs)
        if silence == max(SILENCES):
            longest = [r[1] for r in runs]
            probability_in_pause = [r[2] for r in runs]
            probability_at_end = [r[3] for r in runs]
    return {
        "cases": len(cases),
        "pause_seconds": pause,
        "voices": list(voices),
        "cut_share_by_silence_duration": cut,
        "speculation_started_in_pause_share_by_early_transcription": {
            str(early): sum(s >= early for s in longest) / len(longest) for early in EARLY
        },
        "longest_trailing_silence_counted_in_pause_p50": float(np.median(longest)),
        "max_speech_probability_in_pause_p50": float(np.median(probability_in_pause)),
        "max_speech_probability_in_final_silence_p50": float(np.median(probability_at_end)),
    }


def _heard_early(audio: bytes, early: float) -> bytes:
    """The audio the early transcription gets: up to the chunk where Silero has
    counted ``early`` seconds of silence after the speech (all of it if never)."""
    vad = SileroVAD(VADConfig(), RATE)
    for i in range(0, len(audio), CHUNK):
        vad.process(audio[i : i + CHUNK])
        if vad.in_speech and vad.trailing_silence >= early:
            return audio[: i + CHUNK]
    return audio


async def bench_early_wer(
    whisper: WhisperSTT, sentences: Sequence[str], settings: Sequence[float] = (0.1, 0.2)
) -> dict[str, Any]:
    """Whisper's word error rate on each sentence (0.3 s of silence, the sentence as
    synthesised, 2 s of silence) cut where the early transcription would cut it, per
    setting and voice."""
    result: dict[str, dict[str, float]] = {}
    for name, tts in _voices().items():
        await tts.open()
        spoken = [
            bytes(2 * int(RATE * 0.3)) + await _said(tts, s, trim=False) + bytes(2 * RATE)
            for s in sentences
        ]
        for early in settings:
            heard = [(await whisper.transcribe(_heard_early(a, early), RATE)).text for a in spoken]
            wer = word_error_rate(list(sentences), heard)
            result.setdefault(str(early), {})[name] = wer
    return {"sentences": len(sentences), "whisper_wer_by_early_transcription": result}
