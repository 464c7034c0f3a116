"""Wire tables and pure helpers of the fake Gemini Live server (§1, §3, §8, §9)."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Final

Json = dict[str, Any]

_OUTPUT_RATE: Final = 24_000  # §1
_INPUT_RATE: Final = 16_000
#: Input rates the fake accepts in ``audio/pcm;rate=N`` (resampled to 16 kHz, §1).
_MIN_INPUT_RATE: Final = 8_000
_MAX_INPUT_RATE: Final = 192_000
_BASE64_ALPHABET: Final = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")
_URL_SAFE: Final = str.maketrans("-_", "+/")
_AUDIO_TOKENS_PER_SECOND: Final = 32  # Gemini bills audio at 32 tokens per second
_PATH = re.compile(
    r"^/ws/google\.ai\.generativelanguage\.(v1|v1beta|v1alpha)\.GenerativeService\."
    r"BidiGenerateContent$"
)

#: §8 model ids; the native-audio ones (and 3.x Live) answer only with AUDIO.
DEFAULT_MODELS: Final = frozenset(
    {
        "gemini-2.5-flash-native-audio-preview-09-2025",
        "gemini-2.5-flash-native-audio-preview-12-2025",
        "gemini-2.5-flash-native-audio-latest",
        "gemini-3.1-flash-live-preview",
        "gemini-3.8-live",
        "gemini-live-2.5-flash-preview",
        "gemini-2.0-flash-live-001",
    }
)

# Field names per message part (§3); snake_case spellings are derived.
_SETUP_FIELDS: Final = frozenset(
    {
        "model",
        "generationConfig",
        "systemInstruction",
        "tools",
        "realtimeInputConfig",
        "inputAudioTranscription",
        "outputAudioTranscription",
        "sessionResumption",
        "contextWindowCompression",
        "proactivity",
        "historyConfig",
        "safetySettings",
    }
)
_GENERATION_FIELDS: Final = frozenset(
    {
        "responseModalities",
        "speechConfig",
        "temperature",
        "topP",
        "topK",
        "maxOutputTokens",
        "seed",
        "candidateCount",
        "presencePenalty",
        "frequencyPenalty",
        "mediaResolution",
        "thinkingConfig",
        "enableAffectiveDialog",
        "translationConfig",
    }
)
_NESTED_FIELDS: Final[dict[str, frozenset[str]]] = {
    "realtimeInputConfig": frozenset(
        {"automaticActivityDetection", "activityHandling", "turnCoverage"}
    ),
    "automaticActivityDetection": frozenset(
        {
            "disabled",
            "startOfSpeechSensitivity",
            "endOfSpeechSensitivity",
            "prefixPaddingMs",
            "silenceDurationMs",
        }
    ),
    "sessionResumption": frozenset({"handle"}),
    "contextWindowCompression": frozenset({"triggerTokens", "slidingWindow"}),
    "inputAudioTranscription": frozenset({"languageCodes"}),
    "outputAudioTranscription": frozenset(),
    "clientContent": frozenset({"turns", "turnComplete"}),
    "realtimeInput": frozenset(
        {"audio", "video", "text", "activityStart", "activityEnd", "audioStreamEnd", "mediaChunks"}
    ),
    "toolResponse": frozenset({"functionResponses"}),
}
_ENUMS: Final[dict[str, frozenset[str]]] = {
    "startOfSpeechSensitivity": frozenset(
        {"START_SENSITIVITY_UNSPECIFIED", "START_SENSITIVITY_HIGH", "START_SENSITIVITY_LOW"}
    ),
    "endOfSpeechSensitivity": frozenset(
        {"END_SENSITIVITY_UNSPECIFIED", "END_SENSITIVITY_HIGH", "END_SENSITIVITY_LOW"}
    ),
    "activityHandling": frozenset(
        {"ACTIVITY_HANDLING_UNSPECIFIED", "START_OF_ACTIVITY_INTERRUPTS", "NO_INTERRUPTION"}
    ),
}
_TOOL_KINDS: Final = frozenset(
    {"functionDeclarations", "googleSearch", "codeExecution", "urlContext", "googleMaps"}
)
#: Keys whose values are user data: their own keys are never renamed.
_AUDIO_ONLY: Final = frozenset({"gemini-3.1-flash-live-preview", "gemini-3.8-live"})
_OPAQUE: Final = frozenset({"args", "response", "parametersJsonSchema", "default", "example"})

_INVALID_ARGUMENT: Final = "Request contains an invalid argument."
_BAD_KEY: Final = "API key not valid. Please pass a valid API key."


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def _normalize(value: Any, key: str = "") -> Any:
    """Rename snake_case keys to camelCase at every level, except inside user data."""
    if isinstance(value, list):
        return [_normalize(item, key) for item in value]
    if not isinstance(value, dict) or key in _OPAQUE:
        return value
    if key == "properties":  # schema property names are user data; their schemas are not
        return {name: _normalize(schema) for name, schema in value.items()}
    return {_camel(k): _normalize(v, _camel(k)) for k, v in value.items()}


def _words(text: str) -> int:
    return len(text.split())


def _decode_base64(data: object) -> bytes:
    """Standard or URL-safe base64, with or without padding (proto3 JSON bytes)."""
    if not isinstance(data, str) or not _BASE64_ALPHABET.match(data):
        raise _Close(1007, _INVALID_ARGUMENT)
    text = data.rstrip("=").translate(_URL_SAFE)
    if len(text) % 4 == 1:
        raise _Close(1007, _INVALID_ARGUMENT)
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _Close(1007, _INVALID_ARGUMENT) from None


class _Close(Exception):
    """Internal: stop processing and close with ``code``/``reason`` (§9)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
