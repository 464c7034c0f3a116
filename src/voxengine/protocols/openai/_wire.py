"""OpenAI Realtime wire shapes: commands and session settings to JSON objects.

Implements the client events of the shared notes (openai-realtime.md §5) for the GA
interface and, for Azure's preview endpoint, the beta interface (§12). Nothing here
does I/O; callers ``json.dumps`` the result.
"""

from __future__ import annotations

import enum
from typing import Any, assert_never

from voxengine.audio.pcm16 import b64encode_pcm16
from voxengine.commands import (
    CancelResponse,
    ClearAudio,
    Command,
    CommitAudio,
    CreateResponse,
    DeleteItem,
    RestoreItem,
    SendAudio,
    SendAudioMessage,
    SendText,
    SendToolResult,
    TruncateItem,
    UpdateSession,
)
from voxengine.config import Modality, SessionConfig, ToolSpec, TurnDetection, TurnDetectionConfig
from voxengine.errors import ConfigError
from voxengine.events import ConversationItem, ItemKind, Role

__all__ = ["Dialect", "encode_command", "encode_session"]

Json = dict[str, Any]


class Dialect(enum.Enum):
    """Which event shape the endpoint speaks."""

    GA = "ga"
    BETA = "beta"


_PCM_GA: Json = {"type": "audio/pcm", "rate": 24000}


def _modalities(modalities: tuple[Modality, ...], dialect: Dialect) -> list[str]:
    # §4: GA takes exactly one output modality; audio always carries its transcript.
    if dialect is Dialect.GA:
        return ["audio"] if Modality.AUDIO in modalities else ["text"]
    # §12: beta lists text with audio.
    return ["text", "audio"] if Modality.AUDIO in modalities else ["text"]


def _turn_detection(td: TurnDetectionConfig) -> Json | None:
    # §4.1. LOCAL_VAD and MANUAL both switch the provider's VAD off: voxengine or the
    # application commits turns, never both.
    if td.mode is TurnDetection.SERVER_VAD:
        out: Json = {
            "type": "server_vad",
            "threshold": td.threshold,
            "prefix_padding_ms": round(td.prefix_padding * 1000),
            "silence_duration_ms": round(td.silence_duration * 1000),
            "create_response": td.create_response,
            "interrupt_response": td.interrupt_response,
        }
        if td.idle_timeout is not None:
            out["idle_timeout_ms"] = round(td.idle_timeout * 1000)
        return out
    if td.mode is TurnDetection.SEMANTIC_VAD:
        return {
            "type": "semantic_vad",
            "eagerness": td.eagerness,
            "create_response": td.create_response,
            "interrupt_response": td.interrupt_response,
        }
    return None


def _tool(tool: ToolSpec) -> Json:
    # §4.2: flat function tool shape.
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": dict(tool.parameters),
    }


def _tool_choice(choice: str) -> str | Json:
    if choice in {"auto", "none", "required"}:
        return choice
    return {"type": "function", "name": choice}


def encode_session(config: SessionConfig, dialect: Dialect) -> Json:
    """The ``session`` object of a ``session.update`` carrying only the set fields.

    Raises:
        ConfigError: for settings the dialect cannot express (temperature on GA).
    """
    if dialect is Dialect.GA:
        return _encode_session_ga(config)
    return _encode_session_beta(config)


def _encode_session_ga(config: SessionConfig) -> Json:
    if config.temperature is not None:
        raise ConfigError("the OpenAI Realtime GA interface has no temperature setting")
    session: Json = {"type": "realtime"}
    if config.instructions is not None:
        session["instructions"] = config.instructions
    if config.modalities is not None:
        session["output_modalities"] = _modalities(config.modalities, Dialect.GA)
    audio_in: Json = {"format": dict(_PCM_GA)}
    if config.turn_detection is not None:
        audio_in["turn_detection"] = _turn_detection(config.turn_detection)
    if config.input_transcription_model is not None:
        audio_in["transcription"] = {"model": config.input_transcription_model}
    audio_out: Json = {"format": dict(_PCM_GA)}
    if config.voice is not None:
        audio_out["voice"] = config.voice
    session["audio"] = {"input": audio_in, "output": audio_out}
    if config.tools is not None:
        session["tools"] = [_tool(t) for t in config.tools]
    if config.tool_choice is not None:
        session["tool_choice"] = _tool_choice(config.tool_choice)
    if config.max_output_tokens is not None:
        session["max_output_tokens"] = config.max_output_tokens
    return session


