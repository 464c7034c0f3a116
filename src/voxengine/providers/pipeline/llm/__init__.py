"""Language models for the pipeline: a local llama.cpp model, Anthropic, any
OpenAI-compatible server, and an offline rule-based responder.

* :class:`~.llama.LlamaCppLLM` — a GGUF model in-process via llama.cpp (the ``local``
  extra; SmolLM2-135M-Instruct by default): the default model of the local pipeline.
* :class:`AnthropicLLM` — the Anthropic Messages API, streamed (``/v1/messages``).
* :class:`OpenAIChatLLM` — ``/v1/chat/completions`` of OpenAI, Ollama, vLLM,
  llama.cpp's server, or anything else speaking that protocol.
* :class:`LocalResponder` — the built-in local responder: deterministic rules, no
  network, **not an AI model**; the fallback when the ``local`` extra is not
  installed, and a deterministic test double.

All implement :class:`~voxengine.providers.pipeline.stages.LanguageModel`.
HTTP errors are translated as described in :mod:`._http`; the wire formats live in
:mod:`._anthropic_wire` and :mod:`._openai_wire`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final, final

from voxengine.config import ToolSpec
from voxengine.errors import ConfigError, ProtocolViolation
from voxengine.events import Role, Usage

from .._anthropic_wire import AnthropicStreamDecoder, messages_request
from .._http import OPENAI_BASE_URL, HttpSettings, HttpStage, openai_key, post_events
from .._openai_wire import ChatStreamDecoder, MaxTokensField, chat_request
from ..stages import (
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LLMChunk,
    TextChunk,
    ToolCallChunk,
    ToolCallRequest,
)
from .llama import LlamaCppLLM

__all__ = [
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_VERSION",
    "DEFAULT_ANTHROPIC_MODEL",
    "OPENAI_BASE_URL",
    "AnthropicLLM",
    "LlamaCppLLM",
    "LocalResponder",
    "OpenAIChatLLM",
]

ANTHROPIC_BASE_URL: Final = "https://api.anthropic.com"
ANTHROPIC_VERSION: Final = "2023-06-01"
DEFAULT_ANTHROPIC_MODEL: Final = "claude-haiku-4-5"


@final
class AnthropicLLM(HttpStage):
    """Claude through the Anthropic Messages API, streamed over HTTP (SSE).

    Args:
        model: model name, e.g. ``"claude-haiku-4-5"`` (the default: fast, for voice).
        api_key: the key; default ``$ANTHROPIC_API_KEY``. Sent as ``x-api-key``.
        base_url: API root without ``/v1`` (a proxy, or a fake server in tests).
        max_tokens: ``max_tokens`` when the session sets no ``max_output_tokens``.
        http: timeouts.

    Raises:
        ConfigError: no key given and ``$ANTHROPIC_API_KEY`` is unset.
    """

    def __init__(
        self,
        *,
        model: str = DEFAULT_ANTHROPIC_MODEL,
        api_key: str | None = None,
        base_url: str = ANTHROPIC_BASE_URL,
        max_tokens: int = 1024,
        http: HttpSettings | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise ConfigError(
                "AnthropicLLM needs an API key: pass api_key=... or set ANTHROPIC_API_KEY"
            )
        if max_tokens < 1:
            raise ConfigError("max_tokens must be at least 1")
        headers = {
            "x-api-key": key,
            "anthropic-version": ANTHROPIC_VERSION,
            "content-type": "application/json",
            "accept": "text/event-stream",
        }
        super().__init__(base_url, headers, http or HttpSettings())
        self.model = model
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"AnthropicLLM(model={self.model!r}, base_url={self._base_url!r})"

    @property
    def label(self) -> str:
        """``"anthropic <model>"``."""
        return f"anthropic {self.model}"

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings,
    ) -> AsyncIterator[LLMChunk]:
        """Stream Claude's reply; see :class:`~.stages.LanguageModel` for the contract.

        Raises:
            TransportError: as the HTTP exchange fails (``AuthenticationFailed``,
                ``ConnectFailed``), or ``ProviderError`` (``RateLimited``) and
                ``ProtocolViolation`` from the reply.
        """
        body = messages_request(
            model=self.model,
            messages=messages,
            tools=tools,
            settings=settings,
            default_max_tokens=self.max_tokens,
        )
        decoder = AnthropicStreamDecoder()
        async with post_events(self._client_now(), "/v1/messages", json=body) as events:
            async for event in events:
                for chunk in decoder.feed(event.event, event.data):
                    yield chunk
                if decoder.finished:
                    return
        raise ProtocolViolation("Anthropic stream ended before message_stop")


@final
class OpenAIChatLLM(HttpStage):
    """Any OpenAI-compatible ``/chat/completions`` server, streamed (SSE).

    Examples: OpenAI (default ``base_url``), Ollama (``http://localhost:11434/v1``),
    vLLM (``http://host:8000/v1``), llama.cpp (``http://host:8080/v1``).

    Args:
        model: model name as the server knows it.
        base_url: API root including ``/v1``.
        api_key: sent as ``Authorization: Bearer``. With the default OpenAI
            ``base_url`` it defaults to ``$OPENAI_API_KEY`` (and is required); for other
            servers it is optional and the environment is never read, so an OpenAI key
            is not sent to a third-party server by accident.
        max_tokens_field: the request field for ``max_output_tokens``;
            ``"max_tokens"`` works with most servers, OpenAI's reasoning models need
            ``"max_completion_tokens"``.
        http: timeouts.

    Raises:
        ConfigError: empty model, or no key for the OpenAI API.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str = OPENAI_BASE_URL,
        api_key: str | None = None,
        max_tokens_field: MaxTokensField = "max_tokens",
        http: HttpSettings | None = None,
    ) -> None:
        if not model:
            raise ConfigError("OpenAIChatLLM needs a model name")
        api_key = openai_key(api_key, base_url)
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        super().__init__(base_url, headers, http or HttpSettings())
        self.model = model
        self.max_tokens_field: MaxTokensField = max_tokens_field

    def __repr__(self) -> str:
        return f"OpenAIChatLLM(model={self.model!r}, base_url={self._base_url!r})"

    @property
    def label(self) -> str:
        """``"<model> via <base_url>"``."""
        return f"{self.model} via {self._base_url}"

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings,
    ) -> AsyncIterator[LLMChunk]:
        """Stream the completion; see :class:`~.stages.LanguageModel` for the contract.

        A stream that ends without ``[DONE]`` is accepted (some servers omit it).

        Raises:
            TransportError: as the HTTP exchange fails (``AuthenticationFailed``,
                ``ConnectFailed``), or ``ProviderError`` (``RateLimited``) and
                ``ProtocolViolation`` from the reply.
        """
        body = chat_request(
            model=self.model,
            messages=messages,
            tools=tools,
            settings=settings,
            max_tokens_field=self.max_tokens_field,
        )
        decoder = ChatStreamDecoder()
        async with post_events(self._client_now(), "/chat/completions", json=body) as events:
            async for event in events:
                for chunk in decoder.feed(event.data):
                    yield chunk
                if decoder.finished:
                    return
        for chunk in decoder.finish():
            yield chunk


