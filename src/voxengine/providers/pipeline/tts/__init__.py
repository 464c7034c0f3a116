"""Text-to-speech stages: offline Piper and espeak-ng, and OpenAI's speech endpoint.

* :class:`~.piper.PiperTTS` — Piper neural voices, offline (the ``local`` extra): the
  default voice of the local pipeline.
* :class:`EspeakTTS` — the *fallback* voice when the ``local`` extra is not installed
  (robotic, instant; also the deterministic voice of tests): espeak-ng through the
  shared library that the ``espeakng-loader`` pip package ships (no system install,
  no download), at its native 22050 Hz, in a worker thread. Chosen over the
  ``espeak-ng`` command line because it needs no apt package, starts no process per
  sentence, streams ~60 ms chunks as they are synthesised, and can be aborted
  mid-sentence.
* :class:`OpenAISpeechTTS` — ``POST /v1/audio/speech`` with ``response_format=pcm``
  (24 kHz PCM16), streamed.

All implement :class:`~voxengine.providers.pipeline.stages.TextToSpeech`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Final, final

from voxengine.errors import ConfigError

from .._espeak import load_espeak
from .._http import OPENAI_BASE_URL, HttpSettings, HttpStage, openai_key, post_stream
from .piper import PiperTTS

__all__ = [
    "EspeakTTS",
    "OpenAISpeechTTS",
    "PiperTTS",
]

_DONE: Final = object()


@final
class EspeakTTS:
    """Offline speech synthesis with espeak-ng (robotic but intelligible, instant).

    Args:
        voice: espeak-ng voice name, e.g. ``"en-us"``, ``"en-gb"``, ``"en-us+f2"``.
        words_per_minute: speaking rate (80..450).
        pitch: base pitch 0..100 (``None``: the voice's default, 50).

    Raises:
        ConfigError: out-of-range settings. An unknown voice or a missing
            ``espeakng-loader`` package raises ConfigError on :meth:`open`.
    """

    def __init__(
        self, *, voice: str = "en-us", words_per_minute: int = 175, pitch: int | None = None
    ) -> None:
        if not 80 <= words_per_minute <= 450:
            raise ConfigError("words_per_minute must be within 80..450")
        if pitch is not None and not 0 <= pitch <= 100:
            raise ConfigError("pitch must be within 0..100")
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.pitch = pitch

    def __repr__(self) -> str:
        return f"EspeakTTS(voice={self.voice!r}, words_per_minute={self.words_per_minute})"

    @property
    def label(self) -> str:
        """``"espeak-ng <voice>"``."""
        return f"espeak-ng {self.voice}"

    @property
    def sample_rate(self) -> int:
        """espeak-ng's output rate (22050 Hz); loads the library on first use."""
        return load_espeak().sample_rate

    async def open(self) -> None:
        """Load the library and check the voice (by speaking nothing)."""
        engine = await asyncio.to_thread(load_espeak)
        await asyncio.to_thread(
            engine.synthesize,
            "",
            voice=self.voice,
            words_per_minute=self.words_per_minute,
            pitch=self.pitch,
            on_audio=lambda _: None,
            abort=threading.Event(),
        )

    async def aclose(self) -> None:
        """Nothing to release (the library stays loaded for the process)."""

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield PCM16 mono at 22050 Hz for ``text`` as espeak-ng produces it.

        Closing the iterator early aborts synthesis and waits (briefly) for the worker
        thread to stop, so no audio is delivered after the close returns.
        """
        engine = load_espeak()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        abort = threading.Event()

        def post(item: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                engine.synthesize(
                    text,
                    voice=self.voice,
                    words_per_minute=self.words_per_minute,
                    pitch=self.pitch,
                    on_audio=post,
                    abort=abort,
                )
            except Exception as exc:  # delivered to the consumer below
                post(exc)
            finally:
                post(_DONE)

        worker = loop.run_in_executor(None, work)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise item
                assert isinstance(item, bytes)
                yield item
        finally:
            abort.set()
            await asyncio.wait({worker})


@final
class OpenAISpeechTTS(HttpStage):
    """OpenAI text-to-speech (``/v1/audio/speech``), streamed as 24 kHz PCM16.

    Args:
        model: e.g. ``"gpt-4o-mini-tts"``, ``"tts-1"``.
        voice: e.g. ``"alloy"``, ``"marin"``.
        base_url: API root including ``/v1``.
        api_key: see :func:`._http.openai_key` (``$OPENAI_API_KEY`` for OpenAI itself).
        instructions: speaking style, for models that take it.
        http: timeouts.
    """

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        instructions: str | None = None,
        http: HttpSettings | None = None,
    ) -> None:
        key = openai_key(api_key, base_url)
        headers = {"content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        super().__init__(base_url, headers, http or HttpSettings())
        self.model = model
        self.voice = voice
        self.instructions = instructions

    def __repr__(self) -> str:
        return f"OpenAISpeechTTS(model={self.model!r}, voice={self.voice!r})"

    @property
    def label(self) -> str:
        """``"openai <model> <voice>"``."""
        return f"openai {self.model} {self.voice}"

    @property
    def sample_rate(self) -> int:
        """24000 Hz, the rate of ``response_format=pcm``."""
        return 24_000

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Stream the speech for ``text``; chunks are whole samples.

        Raises:
            TransportError: as the HTTP exchange fails (``AuthenticationFailed``,
                ``ConnectFailed``), or ``ProviderError`` (``RateLimited``) from the reply.
        """
        body: dict[str, str] = {
            "model": self.model,
            "input": text,
            "voice": self.voice,
            "response_format": "pcm",
        }
        if self.instructions:
            body["instructions"] = self.instructions
        odd = b""
        async with post_stream(self._client_now(), "/audio/speech", json=body) as response:
            async for data in response.aiter_bytes():
                data = odd + data
                cut = len(data) - len(data) % 2
                odd = data[cut:]
                if cut:
                    yield data[:cut]
