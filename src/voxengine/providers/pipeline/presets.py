"""Ready-made pipelines: Anthropic's Claude with offline speech, and a fully offline one.

* :class:`AnthropicPipelineConfig` / :class:`AnthropicPipelineProvider` (registry name
  ``"anthropic"``): Claude through :class:`~.llm.AnthropicLLM` (``api_key`` or
  ``$ANTHROPIC_API_KEY``, ``model`` default ``claude-haiku-4-5``, ``base_url`` for
  proxies and fakes) with offline PocketSphinx and espeak-ng unless ``stt``/``tts``
  are given.
* :func:`default_offline_pipeline`: no key, no network, no download — PocketSphinx,
  the built-in local responder (not an AI model) and espeak-ng.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, final

from voxengine.config import SessionConfig
from voxengine.providers.base import ProviderConfig

from .config import PipelineConfig
from .llm import ANTHROPIC_BASE_URL, DEFAULT_ANTHROPIC_MODEL, AnthropicLLM, LocalResponder
from .provider import PipelineProvider, PipelineProviderBase
from .stages import LanguageModel
from .stt import PocketSphinxSTT
from .tts import EspeakTTS

__all__ = ["AnthropicPipelineConfig", "AnthropicPipelineProvider", "default_offline_pipeline"]


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
        )


@final
class AnthropicPipelineProvider(PipelineProviderBase):
    """The pipeline with Claude as its language model (registry name ``"anthropic"``)."""

    name: ClassVar[str] = "anthropic"
    config_type: ClassVar[type[ProviderConfig]] = AnthropicPipelineConfig


def default_offline_pipeline(session: SessionConfig | None = None) -> PipelineProvider:
    """A pipeline that needs no key, no network and no download.

    PocketSphinx (US English) -> the built-in local responder (not an AI model: it
    tells the time and date and echoes) -> espeak-ng. Good for demos, CI and testing
    an application's audio path.
    """
    return PipelineProvider(
        PipelineConfig(
            stt=PocketSphinxSTT(),
            llm=LocalResponder(),
            tts=EspeakTTS(),
            session=session if session is not None else SessionConfig(),
        )
    )
