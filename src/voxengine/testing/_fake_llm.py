"""Protocol-faithful fakes of the HTTP APIs a cascaded pipeline talks to.

:func:`run_fake_llm_server` serves, on 127.0.0.1 over real sockets (HTTP/1.1,
keep-alive, chunked streaming):

* Anthropic Messages — ``POST /v1/messages``: ``x-api-key`` and ``anthropic-version``
  headers, body validation (model, max_tokens, messages, content blocks, the rule that
  every ``tool_use`` is answered by a ``tool_result`` in the next message, tools,
  tool_choice, temperature 0..1), and the streaming event sequence ``message_start``,
  ``ping``, ``content_block_start``/``content_block_delta``
  (``text_delta``/``input_json_delta``)/``content_block_stop``, ``message_delta`` with
  usage, ``message_stop`` (or one JSON message when ``stream`` is false).
* OpenAI Chat Completions — ``POST /v1/chat/completions``: Bearer key, validation
  (model, messages, roles, tool messages answering ``tool_calls``, ``stream_options``
  only with ``stream``), ``chat.completion.chunk`` SSE with ``delta.content``,
  ``delta.tool_calls`` fragments, ``finish_reason``, the usage chunk of
  ``stream_options.include_usage``, and ``data: [DONE]``.
* OpenAI audio — ``POST /v1/audio/transcriptions`` (multipart with a WAV ``file`` and
  ``model``; replies ``{"text": ...}``) and ``POST /v1/audio/speech``
  (``response_format`` ``pcm`` (24 kHz PCM16, streamed) or ``wav``).

Errors use each API's real JSON shape and status: a bad key gives 401 with
``authentication_error`` (Anthropic) or ``invalid_api_key`` (OpenAI); invalid requests
give 400 ``invalid_request_error``. :meth:`FakeLLMServer.fail_next` injects failures
(429, 500, 529 ...). Replies come from a :data:`FakeLLMResponder` you control; every
request is kept in :attr:`FakeLLMServer.requests`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import io
import itertools
import json
import re
import wave
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from ._http_server import ClientGone, HttpRequest, HttpResponder, serve_http
from ._speechlike import synthesize_words

__all__ = [
    "FakeLLMConfig",
    "FakeLLMReply",
    "FakeLLMResponder",
    "FakeLLMServer",
    "FakeLLMToolCall",
    "FakeLLMTurn",
    "RecordedRequest",
    "echo_llm_responder",
    "run_fake_llm_server",
]

Json = dict[str, Any]
Api = Literal["anthropic", "openai"]

_TOOL_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SPEECH_RATE: Final = 24_000


# --- public value types ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeLLMToolCall:
    """A function call the fake model makes."""

    name: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeLLMReply:
    """What the fake model answers: text, then calls (either may be empty)."""

    text: str = ""
    tool_calls: tuple[FakeLLMToolCall, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeLLMTurn:
    """What the responder sees of a valid request.

    Attributes:
        api: which API was called. model: the requested model. system: the system
        prompt. user_text: text of the last user message ("" if it holds only tool
        results). tool_results: ``(call_id, output)`` answered in the last turn.
        tool_names: tools offered. message_count: messages in the request.
    """

    api: Api
    model: str
    system: str
    user_text: str
    tool_results: tuple[tuple[str, str], ...]
    tool_names: tuple[str, ...]
    message_count: int


FakeLLMResponder = Callable[[FakeLLMTurn], FakeLLMReply]


def echo_llm_responder(turn: FakeLLMTurn) -> FakeLLMReply:
    """Default replies: echo the user ("You said: ..."), or read out a tool result."""
    if turn.tool_results:
        return FakeLLMReply(text=f"The tool returned {turn.tool_results[-1][1]}. Anything else?")
    return FakeLLMReply(text=f"You said: {turn.user_text}. What else can I do?")


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeLLMConfig:
    """Fake server settings.

    Attributes:
        api_key: the only key accepted by every endpoint.
        responder: produces the model's replies.
        chunk_delay: seconds between streamed events/chunks (0: as fast as possible).
        transcript: what the transcription endpoint hears in any audio.
        speech_seconds_per_word: length of the speech endpoint's audio per word.
    """

    api_key: str = field(default="test-key", repr=False)
    responder: FakeLLMResponder = echo_llm_responder
    chunk_delay: float = 0.0
    transcript: str = "what time is it"
    speech_seconds_per_word: float = 0.3


@dataclass(slots=True, kw_only=True)
class RecordedRequest:
    """One request as received, and how it ended.

    ``body`` is the parsed JSON (or, for multipart, the form fields with the file's
    size); ``status`` the HTTP status sent; ``completed`` False when the client went
    away before the response ended (e.g. a cancelled stream).
    """

    path: str
    headers: Mapping[str, str]
    body: Any
    status: int | None = None
    completed: bool = False


class _Refusal(Exception):
    def __init__(self, status: int, error_type: str, message: str, param: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.param = param


def _error_body(api: Api, refusal: _Refusal) -> Json:
    if api == "anthropic":
        return {"type": "error", "error": {"type": refusal.error_type, "message": refusal.message}}
    code = refusal.error_type if refusal.error_type != "invalid_request_error" else None
    if refusal.status == 401:
        code = "invalid_api_key"
    kind = "invalid_request_error" if refusal.status < 500 else "server_error"
    return {
        "error": {"message": refusal.message, "type": kind, "param": refusal.param, "code": code}
    }


def _pieces(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text) or ([text] if text else [])


def _json_fragments(arguments: str, size: int = 12) -> list[str]:
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def _words(value: object) -> int:
    return len(json.dumps(value).split()) if value else 0


# --- the server ------------------------------------------------------------------------------


class FakeLLMServer:
    """Request handling for all four endpoints; :func:`run_fake_llm_server` serves it."""

    def __init__(self, config: FakeLLMConfig | None = None) -> None:
        self.config = config or FakeLLMConfig()
        #: Every request received, in order.
        self.requests: list[RecordedRequest] = []
        #: Base URL once serving, e.g. ``http://127.0.0.1:41234``.
        self.url = ""
        self._faults: deque[_Refusal] = deque()
        self._ids = itertools.count(1)

    @property
    def anthropic_base_url(self) -> str:
        """``base_url`` for Anthropic clients (the API root, without ``/v1``)."""
        return self.url

    @property
    def openai_base_url(self) -> str:
        """``base_url`` for OpenAI clients (with ``/v1``)."""
        return f"{self.url}/v1"

    def fail_next(self, status: int, error_type: str, message: str, *, times: int = 1) -> None:
        """Refuse the next ``times`` requests with ``status`` and this error (real shapes)."""
        for _ in range(times):
            self._faults.append(_Refusal(status, error_type, message))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests for ``path`` (e.g. ``"/v1/messages"``)."""
        return [r for r in self.requests if r.path == path]

    async def handle(self, request: HttpRequest, out: HttpResponder) -> None:
        """Serve one request (the :data:`~._http_server.HttpHandler` of this fake)."""
        record = RecordedRequest(path=request.path, headers=request.headers, body=None)
        self.requests.append(record)
        routes = {
            "/v1/messages": ("anthropic", self._anthropic),
            "/v1/chat/completions": ("openai", self._chat),
            "/v1/audio/transcriptions": ("openai", self._transcription),
            "/v1/audio/speech": ("openai", self._speech),
        }
        api: Api
        api, route = routes.get(request.path, ("openai", None))  # type: ignore[assignment]
        try:
            if route is None or request.method != "POST":
                raise _Refusal(
                    404, "not_found_error", f"Unknown request URL: {request.method} {request.path}"
                )
            self._authenticate(api, request.headers)
            if self._faults:
                raise self._faults.popleft()
            await route(request, out, record)
        except _Refusal as refusal:
            await out.send_json(refusal.status, _error_body(api, refusal))
        except ClientGone:
            record.status = out.status
            return
        record.status = out.status
        record.completed = True

    def _authenticate(self, api: Api, headers: Mapping[str, str]) -> None:
        if api == "anthropic":
            key = headers.get("x-api-key")
            if key is None:
                raise _Refusal(401, "authentication_error", "x-api-key header is required")
            if key != self.config.api_key:
                raise _Refusal(401, "authentication_error", "invalid x-api-key")
            if "anthropic-version" not in headers:
                raise _Refusal(
                    400, "invalid_request_error", "anthropic-version: header is required"
                )
            return
        auth = headers.get("authorization", "")
        if not auth:
            raise _Refusal(401, "invalid_request_error", "You didn't provide an API key.")
        if auth != f"Bearer {self.config.api_key}":
            raise _Refusal(401, "invalid_api_key", "Incorrect API key provided.")

    async def _pause(self) -> None:
        if self.config.chunk_delay:
            await asyncio.sleep(self.config.chunk_delay)

    def _reply(self, turn: FakeLLMTurn) -> FakeLLMReply:
        try:
            return self.config.responder(turn)
        except Exception as exc:
            raise _Refusal(500, "api_error", f"responder failed: {exc}") from exc

    # -- Anthropic -------------------------------------------------------------------------

    async def _anthropic(
        self, request: HttpRequest, out: HttpResponder, record: RecordedRequest
    ) -> None:
        body = _json_object(request, "anthropic")
        record.body = body
        turn = _anthropic_turn(body)
        reply = self._reply(turn)
        message_id = f"msg_fake{next(self._ids):04d}"
        calls = [(f"toolu_fake{next(self._ids):04d}", c) for c in reply.tool_calls]
        stop = "tool_use" if calls else "end_turn"
        input_tokens = _words(body.get("messages")) + _words(body.get("system"))
        output_tokens = len(_pieces(reply.text)) + len(calls)
        if not body.get("stream"):
            content: list[Json] = [{"type": "text", "text": reply.text}] if reply.text else []
            content += [
                {"type": "tool_use", "id": cid, "name": c.name, "input": dict(c.arguments)}
                for cid, c in calls
            ]
            await out.send_json(
                200,
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": turn.model,
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
                },
            )
            return
        await out.start(200, {"content-type": "text/event-stream", "cache-control": "no-cache"})

        async def event(name: str, data: Json) -> None:
            await out.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            await self._pause()

        await event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": turn.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 1},
                },
            },
        )
        await event("ping", {"type": "ping"})
        index = 0
        if reply.text:
            await event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for piece in _pieces(reply.text):
                await event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 0,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            await event("content_block_stop", {"type": "content_block_stop", "index": 0})
            index = 1
        for offset, (call_id, call) in enumerate(calls):
            i = index + offset
            await event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": i,
                    "content_block": {
                        "type": "tool_use",
                        "id": call_id,
                        "name": call.name,
                        "input": {},
                    },
                },
            )
            for fragment in ["", *_json_fragments(json.dumps(dict(call.arguments)))]:
                await event(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": i,
                        "delta": {"type": "input_json_delta", "partial_json": fragment},
                    },
                )
            await event("content_block_stop", {"type": "content_block_stop", "index": i})
        await event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        )
        await event("message_stop", {"type": "message_stop"})
        await out.end()

    # -- OpenAI chat -----------------------------------------------------------------------------

    async def _chat(
        self, request: HttpRequest, out: HttpResponder, record: RecordedRequest
    ) -> None:
        body = _json_object(request, "openai")
        record.body = body
        turn = _chat_turn(body)
        reply = self._reply(turn)
        completion_id = f"chatcmpl-fake{next(self._ids):04d}"
        calls = [(f"call_fake{next(self._ids):04d}", c) for c in reply.tool_calls]
        finish = "tool_calls" if calls else "stop"
        prompt_tokens = _words(body.get("messages"))
        completion_tokens = len(_pieces(reply.text)) + len(calls)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        base = {
            "id": completion_id,
            "created": 1_700_000_000,
            "model": turn.model,
            "system_fingerprint": None,
        }
        tool_calls = [
            {
                "id": cid,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(dict(c.arguments))},
            }
            for cid, c in calls
        ]
        if not body.get("stream"):
            message: Json = {"role": "assistant", "content": reply.text or None}
            if tool_calls:
                message["tool_calls"] = tool_calls
            await out.send_json(
                200,
                {
                    **base,
                    "object": "chat.completion",
                    "usage": usage,
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                    ],
                },
            )
            return
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        await out.start(200, {"content-type": "text/event-stream", "cache-control": "no-cache"})

        async def chunk(delta: Json, finish_reason: str | None = None) -> None:
            data: Json = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
                ],
            }
            if include_usage:
                data["usage"] = None
            await out.write(f"data: {json.dumps(data)}\n\n".encode())
            await self._pause()

        await chunk({"role": "assistant", "content": ""})
        for piece in _pieces(reply.text):
            await chunk({"content": piece})
        for index, (call_id, call) in enumerate(calls):
            await chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for fragment in _json_fragments(json.dumps(dict(call.arguments))):
                await chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
        await chunk({}, finish)
        if include_usage:
            data = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            await out.write(f"data: {json.dumps(data)}\n\n".encode())
        await out.write(b"data: [DONE]\n\n")
        await out.end()

    # -- OpenAI audio ------------------------------------------------------------------------

    async def _transcription(
        self, request: HttpRequest, out: HttpResponder, record: RecordedRequest
    ) -> None:
        fields = _multipart(request)
        record.body = {k: (len(v) if k == "file" else v.decode()) for k, v in fields.items()}
        if "file" not in fields:
            raise _Refusal(400, "invalid_request_error", "you must provide a file", "file")
        if "model" not in fields:
            raise _Refusal(
                400, "invalid_request_error", "you must provide a model parameter", "model"
            )
        try:
            with wave.open(io.BytesIO(fields["file"]), "rb") as wav:
                wav.getnframes()
        except (wave.Error, EOFError) as exc:
            raise _Refusal(400, "invalid_request_error", "Invalid file format.", "file") from exc
        await out.send_json(200, {"text": self.config.transcript})

    async def _speech(
        self, request: HttpRequest, out: HttpResponder, record: RecordedRequest
    ) -> None:
        body = _json_object(request, "openai")
        record.body = body
        for name in ("model", "input", "voice"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise _Refusal(
                    400, "invalid_request_error", f"missing required parameter: '{name}'", name
                )
        if len(body["input"]) > 4096:
            raise _Refusal(
                400, "invalid_request_error", "input is longer than 4096 characters", "input"
            )
        fmt = body.get("response_format", "mp3")
        if fmt not in ("pcm", "wav"):
            raise _Refusal(
                400,
                "invalid_request_error",
                f"this fake serves pcm and wav, not {fmt!r}",
                "response_format",
            )
        samples = synthesize_words(
            body["input"].split(),
            seconds_per_word=self.config.speech_seconds_per_word,
            sample_rate=_SPEECH_RATE,
        )
        pcm = samples.astype("<i2").tobytes()
        if fmt == "wav":
            buffer = io.BytesIO()
            with wave.open(buffer, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(_SPEECH_RATE)
                wav.writeframes(pcm)
            await out.send(200, buffer.getvalue(), "audio/wav")
            return
        await out.start(200, {"content-type": "audio/pcm"})
        step = _SPEECH_RATE // 10 * 2 + 1  # 100 ms, odd on purpose: clients must re-align
        for i in range(0, len(pcm), step):
            await out.write(pcm[i : i + step])
            await self._pause()
        await out.end()


# --- request validation -------------------------------------------------------------------------


def _json_object(request: HttpRequest, api: Api) -> Json:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise _Refusal(400, "invalid_request_error", "content-type must be application/json")
    try:
        body = request.json()
    except ValueError as exc:
        raise _Refusal(
            400, "invalid_request_error", "There was an error parsing the body as JSON"
        ) from exc
    if not isinstance(body, dict):
        raise _Refusal(400, "invalid_request_error", "the body must be a JSON object")
    return body


def _invalid(message: str, param: str | None = None) -> _Refusal:
    return _Refusal(400, "invalid_request_error", message, param)


def _anthropic_blocks(content: Any, where: str) -> list[Json]:
    if isinstance(content, str):
        if not content:
            raise _invalid(f"{where}: text content blocks must be non-empty")
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise _invalid(f"{where}: content must be a non-empty string or list of blocks")
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        at = f"{where}.content.{j}"
        if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
            raise _invalid(f"{at}: text content blocks must be non-empty")
        if kind == "tool_use" and not (
            block.get("id") and block.get("name") and isinstance(block.get("input"), dict)
        ):
            raise _invalid(f"{at}: tool_use blocks need id, name and an object input")
        if kind == "tool_result" and not block.get("tool_use_id"):
            raise _invalid(f"{at}.tool_use_id: Field required")
        if kind not in ("text", "tool_use", "tool_result", "image", "document", "thinking"):
            raise _invalid(
                f"{at}.type: Input tag {kind!r} found using 'type' does not match any of "
                "the expected tags"
            )
    return content


def _anthropic_turn(body: Json) -> FakeLLMTurn:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _invalid("max_tokens: Field required (an integer >= 1)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: at least one message is required")
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 1
    ):
        raise _invalid("temperature: Input should be less than or equal to 1")
    system = body.get("system", "")
    if isinstance(system, list):
        system = " ".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise _invalid("tools: Input should be a valid list")
    for i, spec in enumerate(tools):
        if not isinstance(spec, dict) or not _TOOL_NAME.match(str(spec.get("name", ""))):
            raise _invalid(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        schema = spec.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise _invalid(f"tools.{i}.input_schema: Input should be an object schema")
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")
    ):
        raise _invalid("tool_choice: Input tag does not match any of the expected tags")
    if isinstance(choice, dict) and choice.get("type") == "tool" and not choice.get("name"):
        raise _invalid("tool_choice.tool.name: Field required")
    pending: list[str] = []
    last_user_text = ""
    results: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        blocks = _anthropic_blocks(message.get("content"), where)
        answered = [b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"]
        missing = [p for p in pending if p not in answered]
        if missing:
            raise _invalid(
                f"{where}: `tool_use` ids were found without `tool_result` blocks immediately "
                f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            )
        unexpected = [a for a in answered if a not in pending]
        if unexpected:
            raise _invalid(
                f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(unexpected)}. Each `tool_result` block must have a corresponding "
                "`tool_use` block in the previous message."
            )
        pending = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if message["role"] == "user":
            last_user_text = " ".join(b["text"] for b in blocks if b.get("type") == "text")
            results = [
                (b["tool_use_id"], _result_text(b.get("content")))
                for b in blocks
                if b.get("type") == "tool_result"
            ]
    if pending and messages[-1].get("role") == "assistant":
        pass  # a trailing assistant turn is a prefill; its calls are not answered yet
    return FakeLLMTurn(
        api="anthropic",
        model=body["model"],
        system=str(system),
        user_text=last_user_text,
        tool_results=tuple(results),
        tool_names=tuple(str(t["name"]) for t in tools),
        message_count=len(messages),
    )


def _result_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


def _chat_turn(body: Json) -> FakeLLMTurn:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _invalid("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("[] is too short - 'messages'", "messages")
    if body.get("stream_options") is not None and not body.get("stream"):
        raise _invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 2
    ):
        raise _invalid("temperature must be within [0, 2]", "temperature")
    tools = body.get("tools") or []
    for i, spec in enumerate(tools):
        function = spec.get("function") if isinstance(spec, dict) else None
        if (
            not isinstance(spec, dict)
            or spec.get("type") != "function"
            or not isinstance(function, dict)
        ):
            raise _invalid(
                f"Missing required parameter: 'tools[{i}].function'.", f"tools[{i}].function"
            )
        if not _TOOL_NAME.match(str(function.get("name", ""))):
            raise _invalid(f"Invalid 'tools[{i}].function.name'.", f"tools[{i}].function.name")
    pending: list[str] = []
    system: list[str] = []
    last_user_text = ""
    results: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise _invalid(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                "'user', 'tool', and 'developer'.",
                f"messages[{i}].role",
            )
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise _invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            pending.remove(call_id)
            results.append((str(call_id), str(message.get("content", ""))))
            continue
        if pending:
            raise _invalid(
                _unanswered(pending),
                f"messages.[{i}].role",
            )
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(str(content or ""))
        elif role == "user":
            last_user_text = str(content or "")
            results = []
        else:
            calls = message.get("tool_calls") or []
            if content is None and not calls:
                raise _invalid(
                    "assistant messages need content or tool_calls", f"messages.[{i}].content"
                )
            pending = [str(c.get("id")) for c in calls if isinstance(c, dict)]
            results = []
    if pending:
        raise _invalid(
            _unanswered(pending),
            "messages",
        )
    return FakeLLMTurn(
        api="openai",
        model=body["model"],
        system="\n".join(system),
        user_text=last_user_text,
        tool_results=tuple(results),
        tool_names=tuple(str(t["function"]["name"]) for t in tools),
        message_count=len(messages),
    )


def _unanswered(pending: list[str]) -> str:
    return (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(pending)
    )


def _multipart(request: HttpRequest) -> dict[str, bytes]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise _invalid("content-type must be multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields


@contextlib.asynccontextmanager
async def run_fake_llm_server(config: FakeLLMConfig | None = None) -> AsyncIterator[FakeLLMServer]:
    """Serve a :class:`FakeLLMServer` on 127.0.0.1; yields it with ``url`` set.

    Example::

        async with run_fake_llm_server(FakeLLMConfig(api_key="k")) as server:
            llm = AnthropicLLM(api_key="k", base_url=server.anthropic_base_url)
    """
    server = FakeLLMServer(config)
    async with serve_http(server.handle) as url:
        server.url = url
        yield server