def _encode_session_beta(config: SessionConfig) -> Json:
    session: Json = {"input_audio_format": "pcm16", "output_audio_format": "pcm16"}
    if config.instructions is not None:
        session["instructions"] = config.instructions
    if config.modalities is not None:
        session["modalities"] = _modalities(config.modalities, Dialect.BETA)
    if config.voice is not None:
        session["voice"] = config.voice
    if config.turn_detection is not None:
        session["turn_detection"] = _turn_detection(config.turn_detection)
    if config.input_transcription_model is not None:
        session["input_audio_transcription"] = {"model": config.input_transcription_model}
    if config.tools is not None:
        session["tools"] = [_tool(t) for t in config.tools]
    if config.tool_choice is not None:
        session["tool_choice"] = _tool_choice(config.tool_choice)
    if config.max_output_tokens is not None:
        session["max_response_output_tokens"] = config.max_output_tokens
    if config.temperature is not None:
        session["temperature"] = config.temperature
    return session


def _with_id(item: Json, item_id: str | None) -> Json:
    return {"id": item_id, **item} if item_id is not None else item


def _text_item(text: str, role: Role, dialect: Dialect) -> Json:
    # §7: user/system text is input_text; assistant text is output_text (beta: text).
    if role is Role.ASSISTANT:
        part = {"type": "output_text" if dialect is Dialect.GA else "text", "text": text}
    elif role in (Role.USER, Role.SYSTEM):
        part = {"type": "input_text", "text": text}
    else:
        raise ConfigError(f"text messages cannot have role {role.name}; use SendToolResult")
    return {"type": "message", "role": role.value, "content": [part]}


def _restored_item(item: ConversationItem, dialect: Dialect) -> Json:
    # §7: items the client may create; assistant audio comes back as assistant text.
    if item.kind is ItemKind.FUNCTION_CALL:
        out: Json = {
            "type": "function_call",
            "call_id": item.call_id or "",
            "name": item.name or "",
            "arguments": item.arguments or "{}",
        }
    elif item.kind is ItemKind.FUNCTION_CALL_OUTPUT:
        out = {
            "type": "function_call_output",
            "call_id": item.call_id or "",
            "output": item.output or "",
        }
    else:
        out = _text_item(item.text or "", item.role or Role.USER, dialect)
    return _with_id(out, item.item_id or None)


def encode_command(command: Command, dialect: Dialect, event_id: str | None) -> Json:
    """The client event for ``command`` (§5), tagged with ``event_id`` when given."""
    msg: Json
    match command:
        case SendAudio(audio=audio):
            # §5: no ack, so no event_id on the hot path.
            return {"type": "input_audio_buffer.append", "audio": b64encode_pcm16(audio)}
        case CommitAudio():
            msg = {"type": "input_audio_buffer.commit"}
        case ClearAudio():
            msg = {"type": "input_audio_buffer.clear"}
        case SendText(text=text, role=role, item_id=item_id):
            item = _with_id(_text_item(text, role, dialect), item_id)
            msg = {"type": "conversation.item.create", "item": item}
        case SendAudioMessage(audio=audio, item_id=item_id):
            # §7: a user message may carry its audio inline as an input_audio part.
            part = {"type": "input_audio", "audio": b64encode_pcm16(audio)}
            item = _with_id({"type": "message", "role": "user", "content": [part]}, item_id)
            msg = {"type": "conversation.item.create", "item": item}
        case SendToolResult(call_id=call_id, output=output):
            msg = {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "call_id": call_id, "output": output},
            }
        case CreateResponse(modalities=modalities, instructions=instructions):
            msg = {"type": "response.create"}
            response: Json = {}
            if modalities is not None:
                key = "output_modalities" if dialect is Dialect.GA else "modalities"
                response[key] = _modalities(modalities, dialect)
            if instructions is not None:
                response["instructions"] = instructions
            if response:
                msg["response"] = response
        case CancelResponse(response_id=response_id):
            msg = {"type": "response.cancel"}
            if response_id is not None:
                msg["response_id"] = response_id
        case TruncateItem(item_id=item_id, audio_end=audio_end, content_index=index):
            msg = {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": index,
                "audio_end_ms": max(0, round(audio_end * 1000)),
            }
        case DeleteItem(item_id=item_id):
            msg = {"type": "conversation.item.delete", "item_id": item_id}
        case RestoreItem(item=item):
            msg = {"type": "conversation.item.create", "item": _restored_item(item, dialect)}
        case UpdateSession(config=config):
            msg = {"type": "session.update", "session": encode_session(config, dialect)}
        case _:
            assert_never(command)
    if event_id is not None:
        msg["event_id"] = event_id
    return msg
