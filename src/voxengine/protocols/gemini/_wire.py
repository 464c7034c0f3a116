"""Gemini Live wire shapes: the ``setup`` message and client messages, camelCase.

Implements the client side of the shared notes ``gemini-live.md``: §3.1 (``setup``,
with §3.1.1 ``realtimeInputConfig`` and §3.1.2 tools), §3.2 (``clientContent``), §3.3
(``realtimeInput``) and §3.4 (``toolResponse``). Every message has exactly one
top-level key (§1) and uses the canonical lowerCamelCase field names. Nothing here
does I/O and nothing here keeps state; :mod:`voxengine.protocols.gemini.protocol`
decides *which* message a command becomes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from voxengine.audio.pcm16 import b64encode_pcm16
from voxengine.config import Modality, SessionConfig, ToolSpec, TurnDetection, TurnDetectionConfig
from voxengine.errors import ConfigError
from voxengine.events import ConversationItem, ItemKind, Role

__all__ = [
    "INPUT_MIME",
    "SetupOptions",
    "activity_end",
    "activity_start",
    "audio_turn",
    "audio_stream_end",
    "client_content",
    "encode_setup",
    "function_response",
    "model_resource",
    "realtime_audio",
    "responds_with_audio",
    "restored_turn",
    "schema_from_json_schema",
    "text_turn",
    "tool_response",
    "uses_manual_activity",
]

Json = dict[str, Any]

#: §1 / §3.3: raw PCM16 LE mono at 16 kHz, declared in the MIME type.
INPUT_MIME = "audio/pcm;rate=16000"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetupOptions:
    """Connection-level settings that are not part of :class:`SessionConfig` (§3.1, §7).

    Attributes:
        session_resumption: ask for ``sessionResumptionUpdate`` handles.
        resumption_handle: resume the session this handle names (implies resumption).
        context_compression: enable the sliding-window context compression.
    """

    session_resumption: bool = True
    resumption_handle: str | None = None
    context_compression: bool = False

    def __repr__(self) -> str:  # the handle is a bearer capability: keep it out of logs
        handle = "***" if self.resumption_handle else None
        return (
            f"SetupOptions(session_resumption={self.session_resumption!r}, "
            f"resumption_handle={handle!r}, context_compression={self.context_compression!r})"
        )


def model_resource(model: str) -> str:
    """``model`` as a resource name: ``models/<id>`` unless it already has a path (§2)."""
    return model if "/" in model else f"models/{model}"


def responds_with_audio(config: SessionConfig) -> bool:
    """Whether the session's output modality is AUDIO (the default, §3.1)."""
    return config.modalities is None or Modality.AUDIO in config.modalities


def uses_manual_activity(config: SessionConfig) -> bool:
    """True when the server's activity detection is off (LOCAL_VAD or MANUAL, §3.1.1)."""
    td = config.turn_detection
    return td is not None and td.mode in (TurnDetection.LOCAL_VAD, TurnDetection.MANUAL)


# Schema keys (OpenAPI subset, §3.1.2) with their JSON Schema spelling.
_SCHEMA_KEYS = {
    "description": "description",
    "enum": "enum",
    "format": "format",
    "nullable": "nullable",
    "title": "title",
    "default": "default",
    "example": "example",
    "pattern": "pattern",
    "minimum": "minimum",
    "maximum": "maximum",
    "minItems": "minItems",
    "maxItems": "maxItems",
    "minLength": "minLength",
    "maxLength": "maxLength",
    "minProperties": "minProperties",
    "maxProperties": "maxProperties",
    "required": "required",
    "propertyOrdering": "propertyOrdering",
}
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})


