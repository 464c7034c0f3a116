"""Anthropic Messages API wire format: request bodies and the streaming decoder.

Implements ``POST /v1/messages`` with ``"stream": true`` (Anthropic API reference,
"Messages" and "Streaming Messages"): the system prompt is the top-level ``system``
string; roles alternate user/assistant, so consecutive same-role messages are merged;
tool calls are ``tool_use`` content blocks and their results ``tool_result`` blocks
in the next user message. The stream is ``message_start``, then per content block
``content_block_start`` / ``content_block_delta`` (``text_delta`` or
``input_json_delta``) / ``content_block_stop``, then ``message_delta`` (stop reason,
output tokens) and ``message_stop``; ``ping`` may appear anywhere and ``error`` ends
the stream. Unknown events and block types (e.g. thinking) are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, final

from voxengine.config import ToolSpec
from voxengine.errors import ProtocolViolation, ProviderError, RateLimited
from voxengine.events import Role, Usage

from .stages import (
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LLMChunk,
    TextChunk,
    ToolArgumentsChunk,
    ToolCallChunk,
    ToolCallRequest,
)

__all__ = ["AnthropicStreamDecoder", "messages_request"]

Json = dict[str, Any]


def _arguments(text: str) -> Any:
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"_raw": text}
    return value if isinstance(value, dict) else {"value": value}


def _blocks(message: ChatMessage) -> list[Json]:
    if message.role is Role.TOOL:
        return [
            {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.text}
        ]
    blocks: list[Json] = []
    if message.text:
        blocks.append({"type": "text", "text": message.text})
    for call in message.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": call.call_id,
                "name": call.name,
                "input": _arguments(call.arguments),
            }
        )
    return blocks


def _tool_choice(choice: str | None, tools: Sequence[ToolSpec]) -> Json | None:
    if choice is None or not tools:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "none":
        return {"type": "none"}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def messages_request(
    *,
    model: str,
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolSpec],
    settings: GenerationSettings,
    default_max_tokens: int,
) -> Json:
    """The JSON body of a streaming ``/v1/messages`` request."""
    system = "\n\n".join(m.text for m in messages if m.role is Role.SYSTEM and m.text)
    turns: list[Json] = []
    for message in messages:
        if message.role is Role.SYSTEM:
            continue
        role = "assistant" if message.role is Role.ASSISTANT else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    body: Json = {
        "model": model,
        "max_tokens": settings.max_output_tokens or default_max_tokens,
        "messages": turns,
        "stream": True,
    }
    if system:
        body["system"] = system
    if tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
            for t in tools
        ]
        choice = _tool_choice(settings.tool_choice, tools)
        if choice is not None:
            body["tool_choice"] = choice
    if settings.temperature is not None:
        body["temperature"] = min(settings.temperature, 1.0)  # Anthropic accepts 0..1
    return body


@final
class AnthropicStreamDecoder:
    """Turns the events of one streamed message into :data:`LLMChunk` values.

    Feed each SSE event (name and JSON data) to :meth:`feed`; :attr:`finished` is
    True after ``message_stop``.

    Raises (from :meth:`feed`):
        RateLimited: an ``error`` event of type ``rate_limit_error``.
        ProviderError: any other ``error`` event (e.g. ``overloaded_error``).
        ProtocolViolation: data that is not a JSON object.
    """

    __slots__ = (
        "_blocks",
        "_cached_tokens",
        "_created_tokens",
        "_input_tokens",
        "_output_tokens",
        "_stop_reason",
        "finished",
    )

    def __init__(self) -> None:
        self._blocks: dict[int, Json] = {}
        self._input_tokens = 0
        self._cached_tokens = 0
        self._created_tokens = 0
        self._output_tokens = 0
        self._stop_reason: str | None = None
        self.finished = False

    def feed(self, event: str, data: str) -> list[LLMChunk]:
        """Decode one event; returns the chunks it produced."""
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise ProtocolViolation(f"Anthropic stream: {event} data is not JSON") from exc
        if not isinstance(payload, dict):
            raise ProtocolViolation(f"Anthropic stream: {event} data is not an object")
        kind = payload.get("type", event)
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        return handler(self, payload) if handler is not None else []

    def _usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        if isinstance(usage.get("input_tokens"), int):
            self._input_tokens = usage["input_tokens"]
        if isinstance(usage.get("cache_read_input_tokens"), int):
            self._cached_tokens = usage["cache_read_input_tokens"]
        if isinstance(usage.get("cache_creation_input_tokens"), int):
            self._created_tokens = usage["cache_creation_input_tokens"]
        if isinstance(usage.get("output_tokens"), int):
            self._output_tokens = usage["output_tokens"]

    def _message_start(self, payload: Json) -> list[LLMChunk]:
        message = payload.get("message")
        if isinstance(message, dict):
            self._usage(message.get("usage"))
        return []

    def _block_start(self, payload: Json) -> list[LLMChunk]:
        block = payload.get("content_block")
        index = payload.get("index")
        if not isinstance(block, dict) or not isinstance(index, int):
            return []
        state: Json = {
            "type": block.get("type"),
            "id": block.get("id"),
            "name": block.get("name"),
            "json": [],
        }
        self._blocks[index] = state
        if state["type"] == "text" and block.get("text"):
            return [TextChunk(text=str(block["text"]))]
        return []

    def _block_delta(self, payload: Json) -> list[LLMChunk]:
        delta = payload.get("delta")
        index = payload.get("index")
        state = self._blocks.get(index) if isinstance(index, int) else None
        if not isinstance(delta, dict) or state is None:
            return []
        if delta.get("type") == "text_delta" and delta.get("text"):
            return [TextChunk(text=str(delta["text"]))]
        if delta.get("type") == "input_json_delta" and state["type"] == "tool_use":
            fragment = str(delta.get("partial_json", ""))
            if not fragment:
                return []
            state["json"].append(fragment)
            return [
                ToolArgumentsChunk(
                    call_id=str(state["id"]), name=str(state["name"]), delta=fragment
                )
            ]
        return []

    def _block_stop(self, payload: Json) -> list[LLMChunk]:
        index = payload.get("index")
        state = self._blocks.pop(index, None) if isinstance(index, int) else None
        if state is None or state["type"] != "tool_use":
            return []
        arguments = "".join(state["json"]) or "{}"
        call = ToolCallRequest(
            call_id=str(state["id"]), name=str(state["name"]), arguments=arguments
        )
        return [ToolCallChunk(call=call)]

    def _message_delta(self, payload: Json) -> list[LLMChunk]:
        delta = payload.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason"):
            self._stop_reason = str(delta["stop_reason"])
        self._usage(payload.get("usage"))
        return []

    def _message_stop(self, payload: Json) -> list[LLMChunk]:
        self.finished = True
        # Anthropic's input_tokens excludes cache reads and writes; voxengine's includes them.
        total_in = self._input_tokens + self._cached_tokens + self._created_tokens
        usage = Usage(
            input_tokens=total_in,
            output_tokens=self._output_tokens,
            total_tokens=total_in + self._output_tokens,
            input_text_tokens=total_in,
            input_cached_tokens=self._cached_tokens,
            input_cached_text_tokens=self._cached_tokens,
            output_text_tokens=self._output_tokens,
        )
        return [FinishChunk(stop_reason=self._stop_reason, usage=usage)]

    def _error(self, payload: Json) -> list[LLMChunk]:
        error = payload.get("error")
        kind = str(error.get("type", "error")) if isinstance(error, dict) else "error"
        message = str(error.get("message", "")) if isinstance(error, dict) else str(payload)
        if kind == "rate_limit_error":
            raise RateLimited(kind, message)
        raise ProviderError(kind, message)


_HANDLERS = {
    "message_start": AnthropicStreamDecoder._message_start,
    "content_block_start": AnthropicStreamDecoder._block_start,
    "content_block_delta": AnthropicStreamDecoder._block_delta,
    "content_block_stop": AnthropicStreamDecoder._block_stop,
    "message_delta": AnthropicStreamDecoder._message_delta,
    "message_stop": AnthropicStreamDecoder._message_stop,
    "error": AnthropicStreamDecoder._error,
}
