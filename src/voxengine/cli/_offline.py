"""The default offline provider of the CLI: one place that builds it and says what it is.

``demo``, ``console``, ``run`` and ``chat`` all talk to the same offline stack when no
service is chosen. With the ``local`` extra installed that is the local voice AI —
Whisper base speech recognition, SmolLM2-135M-Instruct through llama.cpp, Piper speech
and Silero VAD (:func:`voxengine.providers.pipeline.local_pipeline`). Without it, the
fallback: PocketSphinx, the built-in local responder (fixed rules, not an AI model)
and espeak-ng, with a note saying how to install the real thing. Setting
``VOXENGINE_OFFLINE=fallback`` in the environment picks the fallback even when the
extra is installed (deterministic and instant: for tests and very slow machines).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Final

from voxengine.cli._errors import CliError
from voxengine.config import SessionConfig
from voxengine.providers.pipeline import (
    EspeakTTS,
    LanguageModel,
    LlamaCppLLM,
    LocalResponder,
    PipelineConfig,
    PipelineProvider,
    PiperTTS,
    PocketSphinxSTT,
    SpeechToText,
    TextToSpeech,
    WhisperSTT,
)
from voxengine.providers.pipeline._packaged import LOCAL_EXTRA, local_extra_installed

__all__ = ["OFFLINE_ENV", "OfflineStack", "offline_provider", "offline_speech", "use_local_stack"]

OFFLINE_ENV: Final = "VOXENGINE_OFFLINE"
"""Environment variable: ``fallback`` forces the rule-based fallback stack."""


def use_local_stack() -> bool:
    """Whether the offline stack is the local voice AI: the ``local`` extra is installed
    and ``$VOXENGINE_OFFLINE`` is not ``fallback``."""
    return os.environ.get(OFFLINE_ENV, "").lower() != "fallback" and local_extra_installed()


@dataclass(frozen=True, slots=True)
class OfflineStack:
    """An offline pipeline provider and how to describe it.

    Attributes:
        provider: the provider (not connected).
        local: True for the local speech stages (Whisper, Piper, Silero VAD), False for
            the fallback ones (PocketSphinx, espeak-ng, energy VAD).
        rules: True when the language model is the rule-based fallback responder.
        stt, llm, tts: the stages' labels.
    """

    provider: PipelineProvider
    local: bool
    rules: bool
    stt: str
    llm: str
    tts: str

    def banner(self, arrow: str = "->") -> str:
        """One line naming the stages, e.g. ``whisper ... -> SmolLM2 ... -> piper ...``."""
        vad = "Silero VAD, " if self.local else ""
        return f"{vad}{self.stt} {arrow} {self.llm} {arrow} {self.tts}"

    def note(self) -> str:
        """What the user should know about this stack."""
        if not self.rules:
            return (
                "(no API key, no network: every model runs on this machine's CPU from "
                "packages of the 'local' extra)"
            )
        why = (
            f"${OFFLINE_ENV}=fallback"
            if local_extra_installed()
            else "the 'local' extra is not installed"
        )
        return (
            f"(FALLBACK, not an AI: {why}, so the built-in responder follows fixed rules "
            f"and PocketSphinx mishears free speech; the local voice AI: {LOCAL_EXTRA})"
        )


def _check_fallback_packages() -> None:
    missing = [m for m in ("pocketsphinx", "espeakng_loader") if not importlib.util.find_spec(m)]
    if missing:
        raise CliError(
            f"offline speech needs the 'local' extra (or, as a fallback, {' and '.join(missing)})",
            hint=f"{LOCAL_EXTRA}, or run 'voxengine demo --fake-openai'",
        )


def offline_speech(voice: str | None = None) -> tuple[SpeechToText, TextToSpeech, bool]:
    """Offline speech stages: Whisper and Piper when the ``local`` extra is installed,
    else PocketSphinx and espeak-ng; and whether they are the local ones.

    ``voice`` is a Piper ``.onnx`` voice file for Piper, an espeak-ng voice name
    (default ``en-us``) for the fallback; a Piper voice name without ``.onnx`` is an
    error.

    Raises:
        CliError: neither the ``local`` extra nor the fallback packages are installed,
            or ``voice`` does not suit the voice engine.
    """
    if use_local_stack():
        if voice is not None and not voice.endswith(".onnx"):
            raise CliError(
                f"--voice {voice!r}: the local voice is Piper, which takes a .onnx voice file",
                hint="omit --voice for the packaged en_US-joe-medium voice",
            )
        return WhisperSTT(), PiperTTS(model_path=voice), True
    _check_fallback_packages()
    return PocketSphinxSTT(), EspeakTTS(voice=voice or "en-us"), False


def offline_provider(
    session: SessionConfig, *, llm: LanguageModel | None = None, voice: str | None = None
) -> OfflineStack:
    """The default offline provider (see the module docstring), optionally with another
    language model ``llm`` behind the same offline speech.

    Raises:
        CliError: see :func:`offline_speech`.
    """
    stt, tts, local = offline_speech(voice)
    model: LanguageModel = llm or (LlamaCppLLM() if local else LocalResponder())
    provider = PipelineProvider(
        PipelineConfig(
            stt=stt,
            llm=model,
            tts=tts,
            vad_engine="silero" if local else "energy",
            session=session,
        )
    )
    return OfflineStack(
        provider=provider,
        local=local,
        rules=isinstance(model, LocalResponder),
        stt=stt.label,
        llm=model.label,
        tts=tts.label,
    )
