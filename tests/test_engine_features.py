"""Issue-3 features of VoiceEngine over real sockets to the fake server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from voxengine import (
    AudioError,
    ConfigError,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    ToolCall,
    VoiceEngine,
    VoiceEngineConfig,
)
from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.audio.resample import convert
from voxengine.audio.wav import read_wav, write_wav
from voxengine.context import ContextMethod, ContextTiming
from voxengine.testing import (
    FakeOpenAIConfig,
    FakeOpenAIServerHandle,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    run_fake_openai_server,
    synthesize_speech,
)
from voxengine.tools import tool

from .conftest import assert_valid_client_events

SILENCE_1S = bytes(PCM16_24K.bytes_for(1.0))


def make_engine(handle: FakeOpenAIServerHandle, **kwargs: Any) -> VoiceEngine:
    return VoiceEngine(VoiceEngineConfig(api_key="sk-test", base_url=handle.url, **kwargs))


def received(handle: FakeOpenAIServerHandle, kind: str) -> list[dict[str, Any]]:
    return [e for e in handle.connections[0].received if e["type"] == kind]


# -- tools ---------------------------------------------------------------------------


def weather_responder(turn: FakeTurn) -> FakeReply:
    if turn.kind == "tool_output":
        return FakeReply(text=f"Result: {turn.text}")
    if "fail" in turn.text:
        return FakeReply(tool_calls=(FakeToolCall(name="explode", arguments="{}"),))
    return FakeReply(
        tool_calls=(
            FakeToolCall(name="get_weather", arguments='{"city": "Paris"}'),
            FakeToolCall(name="get_weather", arguments='{"city": "Oslo", "unit": "fahrenheit"}'),
        )
    )


@tool
async def get_weather(city: str, unit: str = "celsius") -> dict[str, Any]:
    """Current weather for a city.

    Args:
        city: the city name.
        unit: celsius or fahrenheit.
    """
    await asyncio.sleep(0.01)
    return {"city": city, "temp": 18 if unit == "celsius" else 64, "unit": unit}


def explode() -> str:
    """Always fails."""
    raise RuntimeError("kaboom")


async def test_registered_tools_run_in_parallel_and_answers_follow() -> None:
    async with run_fake_openai_server(FakeOpenAIConfig(responder=weather_responder)) as handle:
        engine = make_engine(handle, tools=(get_weather, explode))
        async with engine:
            await engine.send_text("weather please")
            first = await engine.events.wait_for(ResponseDone, timeout=5)
            second = await engine.events.wait_for(ResponseDone, timeout=5)
        assert first.status is ResponseStatus.COMPLETED
        outputs = [
            json.loads(e["item"]["output"])
            for e in received(handle, "conversation.item.create")
            if e["item"]["type"] == "function_call_output"
        ]
        assert outputs == [
            {"city": "Paris", "temp": 18, "unit": "celsius"},
            {"city": "Oslo", "temp": 64, "unit": "fahrenheit"},
        ]
        assert len(received(handle, "response.create")) == 2
        assert second.status is ResponseStatus.COMPLETED
        session_tools = handle.connections[0].session["tools"]
        assert [t["name"] for t in session_tools] == ["get_weather", "explode"]
        assert session_tools[0]["parameters"]["required"] == ["city"]
        assert_valid_client_events(handle.connections[0].received)


async def test_a_failing_tool_becomes_an_error_output_not_a_hang() -> None:
    async with run_fake_openai_server(FakeOpenAIConfig(responder=weather_responder)) as handle:
        engine = make_engine(handle, tools=(get_weather, explode))
        async with engine:
            await engine.send_text("please fail")
            await engine.events.wait_for(ResponseDone, timeout=5)
            follow_up = await engine.events.wait_for(ResponseDone, timeout=5)
        assert follow_up.status is ResponseStatus.COMPLETED
        (out,) = [
            e["item"]["output"]
            for e in received(handle, "conversation.item.create")
            if e["item"]["type"] == "function_call_output"
        ]
        assert "kaboom" in out


async def test_unhandled_tool_gets_an_error_output() -> None:
    async with run_fake_openai_server(FakeOpenAIConfig(responder=weather_responder)) as handle:
        engine = make_engine(handle)  # no tools registered, no on_function_call
        calls: list[ToolCall] = []
        engine.events.on(ToolCall, calls.append)
        async with engine:
            await engine.send_text("weather")
            await engine.events.wait_for(ResponseDone, timeout=5)
            await engine.events.wait_for(ResponseDone, timeout=5)
        assert len(calls) == 2
        outputs = [
            e["item"]["output"]
            for e in received(handle, "conversation.item.create")
            if e["item"]["type"] == "function_call_output"
        ]
        assert all("no handler" in o for o in outputs)


# -- context injection ------------------------------------------------------------------


async def test_context_now_is_a_system_item_without_a_response(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    engine = make_engine(fake_openai)
    started: list[ResponseStarted] = []
    engine.events.on(ResponseStarted, started.append)
    async with engine:
        entry = await engine.inject_context("The caller's name is Ada.", ttl=0.2)
        await asyncio.sleep(0.4)  # TTL passes: the item is deleted again
    creates = received(fake_openai, "conversation.item.create")
    assert creates[0]["item"]["role"] == "system"
    assert creates[0]["item"]["id"] == entry.context_id
    assert creates[0]["item"]["content"][0]["text"] == "The caller's name is Ada."
    assert received(fake_openai, "response.create") == []
    assert started == []
    deletes = received(fake_openai, "conversation.item.delete")
    assert [d["item_id"] for d in deletes] == [entry.context_id]


async def test_context_next_turn_and_instructions(fake_openai: FakeOpenAIServerHandle) -> None:
    engine = make_engine(fake_openai, instructions="Be brief.")
    async with engine:
        await engine.inject_context("Use metric units.", timing=ContextTiming.NEXT_TURN)
        await engine.inject_context("VIP caller.", method=ContextMethod.INSTRUCTIONS, priority=5)
        await engine.events.wait_for(SessionUpdated, timeout=5)
        assert received(fake_openai, "conversation.item.create") == []  # not yet: next turn
        await engine.send_text("How far is the moon?")
        await engine.events.wait_for(ResponseDone, timeout=5)
    creates = received(fake_openai, "conversation.item.create")
    assert [c["item"]["role"] for c in creates] == ["system", "user"]
    assert fake_openai.connections[0].session["instructions"] == (
        "Be brief.\n\nContext:\n- VIP caller."
    )


async def test_context_next_pause_waits_for_the_response_to_end(
    paced_openai: FakeOpenAIServerHandle,
) -> None:
    engine = make_engine(paced_openai)
    async with engine:
        await engine.send_text("Tell me a story about whales")
        await engine.events.wait_for(ResponseStarted, timeout=5)
        await engine.inject_context("It is raining.", timing=ContextTiming.NEXT_PAUSE)
        assert received(paced_openai, "conversation.item.create")[-1]["item"]["role"] == "user"
        await engine.events.wait_for(ResponseDone, timeout=10)
        await asyncio.sleep(0.05)
    creates = received(paced_openai, "conversation.item.create")
    assert creates[-1]["item"]["role"] == "system"


# -- session updates, recorded audio, text to audio -----------------------------------------


async def test_update_session_keywords(fake_openai: FakeOpenAIServerHandle) -> None:
    engine = make_engine(fake_openai)
    async with engine:
        await engine.update_session(instructions="Talk like a pirate.", voice="cedar")
        await engine.events.wait_for(SessionUpdated, timeout=5)
        with pytest.raises(ConfigError):
            await engine.update_session(colour="red")
    session = fake_openai.connections[0].session
    assert session["instructions"] == "Talk like a pirate."
    assert session["audio"]["output"]["voice"] == "cedar"


async def test_send_recorded_audio_resamples_and_responds(
    fake_openai: FakeOpenAIServerHandle,
) -> None:
    speech_16k = synthesize_speech("hello there my friend", sample_rate=16_000)
    engine = make_engine(fake_openai)
    async with engine:
        await engine.send_recorded_audio(speech_16k, sample_rate=16_000)
        done = await engine.events.wait_for(ResponseDone, timeout=5)
        with pytest.raises(AudioError):
            await engine.send_recorded_audio(b"\x00\x01\x02", sample_rate=16_000)
    assert done.status is ResponseStatus.COMPLETED
    (create,) = received(fake_openai, "conversation.item.create")
    part = create["item"]["content"][0]
    assert part["type"] == "input_audio"
    assert engine.history[-1].text.startswith("I heard 1.")  # 4 words x 0.3 s = 1.2 s


async def test_text_2_audio_response(fake_openai: FakeOpenAIServerHandle) -> None:
    engine = make_engine(fake_openai)
    async with engine:
        audio = await engine.text_2_audio_response("Welcome aboard")
    assert len(audio) > PCM16_24K.bytes_for(0.3)
    (create,) = received(fake_openai, "response.create")
    assert "Welcome aboard" in create["response"]["instructions"]


async def test_transcribe_audio_file(tmp_path: Path) -> None:
    def responder(turn: FakeTurn) -> FakeReply:
        return FakeReply(text=f"transcript of {turn.audio_seconds:.1f} seconds")

    path = tmp_path / "in.wav"
    write_wav(
        path,
        synthesize_speech("one two three", sample_rate=48_000),
        AudioFormat(sample_rate=48_000),
    )
    async with run_fake_openai_server(FakeOpenAIConfig(responder=responder)) as handle:
        engine = make_engine(handle)
        async with engine:
            text = await engine.transcribe_audio_file(path)
        (create,) = received(handle, "response.create")
        assert create["response"]["output_modalities"] == ["text"]
    assert text == "transcript of 0.9 seconds"


# -- client VAD ---------------------------------------------------------------------------


async def test_client_vad_commits_turns_itself(fake_openai: FakeOpenAIServerHandle) -> None:
    engine = make_engine(fake_openai, vad_type="client")
    local: list[Any] = []
    engine.events.on((SpeechStarted, SpeechStopped), local.append)
    async with engine:
        speech = synthesize_speech("what is the time", sample_rate=48_000)
        silence = bytes(AudioFormat(sample_rate=48_000).bytes_for(1.0))
        chunk = 1920  # 20 ms at 48 kHz
        for audio in (silence[: len(silence) // 2], speech, silence):
            for i in range(0, len(audio), chunk):
                await engine.send_audio(audio[i : i + chunk], sample_rate=48_000)
        done = await engine.events.wait_for(ResponseDone, timeout=5)
    assert done.status is ResponseStatus.COMPLETED
    assert [type(e) for e in local] == [SpeechStarted, SpeechStopped]
    server = fake_openai.connections[0]
    assert server.session["audio"]["input"]["turn_detection"] is None  # provider VAD off
    assert len(received(fake_openai, "input_audio_buffer.commit")) == 1
    sent_audio = sum(
        len(__import__("base64").b64decode(e["audio"]))
        for e in received(fake_openai, "input_audio_buffer.append")
    )
    speech_24k = PCM16_24K.duration(
        len(convert(speech, AudioFormat(sample_rate=48_000), PCM16_24K))
    )
    # only speech (plus pre-roll and the hangover), not the leading silence
    assert speech_24k <= PCM16_24K.duration(sent_audio) <= speech_24k + 1.0


# -- usage and cost -------------------------------------------------------------------------


async def test_usage_cost_and_audio_seconds(fake_openai: FakeOpenAIServerHandle) -> None:
    engine = make_engine(fake_openai, mode="big")
    async with engine:
        speech = synthesize_speech("what time is it")
        chunk = PCM16_24K.bytes_for(0.02)
        for audio in (speech, SILENCE_1S):
            for i in range(0, len(audio), chunk):
                await engine.send_audio(audio[i : i + chunk])
        first = await engine.events.wait_for(ResponseDone, timeout=5)
        await engine.send_text("and tomorrow?")
        second = await engine.events.wait_for(ResponseDone, timeout=5)
        usage = engine.get_usage()
        metrics = engine.get_metrics()
        cost = engine.estimate_cost()
        mini = engine.estimate_cost(model="gpt-realtime-mini")
        unknown = engine.estimate_cost(model="some-other-model")
    assert first.usage is not None
    assert second.usage is not None
    assert usage.total_tokens == first.usage.total_tokens + second.usage.total_tokens
    assert usage.input_audio_tokens > 0
    assert metrics.responses == 2
    sent = len(speech) + len(SILENCE_1S)
    assert metrics.audio_seconds_in == pytest.approx(PCM16_24K.duration(sent))
    assert metrics.audio_seconds_out > 0
    assert cost is not None
    assert mini is not None
    assert cost.total > mini.total > 0
    assert unknown is None


# -- a whole voice turn through the file backend ---------------------------------------------


async def test_voice_turn_from_wav_file_to_wav_file(
    fake_openai: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    mic = tmp_path / "mic.wav"
    speaker = tmp_path / "speaker.wav"
    fmt_48k = AudioFormat(sample_rate=48_000)
    write_wav(mic, synthesize_speech("what is the weather like", sample_rate=48_000), fmt_48k)
    engine = make_engine(
        fake_openai,
        audio_backend="file",
        input_file=str(mic),
        output_file=str(speaker),
        device_sample_rate=48_000,
        input_transcription_model="gpt-4o-mini-transcribe",
        mode="big",
    )
    async with engine:
        await engine.start_listening()
        done = await engine.events.wait_for(ResponseDone, timeout=10)
        await engine.voice.wait_listening_done()
        await asyncio.sleep(0.05)
        reply_seconds = engine.get_metrics().audio_seconds_out
        output = engine.voice.output
        assert output is not None
        await asyncio.sleep(output.pending + 0.1)  # let the "speaker" finish the reply
        assert output.pending == 0
    assert done.status is ResponseStatus.COMPLETED
    played, fmt = read_wav(speaker)
    assert fmt == fmt_48k  # resampled from the provider's 24 kHz to the device rate
    assert fmt.duration(len(played)) == pytest.approx(reply_seconds, abs=0.05)
    user = [h for h in engine.history if h.role.value == "user"]
    assert user[0].text.startswith("(")  # the fake's transcript of the user's audio
    assert fake_openai.connections[0].session["audio"]["input"]["transcription"] == {
        "model": "gpt-4o-mini-transcribe"
    }


async def test_bad_audio_is_converted_or_rejected(fake_openai: FakeOpenAIServerHandle) -> None:
    engine = make_engine(fake_openai, vad_enabled=False)
    async with engine:
        stereo_48k = bytes(AudioFormat(sample_rate=48_000, channels=2).bytes_for(0.2))
        await engine.send_audio(stereo_48k, sample_rate=48_000, channels=2)  # converted
        with pytest.raises(AudioError, match="whole number"):
            await engine.send_audio(b"\x00\x01\x02", sample_rate=16_000)
        with pytest.raises(AudioError, match="4-byte"):
            await engine.send_audio(b"\x00\x01\x02\x03\x04\x05", channels=2)
        with pytest.raises(AudioError, match="got str"):
            await engine.send_audio("noise")  # type: ignore[arg-type]
        await asyncio.sleep(0.05)
    appended = received(fake_openai, "input_audio_buffer.append")
    total = sum(len(__import__("base64").b64decode(e["audio"])) for e in appended)
    # 0.2 s of 48 kHz stereo became ~0.2 s of 24 kHz mono (minus the resampler's delay)
    assert 0.15 <= PCM16_24K.duration(total) <= 0.2