# --------------------------------------------------------------------------- local responder

_GREETING = re.compile(r"\b(hello|hi|hey|good (morning|afternoon|evening)|greetings)\b", re.I)
_WEATHER = re.compile(r"\b(weather|forecast|rain|sunny|temperature)\b", re.I)
_TIME = re.compile(r"\b(time|clock|hour)\b", re.I)
_DATE = re.compile(r"\b(date|day|today)\b", re.I)


@final
class LocalResponder:
    """The built-in local responder (not an AI model): fixed rules, offline, deterministic.

    It answers the last user message: greetings with a greeting that says what it is,
    weather questions by saying it cannot check the weather (and telling the time),
    questions about the time or date with the local clock, and anything else by
    echoing it ("You said: ..."). If a tool offered to it is named in the message
    (``get_weather`` or "get weather"), it calls that tool with ``{}`` arguments, and
    after the tool result it reads the result out.

    The reply is streamed word by word, ``delay`` seconds apart, so sentence-wise
    speech and barge-in behave as with a real model. Usage counts words as tokens.

    Args:
        clock: returns the current local time (injectable for tests).
        delay: seconds between streamed words.
    """

    def __init__(
        self, *, clock: Callable[[], dt.datetime] = dt.datetime.now, delay: float = 0.0
    ) -> None:
        if delay < 0:
            raise ConfigError("delay must be >= 0 seconds")
        self._clock = clock
        self._delay = delay

    @property
    def label(self) -> str:
        """Says plainly what this is."""
        return "built-in local responder (not an AI model)"

    async def open(self) -> None:
        """Nothing to prepare."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def reply(
        self, messages: Sequence[ChatMessage], tools: Sequence[ToolSpec]
    ) -> str | ToolCallRequest:
        """The reply text, or the tool call, for ``messages`` (pure; used by :meth:`stream`)."""
        last = next((m for m in reversed(messages) if m.role is not Role.SYSTEM), None)
        if last is None:
            return "Hello! I am the built-in local responder, not an AI model. Ask me the time."
        if last.role is Role.TOOL:
            name = _call_name(messages, last.tool_call_id)
            return f"The {name} tool returned: {_plain(last.text)}."
        text = last.text.strip()
        lowered = text.lower()
        for spec in tools:
            if spec.name.lower() in lowered or spec.name.replace("_", " ").lower() in lowered:
                return ToolCallRequest(
                    call_id=f"local_call_{len(messages)}", name=spec.name, arguments="{}"
                )
        now = self._clock()
        if _WEATHER.search(text):
            return (
                "I cannot check the weather: I am the built-in local responder, not an AI "
                f"model, with no weather service. It is {now:%H:%M} on {now:%A}."
            )
        if _TIME.search(text):
            return f"It is {now:%H:%M}. Today is {now:%A, %d %B %Y}."
        if _DATE.search(text):
            return f"Today is {now:%A, %d %B %Y}."
        if _GREETING.search(text):
            return "Hello! I am the built-in local responder, not an AI model. Ask me the time."
        if not text:
            return "I did not catch that. Could you say it again?"
        return f"You said: {text}"

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        tools: Sequence[ToolSpec],
        settings: GenerationSettings,
    ) -> AsyncIterator[LLMChunk]:
        """Stream :meth:`reply` word by word. Of ``settings`` only ``tool_choice="none"``
        matters (no tool calls); there is nothing to sample."""
        answer = self.reply(messages, () if settings.tool_choice == "none" else tools)
        prompt_words = sum(len(m.text.split()) for m in messages)
        if isinstance(answer, ToolCallRequest):
            yield ToolCallChunk(call=answer)
            words = 1
        else:
            pieces = re.findall(r"\S+\s*", answer)
            for piece in pieces:
                if self._delay:
                    await asyncio.sleep(self._delay)
                yield TextChunk(text=piece)
            words = len(pieces)
        usage = Usage(
            input_tokens=prompt_words,
            output_tokens=words,
            total_tokens=prompt_words + words,
            input_text_tokens=prompt_words,
            output_text_tokens=words,
        )
        yield FinishChunk(
            stop_reason="tool_use" if isinstance(answer, ToolCallRequest) else "end_turn",
            usage=usage,
        )


def _call_name(messages: Sequence[ChatMessage], call_id: str | None) -> str:
    for message in messages:
        for call in message.tool_calls:
            if call.call_id == call_id:
                return call.name
    return "requested"


def _plain(output: str) -> str:
    """A tool output as speakable text: JSON strings unquoted, objects as ``key value``."""
    try:
        value = json.loads(output)
    except ValueError:
        return output.strip().rstrip(".")
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value).rstrip(".")
