"""OpenAI Chat Completions wire format: request bodies and the streaming decoder.

Implements ``POST /v1/chat/completions`` with ``"stream": true`` and
``stream_options.include_usage`` as OpenAI documents it and as Ollama, vLLM and
llama.cpp's server implement it: each SSE ``data:`` line is a ``chat.completion.chunk``
whose ``choices[0].delta`` carries ``content`` and/or ``tool_calls`` fragments (keyed
by ``index``; ``id`` and ``function.name`` arrive with the first fragment,
``function.arguments`` in pieces), ``finish_reason`` ends the choice, a last chunk with
empty ``choices`` carries ``usage``, and ``data: [DONE]`` ends the stream. Servers that
omit call ids get ``call_<index>``; unknown fields are ignored.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, final

from voxengine.config import ToolSpec
from voxengine.errors import ProtocolViolation, ProviderError
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

__all__ = ["ChatStreamDecoder", "chat_request"]

Json = dict[str, Any]
MaxTokensField = Literal["max_tokens", "max_completion_tokens"]

_ROLES = {Role.SYSTEM: "system", Role.USER: "user", Role.ASSISTANT: "assistant", Role.TOOL: "tool"}


def _message(message: ChatMessage) -> Json:
    if message.role is Role.TOOL:
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    body: Json = {"role": _ROLES[message.role], "content": message.text}
    if message.tool_calls:
        body["content"] = message.text or None
        body["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in message.tool_calls
        ]
    return body


def _tool_choice(choice: str) -> str | Json:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def chat_request(
    *,
    model: str,
    messages: Sequence[ChatMessage],
    tools: Sequence[ToolSpec],
    settings: GenerationSettings,
    max_tokens_field: MaxTokensField = "max_tokens",
) -> Json:
    """The JSON body of a streaming ``/chat/completions`` request."""
    body: Json = {
        "model": model,
        "messages": [_message(m) for m in messages],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    "parameters": dict(t.parameters),
                },
            }
            for t in tools
        ]
        if settings.tool_choice is not None:
            body["tool_choice"] = _tool_choice(settings.tool_choice)
    if settings.temperature is not None:
        body["temperature"] = settings.temperature
    if settings.max_output_tokens is not None:
        body[max_tokens_field] = settings.max_output_tokens
    return body


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _usage(raw: Json) -> Usage:
    prompt = _int(raw.get("prompt_tokens"))
    completion = _int(raw.get("completion_tokens"))
    details = raw.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=_int(raw.get("total_tokens")) or prompt + completion,
        input_text_tokens=prompt,
        input_cached_tokens=cached,
        input_cached_text_tokens=cached,
        output_text_tokens=completion,
    )


@final
class ChatStreamDecoder:
    """Turns the ``data:`` payloads of one streamed completion into :data:`LLMChunk` values.

    Raises (from :meth:`feed`):
        ProviderError: an ``{"error": ...}`` payload inside the stream.
        ProtocolViolation: a payload that is neither JSON nor ``[DONE]``.
    """

    __slots__ = ("_calls", "_stop_reason", "_usage", "finished")

    def __init__(self) -> None:
        self._calls: dict[int, Json] = {}
        self._stop_reason: str | None = None
        self._usage: Usage | None = None
        self.finished = False

    def feed(self, data: str) -> list[LLMChunk]:
        """Decode one ``data:`` payload; returns the chunks it produced."""
        if data.strip() == "[DONE]":
            return self.finish()
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise ProtocolViolation("chat completions stream: data is not JSON") from exc
        if not isinstance(payload, dict):
            raise ProtocolViolation("chat completions stream: data is not an object")
        error = payload.get("error")
        if error is not None:
            detail = error if isinstance(error, dict) else {"message": str(error)}
            code = detail.get("code") or detail.get("type") or "stream_error"
            raise ProviderError(str(code), str(detail.get("message", "")))
        if isinstance(payload.get("usage"), dict):
            self._usage = _usage(payload["usage"])
        chunks: list[LLMChunk] = []
        choices = payload.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                chunks.extend(self._choice(choice))
        return chunks

    def _choice(self, choice: Json) -> list[LLMChunk]:
        chunks: list[LLMChunk] = []
        delta = choice.get("delta")
        if isinstance(delta, dict):
            if isinstance(delta.get("content"), str) and delta["content"]:
                chunks.append(TextChunk(text=delta["content"]))
            fragments = delta.get("tool_calls")
            for fragment in fragments if isinstance(fragments, list) else ():
                if isinstance(fragment, dict):
                    chunks.extend(self._tool_fragment(fragment))
        if choice.get("finish_reason"):
            self._stop_reason = str(choice["finish_reason"])
            chunks.extend(self._complete_calls())
        return chunks

    def _tool_fragment(self, fragment: Json) -> list[LLMChunk]:
        index = _int(fragment.get("index"))
        state = self._calls.setdefault(index, {"id": None, "name": "", "arguments": []})
        if fragment.get("id"):
            state["id"] = str(fragment["id"])
        function = fragment.get("function")
        if not isinstance(function, dict):
            return []
        if function.get("name"):
            state["name"] = str(function["name"])
        piece = function.get("arguments")
        if not isinstance(piece, str) or not piece:
            return []
        state["arguments"].append(piece)
        call_id = state["id"] or f"call_{index}"
        return [ToolArgumentsChunk(call_id=call_id, name=state["name"], delta=piece)]

    def _complete_calls(self) -> list[LLMChunk]:
        chunks: list[LLMChunk] = []
        for index in sorted(self._calls):
            state = self._calls[index]
            call = ToolCallRequest(
                call_id=state["id"] or f"call_{index}",
                name=state["name"],
                arguments="".join(state["arguments"]) or "{}",
            )
            chunks.append(ToolCallChunk(call=call))
        self._calls.clear()
        return chunks

    def finish(self) -> list[LLMChunk]:
        """End of stream (``[DONE]`` or EOF): pending calls, then the :class:`FinishChunk`.

        Idempotent: returns nothing once finished.
        """
        if self.finished:
            return []
        self.finished = True
        return [
            *self._complete_calls(),
            FinishChunk(stop_reason=self._stop_reason, usage=self._usage),
        ]