def schema_from_json_schema(schema: Mapping[str, Any], where: str = "parameters") -> Json:
    """A JSON Schema object as the Gemini ``Schema`` subset (§3.1.2).

    Types become UPPER_CASE, ``["string", "null"]`` becomes ``STRING`` + ``nullable``,
    ``properties``/``items``/``anyOf`` are converted recursively, and keywords the
    subset lacks (``additionalProperties``, ``$schema``, ...) are dropped: the server
    rejects unknown Schema fields.

    Raises:
        ConfigError: a ``type`` that is not a JSON Schema type.
    """
    out: Json = {}
    kind = schema.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if k != "null"]
        if len(named) > 1:
            raise ConfigError(f"{where}: Gemini schemas take one type, got {kind!r}")
        if len(named) < len(kind):
            out["nullable"] = True
        kind = named[0] if named else "null"
    if kind is not None:
        if not isinstance(kind, str) or kind.lower() not in _TYPES:
            raise ConfigError(f"{where}: unsupported schema type {kind!r}")
        out["type"] = kind.upper()
    for wire_key, json_key in _SCHEMA_KEYS.items():
        if json_key in schema:
            out[wire_key] = schema[json_key]
    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        out["properties"] = {
            name: schema_from_json_schema(sub, f"{where}.{name}")
            for name, sub in properties.items()
            if isinstance(sub, Mapping)
        }
    items = schema.get("items")
    if isinstance(items, Mapping):
        out["items"] = schema_from_json_schema(items, f"{where}[]")
    any_of = schema.get("anyOf")
    if isinstance(any_of, list):
        out["anyOf"] = [
            schema_from_json_schema(sub, f"{where}|{i}")
            for i, sub in enumerate(any_of)
            if isinstance(sub, Mapping)
        ]
    return out


def _function_declaration(tool: ToolSpec) -> Json:
    declaration: Json = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    parameters = schema_from_json_schema(tool.parameters, f"tool {tool.name!r}")
    if parameters.get("properties") or parameters.get("required"):
        declaration["parameters"] = parameters
    return declaration


def _sensitivity(prefix: str, threshold: float) -> str:
    # §3.1.1: HIGH detects more readily (the Developer API default), which matches the
    # OpenAI-style default threshold 0.5; a stricter (higher) threshold maps to LOW.
    return f"{prefix}_SENSITIVITY_{'HIGH' if threshold <= 0.5 else 'LOW'}"


def _realtime_input_config(td: TurnDetectionConfig) -> Json:
    """§3.1.1 from voxengine's turn detection settings.

    Raises:
        ConfigError: for settings Gemini cannot express.
    """
    if td.mode is TurnDetection.SEMANTIC_VAD:
        raise ConfigError("Gemini Live has no semantic VAD; use SERVER_VAD, LOCAL_VAD or MANUAL")
    if td.idle_timeout is not None:
        raise ConfigError("Gemini Live has no idle timeout setting")
    handling = "START_OF_ACTIVITY_INTERRUPTS" if td.interrupt_response else "NO_INTERRUPTION"
    if td.mode is TurnDetection.SERVER_VAD:
        if not td.create_response:
            raise ConfigError(
                "Gemini Live always answers a turn its VAD detected; create_response=False "
                "needs LOCAL_VAD or MANUAL turn detection"
            )
        detection: Json = {
            "disabled": False,
            "startOfSpeechSensitivity": _sensitivity("START", td.threshold),
            "endOfSpeechSensitivity": _sensitivity("END", td.threshold),
            "prefixPaddingMs": round(td.prefix_padding * 1000),
            "silenceDurationMs": round(td.silence_duration * 1000),
        }
    else:
        # LOCAL_VAD and MANUAL: the client marks activity; the server's VAD is off.
        detection = {"disabled": True}
    return {"automaticActivityDetection": detection, "activityHandling": handling}


def encode_setup(model: str, config: SessionConfig, options: SetupOptions) -> Json:
    """The complete ``{"setup": {...}}`` message (§3.1, transcript §12.1).

    Output modality: AUDIO unless ``config.modalities`` lacks it (§3.1: one value,
    sent explicitly). Output audio transcription is always requested with AUDIO
    output; input transcription when ``config.input_transcription_model`` is set
    (Gemini chooses the transcription model itself, so the name is not sent).

    Raises:
        ConfigError: settings Gemini Live cannot express (semantic VAD, idle timeout,
            a ``tool_choice`` other than ``"auto"``, server VAD without auto-response,
            TEXT output from a native-audio model).
    """
    audio_out = responds_with_audio(config)
    if not audio_out and "native-audio" in model:
        # §3.1: native-audio models refuse TEXT ("Cannot extract voices from a non-audio
        # request"); their text comes as output transcription of the audio.
        raise ConfigError(
            f"{model} answers with audio only; keep AUDIO output (transcripts carry the text)"
        )
    generation: Json = {"responseModalities": ["AUDIO" if audio_out else "TEXT"]}
    if config.voice is not None:
        if not audio_out:
            raise ConfigError("a voice needs AUDIO output")
        generation["speechConfig"] = {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": config.voice}}
        }
    if config.temperature is not None:
        generation["temperature"] = config.temperature
    if config.max_output_tokens is not None:
        generation["maxOutputTokens"] = config.max_output_tokens
    setup: Json = {"model": model_resource(model), "generationConfig": generation}
    if config.instructions is not None:
        setup["systemInstruction"] = {"parts": [{"text": config.instructions}]}
    if config.tool_choice not in (None, "auto"):
        raise ConfigError("Gemini Live only supports tool_choice='auto' (no toolConfig in setup)")
    if config.tools:
        setup["tools"] = [
            {"functionDeclarations": [_function_declaration(t) for t in config.tools]}
        ]
    if config.turn_detection is not None:
        setup["realtimeInputConfig"] = _realtime_input_config(config.turn_detection)
    if config.input_transcription_model is not None:
        setup["inputAudioTranscription"] = {}
    if audio_out:
        setup["outputAudioTranscription"] = {}
    if options.resumption_handle is not None:
        setup["sessionResumption"] = {"handle": options.resumption_handle}
    elif options.session_resumption:
        setup["sessionResumption"] = {}
    if options.context_compression:
        setup["contextWindowCompression"] = {"slidingWindow": {}}
    return {"setup": setup}


