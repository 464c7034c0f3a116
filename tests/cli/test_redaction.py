"""No key in recordings or -vv logs; audio payloads shortened in traces."""

from __future__ import annotations

import logging
from pathlib import Path

from voxengine.logs import TraceFilter, shorten_audio
from voxengine.recording import redact_audio_fields, restore_audio_fields

from .conftest import Vox, cli_env

SECRET = "sk-proj-THIS-IS-A-SECRET-0123456789abcdef"


def test_no_key_in_recording_or_debug_logs(vox: Vox, tmp_path: Path, hello_wav: Path) -> None:
    env = cli_env()
    env["OPENAI_API_KEY"] = SECRET
    # the fake serves on loopback; the key from the environment is what the client sends
    result = vox(
        "run", "--base-url", "ws://127.0.0.1:9/v1", "--input", str(hello_wav), "--timeout", "5",
        "--record", "failed.jsonl", "-vv", env=env,
    )  # fmt: skip
    assert result.returncode == 1  # nothing listens on port 9
    assert SECRET not in result.stderr
    assert SECRET not in (tmp_path / "failed.jsonl").read_text()
    assert "error: ConnectFailed" in result.stderr


def test_fake_session_key_and_audio_are_redacted(vox: Vox, tmp_path: Path, hello_wav: Path) -> None:
    result = vox(
        "run", "--fake", "--input", str(hello_wav), "--record", "s.jsonl", "--redact-audio", "-vv",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    recording = (tmp_path / "s.jsonl").read_text()
    logs = result.stderr
    for text in (recording, logs):
        assert "sk-local-fake-server" not in text
    assert "Bearer ***" in recording
    assert "<redacted audio: " in recording
    assert '"delta":"<4800 bytes>"' in logs  # reply audio in the frame trace
    assert '"audio":"<4800 bytes>"' in logs  # user audio in the frame trace
    assert "voxengine.wire: > " in logs


def test_shorten_audio_keeps_text_deltas() -> None:
    audio = "A" * 6400
    frame = f'{{"type":"response.output_audio.delta","delta":"{audio}"}}'
    assert shorten_audio(frame) == '{"type":"response.output_audio.delta","delta":"<4800 bytes>"}'
    text = '{"type":"response.output_text.delta","delta":"Supercalifragilisticexpialidocious"}'
    assert shorten_audio(text) == text
    assert shorten_audio('"audio":"' + audio[:50]) == '"audio":"<base64 audio…>'


def test_trace_filter_redacts_records() -> None:
    record = logging.LogRecord(
        "x",
        logging.DEBUG,
        __file__,
        1,
        "> %s %s",
        (f"Authorization: Bearer {SECRET}", '"audio":"' + "B" * 40 + '"'),
        None,
    )
    assert TraceFilter().filter(record)
    message = record.getMessage()
    assert SECRET not in message
    assert '"audio":"<30 bytes>"' in message


def test_redacted_audio_markers_round_trip() -> None:
    frame = '{"type":"input_audio_buffer.append","audio":"AAECAw=="}'
    redacted = redact_audio_fields(frame)
    assert redacted == '{"type":"input_audio_buffer.append","audio":"<redacted audio: 4 bytes>"}'
    assert (
        restore_audio_fields(redacted) == '{"type":"input_audio_buffer.append","audio":"AAAAAA=="}'
    )
    assert redact_audio_fields("not json") == "not json"
