"""Record a session, replay it without a network, and detect divergence."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from voxengine import ResponseDone, VoiceEngine, VoiceEngineConfig
from voxengine.errors import ConnectFailed, VoxError
from voxengine.events import AudioDelta, BaseEvent, Event, SessionClosed
from voxengine.recording import Recorder, load_recording, wrap_provider_connector
from voxengine.replay import FrameMatch, ReplayConnector, ReplayDivergence
from voxengine.testing import FakeOpenAIServerHandle, synthesize_speech
from voxengine.testing.replay import ReplayFactory, check_replay, replay_provider

from .conftest import Vox

pytestmark = pytest.mark.timeout(30)

SPEECH = synthesize_speech("what time is it", sample_rate=24_000)


def config(**changes: object) -> VoiceEngineConfig:
    settings: dict[str, object] = {
        "voice": "marin",
        "instructions": "Be brief.",
        "vad_enabled": False,
        "input_transcription_model": "gpt-4o-mini-transcribe",
    }
    settings.update(changes)
    return VoiceEngineConfig(**settings)  # type: ignore[arg-type]


async def conversation(engine: VoiceEngine, text: str = "hello") -> list[Event]:
    """A text turn then an audio turn; returns every event but the final close."""
    seen: list[Event] = []
    engine.events.on(BaseEvent, seen.append)
    async with engine:
        await engine.send_text(text)
        await engine.events.wait_for(ResponseDone, timeout=5)
        for i in range(0, len(SPEECH), 4800):
            await engine.send_audio(SPEECH[i : i + 4800])
        await engine.commit_audio()
        await engine.events.wait_for(ResponseDone, timeout=5)
        await asyncio.sleep(0.05)
    return [e for e in seen if not isinstance(e, SessionClosed)]


async def record(fake: FakeOpenAIServerHandle, path: Path, **options: object) -> list[Event]:
    engine = VoiceEngine(config(api_key="sk-test-secret-0123456789", base_url=fake.url))
    with Recorder(path, **options) as recorder:  # type: ignore[arg-type]
        wrap_provider_connector(engine.provider, recorder.wrap)  # type: ignore[arg-type]
        return await conversation(engine)


async def test_record_then_replay_produces_the_same_events(
    fake_openai: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    path = tmp_path / "s.jsonl"
    recorded = await record(fake_openai, path)
    with ReplayFactory() as replay:
        provider = replay(path, session=config().session_config())
        replayed = await conversation(VoiceEngine(config(api_key="x"), provider=provider))
    assert replayed == recorded
    assert any(isinstance(e, AudioDelta) for e in replayed)


async def test_recording_file_shape(fake_openai: FakeOpenAIServerHandle, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    await record(fake_openai, path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["type"] == "header"
    assert lines[1]["type"] == "connect"
    frames = [e for e in lines if e["type"] == "frame"]
    assert {e["dir"] for e in frames} == {"send", "recv"}
    times = [e["t"] for e in lines[1:]]
    assert times == sorted(times)
    recording = load_recording(path)
    assert len(recording.connections) == 1
    first_sent = json.loads(str(recording.frames("send")[0].data))
    assert first_sent["type"] == "session.update"


async def test_divergence_is_a_typed_error_naming_the_difference(
    fake_openai: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    path = tmp_path / "s.jsonl"
    await record(fake_openai, path)
    provider = replay_provider(path, session=config().session_config())
    engine = VoiceEngine(config(api_key="x"), provider=provider)
    async with engine:
        with pytest.raises(ReplayDivergence) as caught:
            await engine.send_text("goodbye")
    error = caught.value
    assert error.index == 1
    assert "content[0].text: recorded 'hello', sent 'goodbye'" in error.detail
    with pytest.raises(ReplayDivergence):
        check_replay(provider)


async def test_handshake_divergence_fails_connect(
    fake_openai: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    path = tmp_path / "s.jsonl"
    await record(fake_openai, path)
    other = config(instructions="Be verbose.")
    provider = replay_provider(path, session=other.session_config())
    engine = VoiceEngine(other, provider=provider)
    # The handshake is sent by the session's reader, which reports the divergence as
    # the reason the connection closed; check_replay raises the typed error.
    with pytest.raises(VoxError, match=r"session\.instructions: recorded 'Be brief\.'"):
        await engine.connect()
    await engine.disconnect()
    with pytest.raises(ReplayDivergence) as caught:
        check_replay(provider)
    assert caught.value.detail == "session.instructions: recorded 'Be brief.', sent 'Be verbose.'"


async def test_unsent_recorded_frames_are_reported(
    fake_openai: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    path = tmp_path / "s.jsonl"
    await record(fake_openai, path)
    provider = replay_provider(path, session=config().session_config())
    async with VoiceEngine(config(api_key="x"), provider=provider) as engine:
        await engine.send_text("hello")
        await engine.events.wait_for(ResponseDone, timeout=5)
    check_replay(provider, complete=False)
    with pytest.raises(ReplayDivergence, match="did not send"):
        check_replay(provider)


async def test_ignored_types_and_audio(fake_openai: FakeOpenAIServerHandle, tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    recorded = await record(fake_openai, path)
    match = FrameMatch(ignore_audio=True, ignore_types=frozenset({"input_audio_buffer.append"}))
    provider = replay_provider(path, session=config().session_config(), match=match)
    replayed = await conversation(VoiceEngine(config(api_key="x"), provider=provider))
    check_replay(provider)
    assert [type(e) for e in replayed] == [type(e) for e in recorded]


async def test_redacted_audio_replays_as_silence(
    fake_openai: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    path = tmp_path / "s.jsonl"
    recorded = await record(fake_openai, path, redact_audio=True)
    text = path.read_text()
    assert "<redacted audio: " in text
    provider = replay_provider(path, session=config().session_config())
    replayed = await conversation(VoiceEngine(config(api_key="x"), provider=provider))
    check_replay(provider)
    audio = [e for e in replayed if isinstance(e, AudioDelta)]
    assert audio
    assert all(not any(e.audio) for e in audio)
    assert len(replayed) == len(recorded)


async def test_recorded_connect_failure_replays(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"

    async def refuse(url: str, headers: object, *, timeout: float) -> object:
        raise ConnectFailed("connection refused")

    with Recorder(path) as recorder, pytest.raises(ConnectFailed):
        await recorder.wrap(refuse)("ws://x/v1", {}, timeout=1)  # type: ignore[arg-type]
    connector = ReplayConnector(path)
    with pytest.raises(ConnectFailed, match="connection refused"):
        await connector("ws://x/v1", {}, timeout=1)
    with pytest.raises(ReplayDivergence, match="connection #2"):
        await connector("ws://x/v1", {}, timeout=1)


async def test_recorded_timing_is_honoured(
    fake_openai: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    path = tmp_path / "s.jsonl"
    await record(fake_openai, path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines[1:]:  # stretch the recording: frames 0.01 s apart
        line["t"] = round(lines.index(line) * 0.002, 6)
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    provider = replay_provider(path, session=config().session_config(), timing="recorded")
    loop = asyncio.get_running_loop()
    start = loop.time()
    await conversation(VoiceEngine(config(api_key="x"), provider=provider))
    assert loop.time() - start >= 0.002 * (len(lines) - 5)
    check_replay(provider)


def test_cli_record_then_replay_prints_the_same_transcript(
    vox: Vox, tmp_path: Path, hello_wav: Path
) -> None:
    ran = vox("run", "--fake", "--input", str(hello_wav), "--text", "hi", "--record", "s.jsonl")
    assert ran.returncode == 0, ran.stderr
    replayed = vox("replay", "s.jsonl", "--audio-out", "replay.wav")
    assert replayed.returncode == 0, replayed.stderr
    said = [line for line in ran.stdout.splitlines() if line.startswith(("user", "assistant"))]
    again = [
        line for line in replayed.stdout.splitlines() if line.startswith(("user", "assistant"))
    ]
    assert again == said
    assert "replayed 2 response(s)" in replayed.stdout
    assert (tmp_path / "replay.wav").stat().st_size > 44


def test_cli_replay_reports_a_changed_handshake(vox: Vox, tmp_path: Path) -> None:
    ran = vox("chat", "--fake", "--record", "s.jsonl", stdin="hello\n")
    assert ran.returncode == 0, ran.stderr
    path = tmp_path / "s.jsonl"
    lines = path.read_text().splitlines()
    header = json.loads(lines[0])
    header["meta"]["engine"]["instructions"] = "Changed."
    path.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    replayed = vox("replay", "s.jsonl")
    assert replayed.returncode == 1
    assert "session.instructions" in replayed.stderr
    assert "Traceback" not in replayed.stderr


def test_demo_and_console_accept_record(vox: Vox, tmp_path: Path) -> None:
    result = vox("demo", "--fake-openai", "--record", "demo.jsonl", "--record-audio")
    assert result.returncode == 0, result.stderr
    recording = load_recording(tmp_path / "demo.jsonl")
    assert recording.meta["command"] == "demo"
    assert recording.audio("in")
    assert recording.audio("out")
