"""A minimal ctypes binding to the espeak-ng shared library shipped by ``espeakng-loader``.

espeak-ng keeps process-wide state (one output callback, one current voice), so this
module holds ONE :class:`Espeak` per process and serialises every synthesis with a
lock; calls block and are meant for a worker thread. The C API used (``speak_lib.h``):
``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, espeakINITIALIZE_DONT_EXIT)``
returns the sample rate (22050 Hz); ``espeak_SetSynthCallback`` receives the audio in
chunks of about 60 ms while ``espeak_Synth`` runs; the callback returning 1 aborts.
"""

from __future__ import annotations

import ctypes
import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, final

from voxengine.errors import ConfigError, ProviderError

__all__ = ["Espeak", "load_espeak"]

_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_INITIALIZE_DONT_EXIT: Final = 0x8000
_POS_CHARACTER: Final = 1
_CHARS_UTF8: Final = 1
_RATE: Final = 1
_VOLUME: Final = 2
_PITCH: Final = 3

_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


@dataclass(slots=True)
class _Job:
    on_audio: Callable[[bytes], None]
    abort: threading.Event


@final
class Espeak:
    """The loaded library; use :func:`load_espeak` rather than constructing it."""

    def __init__(self, library_path: str, data_path: str) -> None:
        lib: Any = ctypes.CDLL(library_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise ConfigError(f"espeak-ng failed to initialise with data at {data_path}")
        self.sample_rate: int = rate
        self._lib = lib
        self._lock = threading.Lock()
        self._job: _Job | None = None
        self._callback = _Callback(self._on_audio)  # keep a reference: C holds the pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, samples: int, events: Any) -> int:
        job = self._job
        if job is None:
            return 1
        if wav and samples > 0:
            job.on_audio(ctypes.string_at(wav, samples * 2))
        return 1 if job.abort.is_set() else 0

    def synthesize(
        self,
        text: str,
        *,
        voice: str,
        words_per_minute: int,
        pitch: int | None,
        on_audio: Callable[[bytes], None],
        abort: threading.Event,
    ) -> None:
        """Speak ``text``, calling ``on_audio`` with PCM16 chunks; blocks until done.

        Setting ``abort`` stops synthesis at the next chunk.

        Raises:
            ConfigError: unknown voice. ProviderError: espeak-ng reported an error.
        """
        data = text.encode("utf-8") + b"\0"
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ConfigError(f"espeak-ng has no voice {voice!r}")
            self._lib.espeak_SetParameter(_RATE, words_per_minute, 0)
            if pitch is not None:
                self._lib.espeak_SetParameter(_PITCH, pitch, 0)
            else:
                self._lib.espeak_SetParameter(_PITCH, 50, 0)
            self._job = _Job(on_audio=on_audio, abort=abort)
            try:
                status = self._lib.espeak_Synth(
                    data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
            finally:
                self._job = None
        if status != 0 and not abort.is_set():
            raise ProviderError("espeak_error", f"espeak_Synth returned {status}")


_ENGINE: Espeak | None = None
_ENGINE_LOCK = threading.Lock()


def load_espeak() -> Espeak:
    """The process-wide espeak-ng engine, loaded on first use.

    Raises:
        ConfigError: the ``espeakng-loader`` package is not installed or the library
            cannot be loaded.
    """
    global _ENGINE
    with _ENGINE_LOCK:
        if _ENGINE is None:
            try:
                loader: Any = importlib.import_module("espeakng_loader")
            except ImportError as exc:
                raise ConfigError(
                    "EspeakTTS needs the 'espeakng-loader' package: pip install espeakng-loader"
                ) from exc
            try:
                _ENGINE = Espeak(loader.get_library_path(), loader.get_data_path())
            except (OSError, RuntimeError) as exc:
                raise ConfigError(f"cannot load espeak-ng: {exc}") from exc
        return _ENGINE
