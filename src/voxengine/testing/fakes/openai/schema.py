"""Allowed-keys schemas for OpenAI Realtime *client* events, GA and beta (pure, no I/O).

The wire shapes of §4 (GA session), §7 (items), §8.1 (``response.create``) and §12
(beta session), written in the spec types of :mod:`.specs`: one table per dialect,
looked up by :func:`validate_client_event`. Semantic rules that need server state
(unknown ``item_id``, voice locked, ...) are *not* here; the server applies them after
the schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, Literal

from voxengine.protocols.openai.voices import VOICES

from .specs import (
    AnyJson,
    AnyObject,
    Bool,
    Int,
    ListOf,
    MapOf,
    Nullable,
    Num,
    Obj,
    SchemaError,
    Spec,
    Str,
    Tagged,
    _type_error,
    enum,
    obj,
    one_of,
)

__all__ = [
    "BETA_CLIENT_EVENTS",
    "GA_CLIENT_EVENTS",
    "GA_VOICES",
    "SchemaError",
    "Spec",
    "validate_client_event",
]


# --- shared pieces (§4, §4.1, §4.2) ---------------------------------------------------------

_MAX_TOKENS: Final = one_of(Int(1, 4096), enum("inf"))
_TOOL_CHOICE_MODE: Final = enum("none", "auto", "required")
_TRACING: Final = Nullable(
    one_of(
        enum("auto"),
        obj(workflow_name=Str(), group_id=Str(), metadata=AnyObject()),
    )
)
_METADATA: Final = Nullable(MapOf(Str(max_len=512), max_items=16, max_key_len=64))
_VAD_COMMON: Final[dict[str, Spec]] = {"create_response": Bool(), "interrupt_response": Bool()}
_TURN_DETECTION: Final = Nullable(
    Tagged(
        "type",
        {
            "server_vad": obj(
                type=enum("server_vad"),
                threshold=Num(0.0, 1.0),
                prefix_padding_ms=Int(0),
                silence_duration_ms=Int(0),
                idle_timeout_ms=Nullable(Int(0)),
                **_VAD_COMMON,
            ),
            "semantic_vad": obj(
                type=enum("semantic_vad"),
                eagerness=enum("low", "medium", "high", "auto"),
                **_VAD_COMMON,
            ),
        },
    )
)
_ITEM_COMMON: Final[dict[str, Spec]] = {
    "id": Str(max_len=32),
    "object": enum("realtime.item"),
    "status": enum("completed", "incomplete", "in_progress"),
}
_FUNCTION_CALL_ITEM: Final = obj(
    ("name", "arguments"),
    type=enum("function_call"),
    name=Str(),
    arguments=Str(),
    call_id=Str(max_len=64),
    **_ITEM_COMMON,
)
_FUNCTION_CALL_OUTPUT_ITEM: Final = obj(
    ("call_id", "output"),
    type=enum("function_call_output"),
    call_id=Str(max_len=64),
    output=Str(),
    **_ITEM_COMMON,
)
_ITEM_REFERENCE: Final = obj(("id",), type=enum("item_reference"), id=Str())
_INPUT_TEXT: Final = obj(("text",), type=enum("input_text"), text=Str())
_INPUT_AUDIO: Final = obj(type=enum("input_audio"), audio=Str(), transcript=Nullable(Str()))


def _message(role_contents: Mapping[str, Mapping[str, Spec]]) -> Tagged:
    """``message`` items, one variant per role with its allowed content part types (§7)."""
    variants: dict[str, Spec] = {}
    for role, parts in role_contents.items():
        variants[role] = obj(
            ("content",),
            type=enum("message"),
            role=enum(role),
            content=ListOf(Tagged("type", parts)),
            **_ITEM_COMMON,
        )
    return Tagged("role", variants)


# --- GA (§4, §7, §8.1) -----------------------------------------------------------------------

_GA_FORMAT: Final = Tagged(
    "type",
    {
        "audio/pcm": obj(type=enum("audio/pcm"), rate=Int(24_000, 24_000)),
        "audio/pcmu": obj(type=enum("audio/pcmu")),
        "audio/pcma": obj(type=enum("audio/pcma")),
    },
)
# §4: built-in voices by name, custom voices as {"id": "voice_..."}. Which names exist
# is checked by the server (FakeOpenAIConfig.voices), after the schema, with the
# error the schema would give.
GA_VOICES: Final = VOICES
_GA_VOICE: Final = one_of(Str(), obj(("id",), id=Str()))
_GA_TRANSCRIPTION: Final = Nullable(
    obj(
        model=Str(),
        language=Str(),
        prompt=Str(),
        delay=enum("minimal", "low", "medium", "high", "xhigh"),
        keywords=ListOf(Str()),
        languages=ListOf(Str()),
    )
)
_GA_NOISE_REDUCTION: Final = Nullable(
    obj(("type",), type=enum("near_field", "far_field"), strength=Num(0.0, 1.0))
)
_GA_AUDIO_INPUT: Final = obj(
    format=_GA_FORMAT,
    noise_reduction=_GA_NOISE_REDUCTION,
    transcription=_GA_TRANSCRIPTION,
    turn_detection=_TURN_DETECTION,
)
_GA_TOOL: Final = Tagged(
    "type",
    {
        "function": obj(
            ("name",),
            type=enum("function"),
            name=Str(max_len=64),
            description=Str(),
            parameters=AnyObject(),
        ),
        "mcp": obj(
            ("server_label",),
            type=enum("mcp"),
            server_label=Str(),
            server_url=Str(),
            connector_id=Str(),
            authorization=Str(),
            headers=Nullable(MapOf(Str())),
            require_approval=AnyJson(),
            allowed_tools=AnyJson(),
            server_description=Str(),
        ),
    },
    default="function",
)
_GA_TOOL_CHOICE: Final = one_of(
    _TOOL_CHOICE_MODE,
    Tagged(
        "type",
        {
            "function": obj(("name",), type=enum("function"), name=Str()),
            "mcp": obj(
                ("server_label",), type=enum("mcp"), server_label=Str(), name=Nullable(Str())
            ),
        },
    ),
)
_GA_MODALITIES: Final = ListOf(enum("text", "audio"), max_items=1)
_GA_PROMPT: Final = Nullable(obj(("id",), id=Str(), version=Nullable(Str()), variables=AnyObject()))
_GA_REASONING: Final = Nullable(obj(effort=enum("minimal", "low", "medium", "high", "xhigh")))
_GA_SESSION: Final = Tagged(
    "type",
    {
        "realtime": obj(
            type=enum("realtime"),
            model=Str(),
            output_modalities=_GA_MODALITIES,
            instructions=Str(),
            audio=obj(
                input=_GA_AUDIO_INPUT,
                output=obj(format=_GA_FORMAT, voice=_GA_VOICE, speed=Num(0.25, 1.5)),
            ),
            tools=ListOf(_GA_TOOL),
            tool_choice=_GA_TOOL_CHOICE,
            max_output_tokens=_MAX_TOKENS,
            truncation=one_of(
                enum("auto", "disabled"),
                Tagged(
                    "type",
                    {
                        "retention_ratio": obj(
                            ("retention_ratio",),
                            type=enum("retention_ratio"),
                            retention_ratio=Num(0.0, 1.0),
                            token_limits=obj(post_instructions=Int(0)),
                        )
                    },
                ),
            ),
            tracing=_TRACING,
            prompt=_GA_PROMPT,
            include=Nullable(ListOf(enum("item.input_audio_transcription.logprobs"))),
            reasoning=_GA_REASONING,
            parallel_tool_calls=Bool(),
        ),
        "transcription": obj(
            type=enum("transcription"),
            audio=obj(input=_GA_AUDIO_INPUT),
            include=Nullable(ListOf(enum("item.input_audio_transcription.logprobs"))),
        ),
    },
)
_GA_MESSAGE: Final = _message(
    {
        "system": {"input_text": _INPUT_TEXT},
        "user": {
            "input_text": _INPUT_TEXT,
            "input_audio": _INPUT_AUDIO,
            "input_image": obj(
                ("image_url",),
                type=enum("input_image"),
                image_url=Str(),
                detail=enum("auto", "low", "high"),
            ),
        },
        "assistant": {
            "output_text": obj(("text",), type=enum("output_text"), text=Str()),
            "output_audio": obj(type=enum("output_audio"), audio=Str(), transcript=Str()),
        },
    }
)
_GA_ITEM_VARIANTS: Final[dict[str, Spec]] = {
    "message": _GA_MESSAGE,
    "function_call": _FUNCTION_CALL_ITEM,
    "function_call_output": _FUNCTION_CALL_OUTPUT_ITEM,
}
_GA_ITEM: Final = Tagged("type", _GA_ITEM_VARIANTS)
_GA_RESPONSE: Final = obj(
    output_modalities=_GA_MODALITIES,
    instructions=Str(),
    audio=obj(output=obj(format=_GA_FORMAT, voice=_GA_VOICE)),
    tools=ListOf(_GA_TOOL),
    tool_choice=_GA_TOOL_CHOICE,
    max_output_tokens=_MAX_TOKENS,
    metadata=_METADATA,
    conversation=Str(),
    input=ListOf(Tagged("type", {**_GA_ITEM_VARIANTS, "item_reference": _ITEM_REFERENCE})),
    prompt=_GA_PROMPT,
    reasoning=_GA_REASONING,
    parallel_tool_calls=Bool(),
)


def _event(required: Sequence[str] = (), /, **fields: Spec) -> Obj:
    return obj(required, type=Str(), event_id=Str(max_len=512), **fields)


_COMMON_EVENTS: Final[dict[str, Obj]] = {
    "input_audio_buffer.append": _event(("audio",), audio=Str()),
    "input_audio_buffer.commit": _event(),
    "input_audio_buffer.clear": _event(),
    "conversation.item.retrieve": _event(("item_id",), item_id=Str()),
    "conversation.item.delete": _event(("item_id",), item_id=Str()),
    "conversation.item.truncate": _event(
        ("item_id", "content_index", "audio_end_ms"),
        item_id=Str(),
        content_index=Int(0),
        audio_end_ms=Int(0),
    ),
    "response.cancel": _event(response_id=Str()),
}

GA_CLIENT_EVENTS: Final[Mapping[str, Obj]] = {
    # §5 client events accepted on a GA WebSocket conversation session (§3 list)
    **_COMMON_EVENTS,
    "session.update": _event(("session",), session=_GA_SESSION),
    "session.close": _event(),
    "session.input_audio_buffer.append": _event(("audio",), audio=Str()),
    "conversation.item.create": _event(("item",), previous_item_id=Nullable(Str()), item=_GA_ITEM),
    "response.create": _event(response=_GA_RESPONSE),
    "output_audio_buffer.clear": _event(),
}

# --- beta (§12) ------------------------------------------------------------------------------

_BETA_FORMAT: Final = enum("pcm16", "g711_ulaw", "g711_alaw")
_BETA_TOOL: Final = obj(
    ("name",),
    type=enum("function"),
    name=Str(max_len=64),
    description=Str(),
    parameters=AnyObject(),
)
_BETA_TOOL_CHOICE: Final = one_of(
    _TOOL_CHOICE_MODE, obj(("type", "name"), type=enum("function"), name=Str())
)
_BETA_SESSION: Final = obj(
    model=Str(),
    modalities=ListOf(enum("text", "audio"), max_items=2),
    instructions=Str(),
    voice=Str(),
    input_audio_format=_BETA_FORMAT,
    output_audio_format=_BETA_FORMAT,
    input_audio_transcription=Nullable(obj(model=Str(), language=Str(), prompt=Str())),
    input_audio_noise_reduction=Nullable(obj(("type",), type=enum("near_field", "far_field"))),
    turn_detection=_TURN_DETECTION,
    tools=ListOf(_BETA_TOOL),
    tool_choice=_BETA_TOOL_CHOICE,
    temperature=Num(0.6, 1.2),
    max_response_output_tokens=_MAX_TOKENS,
    speed=Num(0.25, 1.5),
    tracing=_TRACING,
)
_BETA_MESSAGE: Final = _message(
    {
        "system": {"input_text": _INPUT_TEXT},
        "user": {"input_text": _INPUT_TEXT, "input_audio": _INPUT_AUDIO},
        "assistant": {
            "text": obj(("text",), type=enum("text"), text=Str()),
            "audio": obj(type=enum("audio"), audio=Str(), transcript=Str()),
        },
    }
)
_BETA_ITEM_VARIANTS: Final[dict[str, Spec]] = {
    "message": _BETA_MESSAGE,
    "function_call": _FUNCTION_CALL_ITEM,
    "function_call_output": _FUNCTION_CALL_OUTPUT_ITEM,
}
_BETA_RESPONSE: Final = obj(
    modalities=ListOf(enum("text", "audio"), max_items=2),
    instructions=Str(),
    voice=Str(),
    output_audio_format=_BETA_FORMAT,
    tools=ListOf(_BETA_TOOL),
    tool_choice=_BETA_TOOL_CHOICE,
    temperature=Num(0.6, 1.2),
    max_output_tokens=_MAX_TOKENS,
    max_response_output_tokens=_MAX_TOKENS,
    metadata=_METADATA,
    conversation=Str(),
    input=ListOf(Tagged("type", {**_BETA_ITEM_VARIANTS, "item_reference": _ITEM_REFERENCE})),
)

BETA_CLIENT_EVENTS: Final[Mapping[str, Obj]] = {
    **_COMMON_EVENTS,
    "session.update": _event(("session",), session=_BETA_SESSION),
    "conversation.item.create": _event(
        ("item",), previous_item_id=Nullable(Str()), item=Tagged("type", _BETA_ITEM_VARIANTS)
    ),
    "response.create": _event(response=_BETA_RESPONSE),
}


def validate_client_event(event: Mapping[str, object], dialect: Literal["ga", "beta"]) -> None:
    """Validate one parsed client event against the dialect's schema.

    Raises:
        SchemaError: the first violation found (unknown ``type`` is ``invalid_value``
            with param ``type``, §3).
    """
    kind = event.get("type")
    if kind is None:
        raise SchemaError(
            "missing_required_parameter", "Missing required parameter: 'type'.", "type"
        )
    if not isinstance(kind, str):
        raise _type_error("type", "a string", kind)
    table = GA_CLIENT_EVENTS if dialect == "ga" else BETA_CLIENT_EVENTS
    spec = table.get(kind)
    if spec is None:
        raise SchemaError(
            "invalid_value",
            f"Invalid value: '{kind}'. Supported values are: "
            + ", ".join(f"'{name}'" for name in sorted(table))
            + ".",
            "type",
        )
    spec.check(dict(event), "")
