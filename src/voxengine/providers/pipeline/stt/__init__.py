"""Speech-to-text stages: offline Whisper and PocketSphinx, and OpenAI's transcription endpoint.

* :class:`~.whisper.WhisperSTT` — Whisper base through faster-whisper, offline (the
  ``local`` extra): the default recogniser of the local pipeline.
* :class:`PocketSphinxSTT` — the *fallback* recogniser when the ``local`` extra is not
  installed: — CMU PocketSphinx with the US English model the
  ``pocketsphinx`` pip package ships (no download), in a worker thread. Fast (about
  0.2 x real time) and offline, but far less accurate than modern cloud recognisers:
  fine for tests and command-style input.
* :class:`OpenAITranscriptionSTT` — ``POST /v1/audio/transcriptions`` (multipart WAV).

All implement :class:`~voxengine.providers.pipeline.stages.SpeechToText`.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import threading
import wave
from collections.abc import Mapping
from typing import Any, final

from voxengine.audio.format import AudioFormat
from voxengine.audio.pcm16 import validate_pcm16
from voxengine.audio.resample import convert
from voxengine.errors import ConfigError, ProtocolViolation

from .._http import (
    OPENAI_BASE_URL,
    HttpSettings,
    HttpStage,
    error_for_status,
    map_http_errors,
    openai_key,
)
from ..stages import Transcript
from .whisper import WhisperSTT

__all__ = [
    "OpenAITranscriptionSTT",
    "PocketSphinxSTT",
    "WhisperSTT",
]

_RATE = 16_000


@final
class PocketSphinxSTT:
    """Offline speech recognition with PocketSphinx (US English by default).

    Audio at other rates is resampled to 16 kHz. Decoding runs in a worker thread;
    one decoder per instance, used by one thread at a time.

    Args:
        options: extra decoder settings passed to ``pocketsphinx.Decoder`` (e.g.
            ``{"hmm": ..., "lm": ..., "dict": ...}`` for another language model, or
            ``{"jsgf": path}`` for a grammar). Logging is off unless ``loglevel`` is set.

    Raises:
        ConfigError: on :meth:`open`, if ``pocketsphinx`` is not installed or rejects
            the options.
    """

    def __init__(self, *, options: Mapping[str, str | int | float | bool] | None = None) -> None:
        self._options: dict[str, str | int | float | bool] = {
            "loglevel": "FATAL",
            **(options or {}),
        }
        self._options["samprate"] = _RATE
        self._decoder: Any = None
        self._lock = threading.RLock()  # _decode holds it while _load takes it

    def __repr__(self) -> str:
        return f"PocketSphinxSTT(options={self._options!r})"

    @property
    def label(self) -> str:
        """``"pocketsphinx"`` plus the model directory when one is configured."""
        hmm = self._options.get("hmm")
        return f"pocketsphinx {hmm}" if hmm else "pocketsphinx en-us"

    def _load(self) -> Any:
        with self._lock:
            if self._decoder is None:
                try:
                    module: Any = importlib.import_module("pocketsphinx")
                except ImportError as exc:
                    raise ConfigError(
                        "PocketSphinxSTT needs the 'pocketsphinx' package: pip install pocketsphinx"
                    ) from exc
                try:
                    self._decoder = module.Decoder(**self._options)
                except (RuntimeError, ValueError, KeyError) as exc:
                    raise ConfigError(f"pocketsphinx rejected the options: {exc}") from exc
            return self._decoder

    async def open(self) -> None:
        """Load the acoustic and language models (about 0.3 s)."""
        await asyncio.to_thread(self._load)

    async def aclose(self) -> None:
        """Keep the loaded decoder for the next session (nothing to release)."""

    def _decode(self, pcm: bytes) -> Transcript:
        decoder = self._load()
        with self._lock:
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
        if hyp is None:
            return Transcript(text="")
        return Transcript(text=str(hyp.hypstr).strip())

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        """Recognise ``pcm``. ``confidence`` is None: PocketSphinx's posterior for a whole
        utterance is tiny even when every word is right, so it is not reported.

        Raises:
            AudioError: ``pcm`` is not whole PCM16 samples.
        """
        fmt = AudioFormat(sample_rate=sample_rate)
        data = validate_pcm16(pcm, fmt)
        if sample_rate != _RATE:
            data = convert(data, fmt, AudioFormat(sample_rate=_RATE))
        return await asyncio.to_thread(self._decode, data)


def _wav(pcm: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()


@final
class OpenAITranscriptionSTT(HttpStage):
    """OpenAI speech-to-text (``/v1/audio/transcriptions``): the turn is uploaded as WAV.

    Args:
        model: e.g. ``"gpt-4o-mini-transcribe"``, ``"gpt-4o-transcribe"``, ``"whisper-1"``.
        base_url: API root including ``/v1``.
        api_key: see :func:`._http.openai_key` (``$OPENAI_API_KEY`` for OpenAI itself).
        language: ISO-639-1 hint such as ``"en"``.
        http: timeouts.
    """

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini-transcribe",
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        language: str | None = None,
        http: HttpSettings | None = None,
    ) -> None:
        key = openai_key(api_key, base_url)
        headers = {"authorization": f"Bearer {key}"} if key else {}
        super().__init__(base_url, headers, http or HttpSettings())
        self.model = model
        self.language = language

    def __repr__(self) -> str:
        return f"OpenAITranscriptionSTT(model={self.model!r})"

    @property
    def label(self) -> str:
        """``"openai <model>"``."""
        return f"openai {self.model}"

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        """Upload ``pcm`` as a WAV file and return the ``text`` of the JSON reply.

        Raises:
            TransportError: as the HTTP exchange fails (``AuthenticationFailed``,
                ``ConnectFailed``), or ``ProviderError`` (``RateLimited``) from the reply.
            ProtocolViolation: a reply without ``text``.
        """
        data = validate_pcm16(pcm, AudioFormat(sample_rate=sample_rate))
        form = {"model": self.model, "response_format": "json"}
        if self.language:
            form["language"] = self.language
        files = {"file": ("speech.wav", _wav(data, sample_rate), "audio/wav")}
        with map_http_errors():
            response = await self._client_now().post(
                "/audio/transcriptions", data=form, files=files
            )
        if response.status_code >= 400:
            raise error_for_status(response.status_code, response.content, response.headers)
        try:
            text = response.json()["text"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ProtocolViolation("transcription reply has no 'text'") from exc
        return Transcript(text=str(text).strip())