def client_content(turns: Sequence[Json], *, turn_complete: bool) -> Json:
    """§3.2: ordered turns; ``turn_complete`` asks the model to answer now."""
    content: Json = {}
    if turns:
        content["turns"] = list(turns)
    content["turnComplete"] = turn_complete
    return {"clientContent": content}


def realtime_audio(audio: bytes) -> Json:
    """§3.3: one chunk of 16 kHz PCM16 input audio."""
    return {"realtimeInput": {"audio": {"mimeType": INPUT_MIME, "data": b64encode_pcm16(audio)}}}


def activity_start() -> Json:
    """§3.3: the user started speaking (activity detection disabled only)."""
    return {"realtimeInput": {"activityStart": {}}}


def activity_end() -> Json:
    """§3.3: the user stopped speaking; the model answers."""
    return {"realtimeInput": {"activityEnd": {}}}


def audio_stream_end() -> Json:
    """§3.3: the microphone paused (automatic activity detection only)."""
    return {"realtimeInput": {"audioStreamEnd": True}}


def function_response(call_id: str, name: str, output: str) -> Json:
    """One §3.4 ``functionResponses`` entry for a tool ``output`` string.

    A JSON object output is sent as the ``response`` object itself (the server reads
    its ``output``/``error`` keys, or takes the whole object as the output); any other
    output — JSON scalars, arrays, plain text — is wrapped as ``{"output": value}``.
    """
    try:
        value: Any = json.loads(output)
    except ValueError:
        value = output
    response = value if isinstance(value, dict) else {"output": value}
    return {"id": call_id, "name": name, "response": response}


def tool_response(responses: Sequence[Json]) -> Json:
    """§3.4: answers to ``toolCall.functionCalls`` (ids must match)."""
    return {"toolResponse": {"functionResponses": list(responses)}}


def text_turn(text: str, role: Role) -> Json:
    """§3.2: one ``clientContent`` turn of text; ``Role.ASSISTANT`` becomes ``model``,
    every other role ``user`` (Live turns have only the two roles)."""
    return {"role": "model" if role is Role.ASSISTANT else "user", "parts": [{"text": text}]}


def audio_turn(audio: bytes) -> Json:
    """§3.2: one user ``clientContent`` turn of recorded PCM16 16 kHz audio."""
    blob = {"mimeType": INPUT_MIME, "data": b64encode_pcm16(audio)}
    return {"role": "user", "parts": [{"inlineData": blob}]}


def restored_turn(item: ConversationItem, name: str) -> Json:
    """§3.2: ``item`` of an earlier connection as a ``clientContent`` turn.

    Messages become text turns, a function call a ``model`` ``functionCall`` part and
    its output a ``user`` ``functionResponse`` part; ``name`` is the function's name.
    """
    call_id = item.call_id or ""
    if item.kind is ItemKind.FUNCTION_CALL:
        try:
            args = json.loads(item.arguments or "{}")
        except ValueError:
            args = {}
        call = {"id": call_id, "name": name, "args": args if isinstance(args, dict) else {}}
        return {"role": "model", "parts": [{"functionCall": call}]}
    if item.kind is ItemKind.FUNCTION_CALL_OUTPUT:
        answer = function_response(call_id, name, item.output or "")
        return {"role": "user", "parts": [{"functionResponse": answer}]}
    return text_turn(item.text or "", item.role or Role.USER)
