"""AnthropicLLM and OpenAIChatLLM against the fake APIs over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from voxengine.config import ToolSpec
from voxengine.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectFailed,
    ProviderError,
    RateLimited,
)
from voxengine.events import Role
from voxengine.providers.pipeline import (
    AnthropicLLM,
    ChatMessage,
    FinishChunk,
    GenerationSettings,
    LanguageModel,
    LLMChunk,
    OpenAIChatLLM,
    TextChunk,
    ToolArgumentsChunk,
    ToolCallChunk,
)
from voxengine.testing.fakes.llm import (
    FakeLLMConfig,
    FakeLLMReply,
    FakeLLMServer,
    FakeLLMToolCall,
    FakeLLMTurn,
    run_fake_llm_server,
)

from .conftest import API_KEY

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
SETTINGS = GenerationSettings()


def weather_responder(turn: FakeLLMTurn) -> FakeLLMReply:
    if turn.tool_results:
        return FakeLLMReply(text=f"It is {turn.tool_results[0][1]} there.")
    call = FakeLLMToolCall(name="get_weather", arguments={"city": "Paris"})
    return FakeLLMReply(text="Let me check.", tool_calls=(call,))


def make_llm(kind: str, server: FakeLLMServer, key: str = API_KEY) -> LanguageModel:
    if kind == "anthropic":
        return AnthropicLLM(api_key=key, base_url=server.anthropic_base_url, model="claude-test")
    return OpenAIChatLLM(model="gpt-test", api_key=key, base_url=server.openai_base_url)


async def collect(
    llm: LanguageModel, messages: list[ChatMessage], tools: list[ToolSpec] | None = None
) -> list[LLMChunk]:
    return [chunk async for chunk in llm.stream(messages, tools or [], SETTINGS)]


KINDS = pytest.mark.parametrize("kind", ["anthropic", "openai"])


@KINDS
async def test_streams_text_and_usage(kind: str, fake_llm: FakeLLMServer) -> None:
    llm = make_llm(kind, fake_llm)
    messages = [
        ChatMessage(role=Role.SYSTEM, text="Be brief."),
        ChatMessage(role=Role.USER, text="hello"),
    ]
    chunks = await collect(llm, messages)
    await llm.aclose()
    text = "".join(c.text for c in chunks if isinstance(c, TextChunk))
    assert text == "You said: hello. What else can I do?"
    assert len([c for c in chunks if isinstance(c, TextChunk)]) > 3  # really streamed
    finish = chunks[-1]
    assert isinstance(finish, FinishChunk)
    assert finish.stop_reason in ("end_turn", "stop")
    assert finish.usage is not None
    assert finish.usage.output_tokens == 8
    assert finish.usage.total_tokens == finish.usage.input_tokens + 8
    (request,) = fake_llm.requests
    assert request.completed


async def test_anthropic_request_on_the_wire(fake_llm: FakeLLMServer) -> None:
    llm = make_llm("anthropic", fake_llm)
    await collect(
        llm, [ChatMessage(role=Role.SYSTEM, text="S"), ChatMessage(role=Role.USER, text="hi")]
    )
    await llm.aclose()
    (request,) = fake_llm.requests_to("/v1/messages")
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.body["system"] == "S"
    assert request.body["stream"] is True
    assert request.body["max_tokens"] == 1024


@KINDS
async def test_tool_call_round_trip(kind: str) -> None:
    async with run_fake_llm_server(
        FakeLLMConfig(api_key=API_KEY, responder=weather_responder)
    ) as server:
        llm = make_llm(kind, server)
        messages = [ChatMessage(role=Role.USER, text="Weather in Paris?")]
        chunks = await collect(llm, messages, [WEATHER])
        deltas = [c for c in chunks if isinstance(c, ToolArgumentsChunk)]
        (done,) = [c for c in chunks if isinstance(c, ToolCallChunk)]
        assert done.call.name == "get_weather"
        assert json.loads(done.call.arguments) == {"city": "Paris"}
        assert "".join(d.delta for d in deltas) == done.call.arguments
        assert {d.call_id for d in deltas} == {done.call.call_id}
        messages += [
            ChatMessage(role=Role.ASSISTANT, text="Let me check.", tool_calls=(done.call,)),
            ChatMessage(role=Role.TOOL, text="sunny", tool_call_id=done.call.call_id),
        ]
        chunks = await collect(llm, messages, [WEATHER])
        await llm.aclose()
    assert "".join(c.text for c in chunks if isinstance(c, TextChunk)) == "It is sunny there."


@KINDS
async def test_unanswered_tool_call_is_rejected_by_the_fake(kind: str) -> None:
    async with run_fake_llm_server(
        FakeLLMConfig(api_key=API_KEY, responder=weather_responder)
    ) as server:
        llm = make_llm(kind, server)
        chunks = await collect(llm, [ChatMessage(role=Role.USER, text="Weather?")], [WEATHER])
        (done,) = [c for c in chunks if isinstance(c, ToolCallChunk)]
        messages = [
            ChatMessage(role=Role.USER, text="Weather?"),
            ChatMessage(role=Role.ASSISTANT, tool_calls=(done.call,)),
            ChatMessage(role=Role.USER, text="skip it"),
        ]
        with pytest.raises(ProviderError) as info:
            await collect(llm, messages, [WEATHER])
        await llm.aclose()
    assert info.value.code == "invalid_request_error"
    assert done.call.call_id in info.value.message


@KINDS
async def test_bad_key_is_authentication_failed(kind: str, fake_llm: FakeLLMServer) -> None:
    llm = make_llm(kind, fake_llm, key="wrong-key")
    with pytest.raises(AuthenticationFailed) as info:
        await collect(llm, [ChatMessage(role=Role.USER, text="hi")])
    await llm.aclose()
    assert "wrong-key" not in str(info.value)
    assert "401" in str(info.value)


@KINDS
@pytest.mark.parametrize(
    ("status", "error_type", "exc"),
    [
        (429, "rate_limit_error", RateLimited),
        (500, "api_error", ProviderError),
        (529, "overloaded_error", ProviderError),
    ],
)
async def test_http_errors_are_typed(
    kind: str, status: int, error_type: str, exc: type[ProviderError], fake_llm: FakeLLMServer
) -> None:
    fake_llm.fail_next(status, error_type, "Try again later")
    llm = make_llm(kind, fake_llm)
    with pytest.raises(exc) as info:
        await collect(llm, [ChatMessage(role=Role.USER, text="hi")])
    await llm.aclose()
    assert info.value.message == "Try again later"
    assert info.value.code == error_type


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@KINDS
async def test_connection_refused_is_connect_failed(kind: str) -> None:
    base = f"http://127.0.0.1:{free_port()}"
    llm: LanguageModel = (
        AnthropicLLM(api_key="k", base_url=base)
        if kind == "anthropic"
        else OpenAIChatLLM(model="m", base_url=base + "/v1")
    )
    with pytest.raises(ConnectFailed):
        await collect(llm, [ChatMessage(role=Role.USER, text="hi")])
    await llm.aclose()


async def test_closing_the_stream_early_ends_the_request() -> None:
    config = FakeLLMConfig(api_key=API_KEY, chunk_delay=0.02)
    async with run_fake_llm_server(config) as server:
        llm = make_llm("anthropic", server)
        stream = llm.stream(
            [ChatMessage(role=Role.USER, text="one two three four five six")], [], SETTINGS
        )
        first = await anext(stream)
        assert isinstance(first, TextChunk)
        await stream.aclose()  # type: ignore[attr-defined]
        await llm.aclose()
        for _ in range(50):
            if server.requests[0].status is not None:
                break
            await asyncio.sleep(0.02)
        (request,) = server.requests
        assert not request.completed  # the server saw the client go away mid-stream


def test_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicLLM()
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        OpenAIChatLLM(model="gpt-4o-mini")
    OpenAIChatLLM(model="llama3.2", base_url="http://localhost:11434/v1")  # no key needed
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    llm = AnthropicLLM()
    assert "secret" not in repr(llm)
    assert llm.label == "anthropic claude-haiku-4-5"
