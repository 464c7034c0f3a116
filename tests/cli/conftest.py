"""Helpers for end-to-end CLI tests: run ``python -m voxengine`` and make WAV files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from voxengine.audio.format import AudioFormat
from voxengine.audio.wav import write_wav
from voxengine.testing import synthesize_speech

#: Environment of CLI subprocesses: no real keys, so nothing can reach a live service.
_SCRUBBED = ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT")

Vox = Callable[..., subprocess.CompletedProcess[str]]


def cli_env() -> dict[str, str]:
    """The environment for a CLI subprocess."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@pytest.fixture
def vox(tmp_path: Path) -> Vox:
    """Run ``python -m voxengine ARGS`` in ``tmp_path`` with a timeout."""

    def run(
        *args: str, stdin: str = "", timeout: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "voxengine", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
            env=env or cli_env(),
            check=False,
        )

    return run


def speech_wav(path: Path, words: str, sample_rate: int = 24_000) -> Path:
    """Write speech-like audio for ``words`` to ``path``."""
    write_wav(
        path,
        synthesize_speech(words, sample_rate=sample_rate),
        AudioFormat(sample_rate=sample_rate),
    )
    return path


@pytest.fixture
def hello_wav(tmp_path: Path) -> Path:
    """1.5 s of speech-like audio at 16 kHz."""
    return speech_wav(tmp_path / "hello.wav", "hello there how are you", 16_000)


@pytest.fixture
def time_wav(tmp_path: Path) -> Path:
    """1.2 s of speech-like audio at 24 kHz."""
    return speech_wav(tmp_path / "time.wav", "what time is it")
