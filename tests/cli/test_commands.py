"""The CLI end to end: subprocesses against the bundled fake server and WAV files."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxengine.audio.wav import read_wav

from .conftest import Vox, cli_env


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
    assert "hint: export OPENAI_API_KEY=" in result.stderr  # where to put it


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
        (["run", "--provider", "openai", "--text", "hi"], "needs an API key"),
        (["chat", "--provider", "nope"], "unknown provider 'nope'; known providers:"),
        (["chat", "--provider", "opnai"], "did you mean 'openai'?"),
        (["console", "--fake", "--input", "x.wav"], "--input x.wav: no such file"),
        (["console", "--fake", "--out", "x.wav"], "--out needs --input"),
        (["replay", "missing.jsonl"], "missing.jsonl: no such file"),
        (["run", "--fake", "--text", "hi", "-o", "no/such/dir/out.wav"], "does not exist"),
        (["run", "--fake", "--text", "hi", "-o", "."], "is a directory"),
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
    result = vox("chat", "--provider", "openai", stdin="hello\n")
    assert result.returncode == 2
    assert "OPENAI_API_KEY" in result.stderr
    assert "--fake" in result.stderr


def test_chat_reads_lines_and_prints_replies(vox: Vox, tmp_path: Path) -> None:
    result = vox("chat", "--fake", "--out", "chat.wav", stdin="hello\n\nhow are you\n")
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
    out = result.stdout
    assert max(len(line) for line in out.splitlines()) <= 100
    blocks = {b.split()[0]: b for b in out.split("\n\n") if b and not b[0].isupper()}
    assert {"openai", "azure", "gemini", "mock", "pipeline", "anthropic"} <= set(blocks)
    assert "OpenAI Realtime API" in blocks["openai"]
    assert "keys: OPENAI_API_KEY" in blocks["openai"]
    assert "GEMINI_API_KEY" in blocks["gemini"]
    assert "function_calling" in blocks["openai"]


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


def test_bare_command_shows_help_and_version_is_printed(vox: Vox) -> None:
    bare = vox()
    assert bare.returncode == 0
    assert bare.stdout.startswith("usage: voxengine")
    assert "examples:" in bare.stdout
    assert bare.stderr == ""
    version = vox("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == "voxengine 0.1.0"


def test_help_shows_defaults_and_examples(vox: Vox) -> None:
    result = vox("run", "--help")
    assert result.returncode == 0
    assert "(default: 60.0)" in result.stdout  # --timeout
    assert "examples:" in result.stdout
    assert "--output" not in result.stdout  # the deprecated spelling is hidden
    assert "-o FILE.wav, --out FILE.wav" in result.stdout


def test_old_flag_spellings_still_work_and_say_what_replaced_them(vox: Vox, tmp_path: Path) -> None:
    result = vox("run", "--fake", "--text", "hi", "--output", "old.wav")
    assert result.returncode == 0, result.stderr
    assert "--output is deprecated; use --out" in result.stderr
    assert (tmp_path / "old.wav").exists()
    demo = vox("demo", "--fake-openai", "--out", "demo.wav")
    assert demo.returncode == 0, demo.stderr
    assert "--fake-openai is deprecated; use --fake" in demo.stderr


def test_run_and_chat_default_to_the_offline_stack_like_demo(vox: Vox) -> None:
    from voxengine.cli._offline import OFFLINE_ENV
    from voxengine.providers.pipeline._packaged import local_extra_installed

    fallback = {**cli_env(), OFFLINE_ENV: "fallback"}
    chat = vox("chat", stdin="hello\n", env=fallback)
    assert chat.returncode == 0, chat.stderr
    assert "not an AI model" in chat.stdout  # the fallback's rule-based responder answered
    run = vox("run", "--text", "hello", env=fallback)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("user: hello") == 1
    assert "not an AI model" in run.stdout
    if local_extra_installed():  # the default: the local voice AI answers, not the rules
        local = vox("run", "--text", "hello", timeout=180)
        assert local.returncode == 0, local.stderr
        assert local.stdout.count("user: hello") == 1
        reply = local.stdout.split("assistant:", 1)[1].strip()
        assert reply
        assert "not an AI model" not in reply
    record = vox("run", "--text", "hello", "--record", "x.jsonl", env=fallback)
    assert record.returncode == 2
    assert "--record needs a WebSocket provider" in record.stderr


def test_wrong_file_types_are_named_before_any_session(
    vox: Vox, tmp_path: Path, hello_wav: Path
) -> None:
    console = vox("console", "--fake", "--input", str(hello_wav))
    assert console.returncode == 2
    assert "push-to-talk needs a terminal" in console.stderr
    replay = vox("replay", str(hello_wav))
    assert replay.returncode == 2
    assert "is a WAV file, not a recording" in replay.stderr
    (tmp_path / "notes.txt").write_text("hello")
    run = vox("run", "--fake", "--input", "notes.txt")
    assert run.returncode == 2
    assert "notes.txt: not a WAV file" in run.stderr
    assert result_has_no_session(run.stdout)
    assert_no_traceback(replay.stderr + run.stderr)


def result_has_no_session(stdout: str) -> bool:
    return "turn 1" not in stdout


def test_an_unexpected_failure_is_one_line_unless_debug(vox: Vox, tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl").write_text('{"not": "a recording"}\n')
    plain = vox("replay", "bad.jsonl")
    assert plain.returncode != 0
    assert plain.stderr.startswith("error: ")
    assert_no_traceback(plain.stderr)
    debug = vox("--debug", "replay", "bad.jsonl")
    assert debug.returncode == plain.returncode
    assert "Traceback" in debug.stderr


def test_run_prints_each_user_turn_once_offline(vox: Vox, tmp_path: Path) -> None:
    import asyncio

    from voxengine.audio.format import AudioFormat
    from voxengine.audio.wav import write_wav
    from voxengine.providers.pipeline import EspeakTTS

    async def speak() -> None:
        tts = EspeakTTS(voice="en-us", words_per_minute=160)
        await tts.open()
        pcm = b"".join([chunk async for chunk in tts.synthesize("what time is it")])
        await tts.aclose()
        fmt = AudioFormat(sample_rate=tts.sample_rate)
        write_wav(tmp_path / "speech.wav", pcm + bytes(fmt.bytes_for(1.0)), fmt)

    asyncio.run(speak())
    result = vox("run", "--input", "speech.wav", "--text", "hello")
    assert result.returncode == 0, result.stderr
    users = [line for line in result.stdout.splitlines() if line.startswith("user")]
    assert users[0].startswith("user (transcript): ")  # the spoken turn, once
    assert users[1:] == ["user: hello"]  # the text turn, once
