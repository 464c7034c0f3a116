"""Barge-in: playback stops at once, the response is cancelled, and the assistant item is
truncated at the audio the player actually played — checked against the fake server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from voxengine import (
    AudioDelta,
    Interrupted,
    ItemTruncated,
    ResponseDone,
    ResponseStatus,
    SpeechStarted,
    VoiceEngine,
    VoiceEngineConfig,
)
from voxengine.audio.format import PCM16_24K
from voxengine.audio.wav import read_wav
from voxengine.testing import FakeOpenAIServerHandle, synthesize_speech

STORY = "Tell me a long story about the sea " + "and the waves " * 10


def received(handle: FakeOpenAIServerHandle, kind: str) -> list[dict[str, Any]]:
    return [e for e in handle.connections[0].received if e["type"] == kind]


async def _speak_until(engine: VoiceEngine, event_type: type, timeout: float = 5.0) -> Any:
    """Stream speech in 20 ms chunks, as a microphone would, until ``event_type`` arrives."""
    waiter = asyncio.ensure_future(engine.events.wait_for(event_type, timeout=timeout))
    speech = synthesize_speech("stop stop please wait a moment")
    chunk = PCM16_24K.bytes_for(0.02)
    for i in range(0, len(speech), chunk):
        if waiter.done():
            break
        await engine.send_audio(speech[i : i + chunk])
        await asyncio.sleep(0.005)
    return await waiter


async def _start_story(engine: VoiceEngine, listen_for: float) -> tuple[float, list[AudioDelta]]:
    deltas: list[AudioDelta] = []
    engine.events.on(AudioDelta, deltas.append)
    await engine.send_text(STORY)
    await engine.events.wait_for(AudioDelta, timeout=5)
    started = asyncio.get_running_loop().time()
    await asyncio.sleep(listen_for)
    return started, deltas


async def test_server_vad_barge_in_truncates_at_what_was_played(
    paced_openai: FakeOpenAIServerHandle,
) -> None:
    engine = VoiceEngine(
        VoiceEngineConfig(api_key="sk-test", base_url=paced_openai.url, audio_backend="null")
    )
    interrupted: list[Interrupted] = []
    engine.events.on(Interrupted, interrupted.append)
    async with engine:
        started, deltas = await _start_story(engine, listen_for=0.3)
        truncation = asyncio.ensure_future(engine.events.wait_for(ItemTruncated, timeout=5))
        await _speak_until(engine, SpeechStarted)
        stopped_at = asyncio.get_running_loop().time()
        truncated = await truncation
        output = engine.voice.output
        assert output is not None
        assert output.pending == 0  # playback stopped at once
        cancelled = [e for e in engine.events.history if isinstance(e, ResponseDone)]
    (event,) = interrupted
    assert event.played is not None
    received_seconds = PCM16_24K.duration(sum(len(d.audio) for d in deltas))
    # the fake streams 5x faster than real time: far more arrived than was heard
    assert event.played < received_seconds - 0.2
    assert event.played == pytest.approx(stopped_at - started, abs=0.15)
    (truncate,) = received(paced_openai, "conversation.item.truncate")
    assert truncate["audio_end_ms"] == round(event.played * 1000)
    assert truncate["item_id"] == deltas[0].item_id == truncated.item_id
    # server VAD with interrupt_response cancels by itself: the client sends no cancel
    assert received(paced_openai, "response.cancel") == []
    assert cancelled[0].status is ResponseStatus.CANCELLED
    assert cancelled[0].reason == "turn_detected"


async def test_manual_interrupt_matches_the_audio_file_played(
    paced_openai: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    out = tmp_path / "played.wav"
    engine = VoiceEngine(
        VoiceEngineConfig(
            api_key="sk-test",
            base_url=paced_openai.url,
            audio_backend="file",
            output_file=str(out),
            vad_enabled=False,
        )
    )
    async with engine:
        await _start_story(engine, listen_for=0.25)
        truncation = asyncio.ensure_future(engine.events.wait_for(ItemTruncated, timeout=5))
        event = await engine.interrupt()
        await truncation
        done = [e for e in engine.events.history if isinstance(e, ResponseDone)]
    played_audio, fmt = read_wav(out)
    assert event.played is not None
    # what the "speaker" wrote to the file is exactly what the truncation says was heard
    assert fmt.duration(len(played_audio)) == pytest.approx(event.played, abs=0.002)
    (truncate,) = received(paced_openai, "conversation.item.truncate")
    assert truncate["audio_end_ms"] == round(event.played * 1000)
    assert len(received(paced_openai, "response.cancel")) == 1
    assert done[0].reason == "client_cancelled"


async def test_client_vad_barge_in_cancels_and_truncates(
    paced_openai: FakeOpenAIServerHandle,
) -> None:
    engine = VoiceEngine(
        VoiceEngineConfig(
            api_key="sk-test", base_url=paced_openai.url, audio_backend="null", vad_type="client"
        )
    )
    async with engine:
        await _start_story(engine, listen_for=0.2)
        truncation = asyncio.ensure_future(engine.events.wait_for(ItemTruncated, timeout=5))
        await _speak_until(engine, Interrupted)
        await truncation
    (cancel,) = received(paced_openai, "response.cancel")
    (truncate,) = received(paced_openai, "conversation.item.truncate")
    assert 150 <= truncate["audio_end_ms"] <= 600
    assert cancel["type"] == "response.cancel"


async def test_no_barge_in_when_disabled(paced_openai: FakeOpenAIServerHandle) -> None:
    engine = VoiceEngine(
        VoiceEngineConfig(
            api_key="sk-test",
            base_url=paced_openai.url,
            audio_backend="null",
            vad_type="client",
            barge_in=False,
        )
    )
    async with engine:
        await _start_story(engine, listen_for=0.1)
        await _speak_until(engine, SpeechStarted)
        await asyncio.sleep(0.1)
        output = engine.voice.output
        assert output is not None
        assert output.pending > 0  # still playing
    assert received(paced_openai, "conversation.item.truncate") == []
