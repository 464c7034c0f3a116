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
import io
import itertools
import json
import wave
from collections import deque
from collections.abc import AsyncIterator, Mapping

from voxengine.testing._http_server import ClientGone, HttpRequest, HttpResponder, serve_http
from voxengine.testing._speechlike import synthesize_words

from .requests import (
    _anthropic_turn,
    _chat_turn,
    _json_object,
    _multipart,
)
from .types import (
    _SPEECH_RATE,
    Api,
    FakeLLMConfig,
    FakeLLMReply,
    FakeLLMTurn,
    Json,
    RecordedRequest,
    _error_body,
    _json_fragments,
    _pieces,
    _Refusal,
    _words,
)


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
