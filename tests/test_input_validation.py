"""Bad input is typed, and nothing is sent or lost when it is refused.

For every provider (openai and gemini against their fake servers on 127.0.0.1, the
mock, the pipeline) and the VoiceEngine: text with a lone surrogate or longer than
:data:`~voxengine.commands.MAX_TEXT_CHARS` raises :class:`TextError` before anything
goes out (and the session keeps working); a sample rate of 0, negative, or not an
int is an :class:`AudioError`; every method that acts on the session raises
:class:`InvalidState` after ``disconnect()``; and the engine's input resampler is
flushed when a turn is committed.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from voxengine import (
    AudioError,
    AudioFormat,
    InputCommitted,
    InvalidState,
    ResponseDone,
    SessionConfig,
    TextError,
    VoiceEngine,
    VoiceEngineConfig,
    VoxError,
)
from voxengine.commands import MAX_TEXT_CHARS, validate_text
from voxengine.config import TurnDetection, TurnDetectionConfig
from voxengine.providers.base import BaseProvider
from voxengine.providers.gemini import GeminiConfig, GeminiProvider
from voxengine.providers.openai import OpenAIConfig, OpenAIProvider
from voxengine.testing import FakeOpenAIServerHandle, run_fake_gemini_server
from voxengine.testing.mock import MockProvider

from .conftest import collect_until

LONE = "caf\udce9 au lait"  # what bytes.decode("utf-8", "surrogateescape") leaves behind
TOO_LONG = "a" * (MAX_TEXT_CHARS + 1)
BAD_RATES: list[Any] = [0, -16_000, 16_000.0, "16000", True]


def _pipeline() -> BaseProvider:
    pytest.importorskip("espeakng_loader")
    pytest.importorskip("pocketsphinx")
    from voxengine.providers.pipeline import LocalResponder, PipelineConfig, PipelineProvider

    manual = SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL))
    return PipelineProvider(PipelineConfig(llm=LocalResponder(), session=manual))


@pytest.fixture(params=["openai", "gemini", "mock", "pipeline"])
async def provider(
    request: pytest.FixtureRequest, fake_openai: FakeOpenAIServerHandle
) -> AsyncIterator[BaseProvider]:
    name = request.param
    if name == "openai":
        yield OpenAIProvider(OpenAIConfig(api_key="sk-input", base_url=fake_openai.url))
    elif name == "gemini":
        async with run_fake_gemini_server() as fake:
            yield GeminiProvider(GeminiConfig(api_key="g-input", base_url=fake.url))
    elif name == "mock":
        yield MockProvider()
    else:
        yield _pipeline()


# -- text ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [LONE, TOO_LONG, "", b"bytes", None])
async def test_bad_text_is_a_text_error_and_the_session_keeps_working(
    provider: BaseProvider, text: Any
) -> None:
    await provider.connect(retry_count=0)
    try:
        stream = provider.events()
        for send in (provider.send_text, provider.add_message):
            with pytest.raises(TextError):
                await send(text)
        await provider.send_text("still here")  # nothing half-sent blocks the next turn
        events = await collect_until(stream, ResponseDone, timeout=20)
        assert isinstance(events[-1], ResponseDone)
    finally:
        await provider.disconnect()


def test_text_error_says_what_is_wrong() -> None:
    with pytest.raises(TextError, match=r"lone surrogate U\+DCE9 at index 3"):
        validate_text(LONE)
    with pytest.raises(TextError, match=f"limit is {MAX_TEXT_CHARS}"):
        validate_text(TOO_LONG)
    assert validate_text("a" * MAX_TEXT_CHARS) == "a" * MAX_TEXT_CHARS
    assert validate_text("", "tool output", allow_empty=True) == ""
    assert issubclass(TextError, VoxError)


async def test_a_refused_text_sends_nothing(fake_openai: FakeOpenAIServerHandle) -> None:
    provider = OpenAIProvider(OpenAIConfig(api_key="sk-input", base_url=fake_openai.url))
    await provider.connect(retry_count=0)
    try:
        (server,) = fake_openai.connections
        before = len(server.received)
        for text in (LONE, TOO_LONG):
            with pytest.raises(TextError):
                await provider.send_text(text)
        with pytest.raises(TextError):
            await provider.send_tool_result("call_1", "out \ud800")
        await asyncio.sleep(0.05)  # let anything wrongly sent arrive
        assert len(server.received) == before
    finally:
        await provider.disconnect()


# -- sample rates --------------------------------------------------------------------------


@pytest.mark.parametrize("rate", BAD_RATES)
def test_audio_format_rejects_bad_rates(rate: Any) -> None:
    with pytest.raises(AudioError):
        AudioFormat(sample_rate=rate)


def test_audio_format_accepts_numpy_ints_as_ints() -> None:
    fmt = AudioFormat(sample_rate=np.int64(16_000))  # type: ignore[arg-type]
    assert fmt.sample_rate == 16_000
    assert type(fmt.sample_rate) is int


@pytest.mark.parametrize("rate", BAD_RATES)
async def test_send_audio_rejects_bad_rates(provider: BaseProvider, rate: Any) -> None:
    await provider.connect(retry_count=0)
    try:
        with pytest.raises(AudioError):
            await provider.send_audio(bytes(640), sample_rate=rate)
    finally:
        await provider.disconnect()


@pytest.mark.parametrize("rate", BAD_RATES)
async def test_engine_rejects_bad_rates(rate: Any) -> None:
    with pytest.raises(AudioError):
        VoiceEngineConfig(provider="mock", device_sample_rate=rate)
    async with VoiceEngine(VoiceEngineConfig(provider="mock")) as engine:
        with pytest.raises(AudioError):
            await engine.send_audio(bytes(640), sample_rate=rate)
        with pytest.raises(AudioError):
            await engine.send_recorded_audio(bytes(4800), sample_rate=rate)


# -- after disconnect ----------------------------------------------------------------------

Call = Callable[[Any], Awaitable[object]]

PROVIDER_CALLS: dict[str, Call] = {
    "send_audio": lambda p: p.send_audio(bytes(640)),
    "commit_audio": lambda p: p.commit_audio(),
    "clear_audio": lambda p: p.clear_audio(),
    "send_text": lambda p: p.send_text("hi"),
    "add_message": lambda p: p.add_message("context"),
    "create_response": lambda p: p.create_response(),
    "cancel_response": lambda p: p.cancel_response(),
    "interrupt": lambda p: p.interrupt(0.5),
    "send_tool_result": lambda p: p.send_tool_result("call_1", "{}"),
    "update_session": lambda p: p.update_session(SessionConfig(instructions="x")),
    "delete_item": lambda p: p.delete_item("item_1"),
    "truncate": lambda p: p.truncate("item_1", 0.5),
    "send_audio_message": lambda p: p.send_audio_message(bytes(4800)),
}

#: Calls a provider does not support at all raise ConfigError (its capability) instead.
UNSUPPORTED = {"gemini": {"update_session", "delete_item", "truncate"}, "pipeline": {"truncate"}}


async def test_every_session_method_after_disconnect_is_invalid_state(
    provider: BaseProvider, request: pytest.FixtureRequest
) -> None:
    name = request.node.callspec.params["provider"]
    await provider.connect(retry_count=0)
    await provider.disconnect()
    checked = []
    for method, call in PROVIDER_CALLS.items():
        if method in UNSUPPORTED.get(name, set()) or not hasattr(provider, method):
            continue
        with pytest.raises(InvalidState):
            await call(provider)
        checked.append(method)
    assert len(checked) >= 10
    await provider.disconnect()  # still idempotent


ENGINE_CALLS: dict[str, Call] = {
    "send_text": lambda e: e.send_text("hi"),
    "send_audio": lambda e: e.send_audio(bytes(640)),
    "commit_audio": lambda e: e.commit_audio(),
    "send_recorded_audio": lambda e: e.send_recorded_audio(bytes(4800)),
    "interrupt": lambda e: e.interrupt(0.1),
    "create_response": lambda e: e.create_response(),
    "send_tool_result": lambda e: e.send_tool_result("call_1", "{}"),
    "update_session": lambda e: e.update_session(instructions="x"),
    "inject_context": lambda e: e.inject_context("ctx"),
    "remove_context": lambda e: e.remove_context("ctx_1"),
    "text_2_audio_response": lambda e: e.text_2_audio_response("say this", timeout=5),
    "start_listening": lambda e: e.start_listening(),
}


@pytest.mark.parametrize("name", ["mock", "pipeline"])
async def test_every_engine_method_after_disconnect_is_invalid_state(name: str) -> None:
    if name == "pipeline":
        engine = VoiceEngine(VoiceEngineConfig(provider="mock"), provider=_pipeline())
    else:
        engine = VoiceEngine(VoiceEngineConfig(provider=name))
    await engine.connect()
    await engine.disconnect()
    for method, call in ENGINE_CALLS.items():
        if name == "pipeline" and method == "update_session":
            continue  # SESSION_UPDATE is declared: covered by the provider test
        with pytest.raises(InvalidState):
            await _run(call, engine)
    await engine.disconnect()


async def _run(call: Call, target: object) -> None:
    result = call(target)
    if inspect.isawaitable(result):
        await asyncio.wait_for(result, timeout=10)


# -- resampler flush -----------------------------------------------------------------------


def _turns(server: Any) -> list[bytes]:
    """The audio the fake received per committed turn (appends up to each commit)."""
    turns: list[bytes] = []
    audio = b""
    for event in server.received:
        if event["type"] == "input_audio_buffer.append":
            audio += base64.b64decode(event["audio"])
        elif event["type"] == "input_audio_buffer.commit":
            turns.append(audio)
            audio = b""
    return turns


async def test_commit_flushes_the_input_resampler_into_the_committed_turn() -> None:
    """1 s at 16 kHz becomes exactly 1 s at 24 kHz in the turn it was spoken in."""
    provider = MockProvider()
    config = VoiceEngineConfig(provider="mock", vad_enabled=False, auto_respond=False)
    engine = VoiceEngine(config, provider=provider)
    tone = (np.sin(np.arange(16_000) / 5) * 8_000).astype("<i2").tobytes()
    async with engine:
        for i in range(0, len(tone), 640):  # 20 ms chunks at 16 kHz
            await engine.send_audio(tone[i : i + 640], sample_rate=16_000)
        await engine.commit_audio(respond=False)
        await engine.send_audio(bytes(640), sample_rate=16_000)  # the next turn starts
        await engine.commit_audio(respond=False)
        assert provider.server is not None
        server = provider.server
        committed = await engine.events.wait_for(InputCommitted, timeout=10)  # the 2nd turn's
        assert committed.item_id
        first_turn, second_turn = _turns(server)
    assert len(first_turn) == 2 * 24_000  # the whole second, tail included
    # The next turn holds only its own 20 ms (30 ms at 24 kHz), no tail of the first.
    assert len(second_turn) == 2 * 480
    # It holds its own silence (soxr's ±1 rounding at most), not the tone's tail.
    assert np.abs(np.frombuffer(second_turn, "<i2")).max() <= 2
