"""The CLI end to end: subprocesses against the bundled fake server and WAV files."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxengine.audio.wav import read_wav

from .conftest import Vox


def assert_no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr


def test_demo_fake_openai_keeps_its_output(vox: Vox, tmp_path: Path) -> None:
    result = vox("demo", "--fake-openai")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(
        "voxengine demo: mode=provider, talking to the bundled fake OpenAI server"
    )
    assert "(no API key needed: the fake server's replies are scripted, not AI)" in out
    assert (
        "user (text): Hello! What can you do?\nassistant: You said: Hello! What can you do?" in out
    )
    assert "assistant: I heard " in out
    assert "of reply audio to reply.wav" in out
    assert "tokens: " in out
    audio, fmt = read_wav(tmp_path / "reply.wav")
    assert fmt.duration(len(audio)) > 1.0


def test_demo_live_without_key_is_a_usage_error(vox: Vox) -> None:
    result = vox("demo", "--live")
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr


def test_run_turns_from_files_prints_transcripts_and_writes_the_reply(
    vox: Vox, tmp_path: Path, hello_wav: Path, time_wav: Path
) -> None:
    result = vox(
        "run", "--fake", "--input", str(hello_wav), "--text", "hi there",
        "--input", str(time_wav), "--output", "out.wav",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:6] == [
        f"turn 1: {hello_wav} (1.5 s of audio)",
        "user (transcript): (1.5 s of audio)",
        "assistant: I heard 1.5 seconds of audio.",
        "turn 2: text",
        "user: hi there",
        "assistant: You said: hi there",
    ]
    assert "assistant: I heard 1.2 seconds of audio." in result.stdout
    audio, fmt = read_wav(tmp_path / "out.wav")
    assert fmt.sample_rate == 24_000
    assert fmt.duration(len(audio)) > 3.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--fake"], "at least one --input"),
        (["run", "--fake", "--input", "missing.wav"], "missing.wav"),
        (["run", "--input", "x.wav"], "needs an API key"),
        (["chat", "--provider", "nope"], "unknown provider 'nope'; known providers:"),
        (["console", "--fake", "--input-file", "x.wav"], "push-to-talk needs a terminal"),
        (["console", "--fake", "--output-file", "x.wav"], "--output-file needs --input-file"),
        (["replay", "missing.jsonl"], "cannot read recording"),
    ],
)
def test_usage_errors_are_one_line_messages_with_exit_code_2(
    vox: Vox, args: list[str], message: str
) -> None:
    result = vox(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stderr.startswith("error: ")
    assert_no_traceback(result.stderr)


def test_missing_key_suggests_fake(vox: Vox) -> None:
    result = vox("chat", stdin="hello\n")
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr
    assert "--fake" in result.stderr


def test_chat_reads_lines_and_prints_replies(vox: Vox, tmp_path: Path) -> None:
    result = vox("chat", "--fake", "--audio-out", "chat.wav", stdin="hello\n\nhow are you\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:4] == [
        "user: hello",
        "assistant: You said: hello",
        "user: how are you",
        "assistant: You said: how are you",
    ]
    audio, fmt = read_wav(tmp_path / "chat.wav")
    assert fmt.duration(len(audio)) > 1.0


def test_chat_text_only(vox: Vox) -> None:
    result = vox("chat", "--fake", "--voice", "marin", "--instructions", "Be brief.", stdin="hi\n")
    assert result.returncode == 0, result.stderr
    assert "assistant: You said: hi" in result.stdout


def test_providers_lists_capabilities(vox: Vox) -> None:
    result = vox("providers")
    assert result.returncode == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert {"openai", "azure", "mock"} <= set(lines)
    assert "function_calling" in lines["openai"]


def test_devices_lists_or_explains(vox: Vox) -> None:
    result = vox("devices")
    assert_no_traceback(result.stderr)
    if result.returncode == 0:
        assert "name" in result.stdout.splitlines()[0]
    else:
        assert result.returncode == 2
        assert any(
            s in result.stderr for s in ("PortAudio", "sounddevice", "no audio devices found")
        )


def test_help_documents_exit_codes(vox: Vox) -> None:
    result = vox("--help")
    assert result.returncode == 0
    assert "exit codes: 0 success; 1" in " ".join(result.stdout.split())
    for command in ("demo", "console", "chat", "run", "replay", "providers", "devices"):
        assert command in result.stdout


def test_entry_point_main_returns_codes(capsys: pytest.CaptureFixture[str]) -> None:
    from voxengine.cli import main

    assert main(["providers"]) == 0
    assert "openai" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
