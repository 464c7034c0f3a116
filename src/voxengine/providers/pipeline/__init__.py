"""Cascaded pipelines: speech-to-text -> language model -> text-to-speech, as a provider.

:class:`PipelineProvider` (``"pipeline"``) plugs three stages together; the stages are
small protocols (:mod:`.stages`), with offline and HTTP implementations:

=====  ==========================================  ==============================================
stage  offline                                     over HTTP
=====  ==========================================  ==============================================
STT    :class:`PocketSphinxSTT`                    :class:`OpenAITranscriptionSTT`
LLM    :class:`LocalResponder` (not an AI model)   :class:`AnthropicLLM`, :class:`OpenAIChatLLM`
TTS    :class:`EspeakTTS`                          :class:`OpenAISpeechTTS`
=====  ==========================================  ==============================================

:class:`AnthropicPipelineProvider` (``"anthropic"``) is Claude with offline speech;
:func:`default_offline_pipeline` needs nothing at all.
"""

from __future__ import annotations

from ._http import HttpSettings
from .config import PipelineConfig
from .llm import AnthropicLLM, LocalResponder, OpenAIChatLLM
from .presets import AnthropicPipelineConfig, AnthropicPipelineProvider, default_offline_pipeline
from .provider import PIPELINE_CAPABILITIES, PipelineProvider
from .sentence import SentenceSplitter
from .stages import (
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LanguageModel,
    LLMChunk,
    SpeechToText,
    TextChunk,
    TextToSpeech,
    ToolArgumentsChunk,
    ToolCallChunk,
    ToolCallRequest,
    Transcript,
)
from .stt import OpenAITranscriptionSTT, PocketSphinxSTT
from .tts import EspeakTTS, OpenAISpeechTTS

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
    "LocalResponder",
    "OpenAIChatLLM",
    "OpenAISpeechTTS",
    "OpenAITranscriptionSTT",
    "PipelineConfig",
    "PipelineProvider",
    "PocketSphinxSTT",
    "SentenceSplitter",
    "SpeechToText",
    "TextChunk",
    "TextToSpeech",
    "ToolArgumentsChunk",
    "ToolCallChunk",
    "ToolCallRequest",
    "Transcript",
    "default_offline_pipeline",
]
