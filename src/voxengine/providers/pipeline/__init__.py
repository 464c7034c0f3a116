"""Cascaded pipelines: speech-to-text -> language model -> text-to-speech, as a provider.

:class:`PipelineProvider` (``"pipeline"``) plugs three stages together; the stages are
small protocols (:mod:`.stages`), with offline and HTTP implementations:

=====  =====================  =========================================  =====================
stage  local (``local`` extra)  fallback / test double                     over HTTP
=====  =====================  =========================================  =====================
STT    :class:`WhisperSTT`    :class:`PocketSphinxSTT`                   OpenAITranscription
LLM    :class:`LlamaCppLLM`   :class:`LocalResponder` (not an AI model)  Anthropic, OpenAIChat
TTS    :class:`PiperTTS`      :class:`EspeakTTS`                         OpenAISpeech
VAD    :class:`SileroVAD`     energy / WebRTC (:mod:`voxengine.audio`)
=====  =====================  =========================================  =====================

:class:`AnthropicPipelineProvider` (``"anthropic"``) is Claude with offline speech;
:func:`local_pipeline` is the local voice AI, :func:`fallback_offline_pipeline` the
rule-based fallback, and :func:`default_offline_pipeline` the first when installed.
"""

from __future__ import annotations

from ._http import HttpSettings
from .config import PipelineConfig
from .llm import AnthropicLLM, LlamaCppLLM, LocalResponder, OpenAIChatLLM
from .presets import (
    AnthropicPipelineConfig,
    AnthropicPipelineProvider,
    default_offline_pipeline,
    fallback_offline_pipeline,
    local_pipeline,
)
from .provider import PIPELINE_CAPABILITIES, PipelineProvider
from .sentence import SentenceSplitter
from .stages import (
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LanguageModel,
    LLMChunk,
    PromptCache,
    SpeechToText,
    TextChunk,
    TextToSpeech,
    ToolArgumentsChunk,
    ToolCallChunk,
    ToolCallRequest,
    Transcript,
)
from .stt import OpenAITranscriptionSTT, PocketSphinxSTT, WhisperSTT
from .tts import EspeakTTS, OpenAISpeechTTS, PiperTTS
from .vad import SileroVAD

__all__ = [
    "PIPELINE_CAPABILITIES",
    "AnthropicLLM",
    "AnthropicPipelineConfig",
    "AnthropicPipelineProvider",
    "ChatMessage",
    "EspeakTTS",
    "FinishChunk",
    "GenerationSettings",
    "HttpSettings",
    "LLMChunk",
    "LanguageModel",
    "LlamaCppLLM",
    "LocalResponder",
    "OpenAIChatLLM",
    "OpenAISpeechTTS",
    "OpenAITranscriptionSTT",
    "PipelineConfig",
    "PipelineProvider",
    "PiperTTS",
    "PocketSphinxSTT",
    "PromptCache",
    "SentenceSplitter",
    "SileroVAD",
    "SpeechToText",
    "TextChunk",
    "TextToSpeech",
    "ToolArgumentsChunk",
    "ToolCallChunk",
    "ToolCallRequest",
    "Transcript",
    "WhisperSTT",
    "default_offline_pipeline",
    "fallback_offline_pipeline",
    "local_pipeline",
]
