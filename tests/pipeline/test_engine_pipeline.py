"""VoiceEngine driving a PipelineProvider: the same app code as for the realtime providers."""

from __future__ import annotations

import datetime as dt

import pytest

from voxengine import ResponseDone, VoiceEngine, VoiceEngineConfig
from voxengine.config import SessionConfig
from voxengine.errors import ConfigError
from voxengine.events import ResponseStatus, Role, ToolCall
from voxengine.providers.pipeline import (
    AnthropicPipelineConfig,
    AnthropicPipelineProvider,
    ChatMessage,
    EspeakTTS,
    LocalResponder,
    PipelineConfig,
    PipelineProvider,
    PocketSphinxSTT,
)
from voxengine.testing.fakes.llm import (
    FakeLLMConfig,
    FakeLLMReply,
    FakeLLMToolCall,
    FakeLLMTurn,
    run_fake_llm_server,
)
from voxengine.tools import tool

from .conftest import API_KEY, QUESTION, silence, spoken

pytest.importorskip("espeakng_loader")
pytest.importorskip("pocketsphinx")

NOON = dt.datetime(2025, 5, 5, 12, 30)


def offline_engine() -> VoiceEngine:
    provider = PipelineProvider(
        PipelineConfig(
            stt=PocketSphinxSTT(),
            llm=LocalResponder(clock=lambda: NOON),
            tts=EspeakTTS(),
            vad_engine="energy",
        )
    )
    return VoiceEngine(VoiceEngineConfig(mode="big"), provider=provider)


async def test_streamed_speech_through_the_engine() -> None:
    engine = offline_engine()
    texts: list[str] = []
    audio: list[bytes] = []
    engine.on_text_response = texts.append
    engine.on_audio_response = audio.append
    async with engine:
        rate = 24_000  # the engine resamples to the provider's 16 kHz
        pcm = silence(0.4, rate) + await spoken(QUESTION, sample_rate=rate) + silence(1.0, rate)
        done = engine.events.wait_for(ResponseDone, timeout=20)
        for i in range(0, len(pcm), 960):  # 20 ms chunks
            await engine.send_audio(pcm[i : i + 960], sample_rate=rate)
        event = await done
        assert event.status is ResponseStatus.COMPLETED
    user, assistant = engine.history
    assert user.role is Role.USER
    assert user.text
    expected = LocalResponder(clock=lambda: NOON).reply(
        [ChatMessage(role=Role.USER, text=user.text)], ()
    )
    assert "".join(texts) == expected == assistant.text
    assert assistant.role is Role.ASSISTANT
    assert sum(map(len, audio)) > 24_000 * 2  # over a second of 24 kHz speech
    assert engine.get_usage().output_tokens > 0


async def test_recorded_audio_through_the_engine() -> None:
    engine = offline_engine()
    async with engine:
        done = engine.events.wait_for(ResponseDone, timeout=20)
        await engine.send_recorded_audio(await spoken(QUESTION), sample_rate=16_000)
        assert (await done).status is ResponseStatus.COMPLETED
    assert [e.role for e in engine.history] == [Role.USER, Role.ASSISTANT]


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


def weather(turn: FakeLLMTurn) -> FakeLLMReply:
    if turn.tool_results:
        return FakeLLMReply(text=f"It is {turn.tool_results[0][1]}.")
    return FakeLLMReply(
        tool_calls=(FakeLLMToolCall(name="get_weather", arguments={"city": "Paris"}),)
    )


async def test_engine_runs_tools_for_the_anthropic_pipeline() -> None:
    async with run_fake_llm_server(FakeLLMConfig(api_key=API_KEY, responder=weather)) as server:
        provider = AnthropicPipelineProvider(
            AnthropicPipelineConfig(
                api_key=API_KEY,
                base_url=server.anthropic_base_url,
                session=SessionConfig(tools=(get_weather.spec,)),
            )
        )
        engine = VoiceEngine(VoiceEngineConfig(mode="big", tools=(get_weather,)), provider=provider)
        texts: list[str] = []
        engine.on_text_response = texts.append
        async with engine:
            call = engine.events.wait_for(ToolCall, timeout=10)
            await engine.send_text("weather in Paris?")
            first_response = (await call).response_id
            final = await engine.events.wait_for(
                ResponseDone, timeout=20, filter=lambda e: e.response_id != first_response
            )
        assert final.status is ResponseStatus.COMPLETED
        assert "".join(texts) == "It is sunny in Paris."
        _first, follow_up = server.requests_to("/v1/messages")
        assert follow_up.body["messages"][-1]["content"][0]["content"] == "sunny in Paris"


async def test_by_registry_name() -> None:
    from voxengine.providers import register_provider, unregister_provider

    register_provider("pipeline_under_test", PipelineProvider)
    try:
        config = VoiceEngineConfig(provider="pipeline_under_test", instructions="Be brief.")
        engine = VoiceEngine(config)
        assert isinstance(engine.provider, PipelineProvider)
        assert engine.provider.session_config.instructions == "Be brief."
        async with engine:
            done = engine.events.wait_for(ResponseDone, timeout=20)
            await engine.send_text("hello")
            assert (await done).status is ResponseStatus.COMPLETED
        with pytest.raises(ConfigError, match="semantic"):
            VoiceEngine(VoiceEngineConfig(provider="pipeline_under_test", vad_type="semantic"))
    finally:
        unregister_provider("pipeline_under_test")
