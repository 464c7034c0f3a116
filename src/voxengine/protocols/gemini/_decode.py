"""Gemini Live server messages: lenient, stateless parsing (gemini-live.md §4, §6).

Server output is camelCase (§1), but the protocol accepts the proto's snake_case
spelling at every level too, and ignores fields it does not know (design §6.9). The
turn state machine that gives the pieces synthetic response and item ids lives in
:mod:`voxengine.protocols.gemini.protocol`; this module only reads JSON.
"""

from __future__ import annotations

import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voxengine import _json
from voxengine.audio.pcm16 import b64decode_pcm16
from voxengine.errors import AudioError
from voxengine.events import Usage

__all__ = [
    "AudioPart",
    "BadAudio",
    "FunctionCall",
    "Part",
    "TextPart",
    "get",
    "get_map",
    "parse_duration",
    "parse_frame",
    "parse_function_calls",
    "parse_parts",
    "parse_usage",
    "snake",
]

Json = Mapping[str, Any]

_CAMEL_HUMP = re.compile(r"(?<!^)(?=[A-Z])")


def snake(name: str) -> str:
    """``turnComplete`` → ``turn_complete`` (the proto field name, §1)."""
    return _CAMEL_HUMP.sub("_", name).lower()


def get(obj: Json, name: str) -> Any:
    """Field ``name`` (camelCase) of ``obj``, also found under its snake_case name."""
    if name in obj:
        return obj[name]
    return obj.get(snake(name))


def get_map(obj: Json, name: str) -> Json:
    """Field ``name`` when it is an object, else ``{}``."""
    value = get(obj, name)
    return value if isinstance(value, Mapping) else {}


def _int(obj: Json, name: str) -> int:
    value = get(obj, name)
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():  # proto int64 may arrive as a string
        return int(value)
    return 0


def parse_frame(data: str | bytes) -> Json | None:
    """A text or binary (UTF-8 JSON, §1) frame as a JSON object; ``None`` if it is not one."""
    try:
        msg = _json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    return msg if isinstance(msg, dict) else None


def parse_duration(value: object) -> float | None:
    """A proto Duration (``"50s"``, ``"9.5s"``, or a number of seconds) in seconds (§1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        text = value.strip().removesuffix("s")
        try:
            return float(text)
        except ValueError:
            return None
    if isinstance(value, Mapping):  # {"seconds": "50", "nanos": 0}, seen in some encoders
        return _int(value, "seconds") + _int(value, "nanos") / 1e9
    return None


def _modalities(details: object) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in details if isinstance(details, list) else []:
        if isinstance(entry, Mapping):
            modality = get(entry, "modality")
            if isinstance(modality, str):
                counts[modality] = counts.get(modality, 0) + _int(entry, "tokenCount")
    return counts


def parse_usage(usage: object) -> Usage | None:
    """``usageMetadata`` (§4.2) as :class:`Usage`; ``None`` when absent or empty.

    Input = prompt + tool-use prompt tokens; output = response (Vertex: candidates)
    + thoughts tokens; the total is the server's ``totalTokenCount`` (or the sum when
    it is missing). Modality splits come from the ``*TokensDetails`` arrays.
    """
    if not isinstance(usage, Mapping) or not usage:
        return None
    prompt = _int(usage, "promptTokenCount") + _int(usage, "toolUsePromptTokenCount")
    response = _int(usage, "responseTokenCount") or _int(usage, "candidatesTokenCount")
    output = response + _int(usage, "thoughtsTokenCount")
    prompt_details = _modalities(get(usage, "promptTokensDetails"))
    cache_details = _modalities(get(usage, "cacheTokensDetails"))
    response_details = _modalities(
        get(usage, "responseTokensDetails") or get(usage, "candidatesTokensDetails")
    )
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=_int(usage, "totalTokenCount") or prompt + output,
        input_text_tokens=prompt_details.get("TEXT", 0),
        input_audio_tokens=prompt_details.get("AUDIO", 0),
        input_cached_tokens=_int(usage, "cachedContentTokenCount"),
        input_cached_text_tokens=cache_details.get("TEXT", 0),
        input_cached_audio_tokens=cache_details.get("AUDIO", 0),
        output_text_tokens=response_details.get("TEXT", 0),
        output_audio_tokens=response_details.get("AUDIO", 0),
    )


@dataclass(frozen=True, slots=True)
class AudioPart:
    """Model audio from an ``inlineData`` part (PCM16 24 kHz, §4.1)."""

    audio: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class TextPart:
    """Model text from a ``text`` part (TEXT modality, §4.1)."""

    text: str


@dataclass(frozen=True, slots=True)
class BadAudio:
    """An ``inlineData`` audio part whose data is not base64 PCM16."""


Part = AudioPart | TextPart | BadAudio


def parse_parts(model_turn: Json) -> list[Part]:
    """The usable parts of ``serverContent.modelTurn`` (§4.1), in order.

    Thought summaries (``thought: true``), code-tool parts and non-audio inline data
    are skipped.
    """
    parts = get(model_turn, "parts")
    out: list[Part] = []
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Mapping) or get(part, "thought") is True:
            continue
        text = get(part, "text")
        if isinstance(text, str):
            if text:
                out.append(TextPart(text))
            continue
        inline = get_map(part, "inlineData")
        if inline:
            mime = get(inline, "mimeType")
            if isinstance(mime, str) and not mime.startswith("audio/"):
                continue
            data = get(inline, "data")
            try:
                audio = b64decode_pcm16(data if isinstance(data, str) else "")
            except (AudioError, binascii.Error):
                out.append(BadAudio())
                continue
            if audio:
                out.append(AudioPart(audio))
    return out


@dataclass(frozen=True, slots=True)
class FunctionCall:
    """One ``toolCall.functionCalls`` entry; ``arguments`` is JSON text (§6)."""

    call_id: str
    name: str
    arguments: str


def parse_function_calls(tool_call: Json) -> list[FunctionCall]:
    """``toolCall`` (§4, §6) as :class:`FunctionCall` entries, skipping nameless ones."""
    calls = get(tool_call, "functionCalls")
    out: list[FunctionCall] = []
    for call in calls if isinstance(calls, list) else []:
        if not isinstance(call, Mapping):
            continue
        name = get(call, "name")
        if not isinstance(name, str) or not name:
            continue
        call_id = get(call, "id")
        args = get(call, "args")
        out.append(
            FunctionCall(
                call_id=call_id if isinstance(call_id, str) else "",
                name=name,
                arguments=json.dumps(args if isinstance(args, Mapping) else {}),
            )
        )
    return out
