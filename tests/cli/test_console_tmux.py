"""The console view in a real terminal: tmux runs it, sends keys and reads the screen.

Uses the file audio backend and the bundled fake server, so it runs on machines
without sound cards. Needs tmux (CI: ``sudo apt-get install -y tmux``).
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from voxengine.audio.wav import read_wav

pytestmark = [
    pytest.mark.skipif(
        shutil.which("tmux") is None,
        reason="tmux is not installed (CI: sudo apt-get install -y tmux)",
    ),
    pytest.mark.timeout(60),
]


class Terminal:
    """A detached 120x30 tmux session running one command."""

    def __init__(self, command: str, cwd: Path) -> None:
        self.name = f"vx-{uuid.uuid4().hex[:8]}"
        shell = f"cd {shlex.quote(str(cwd))} && {command}; echo EXIT=$?; sleep 60"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "120", "-y", "30", shell],
            check=True,
        )

    def screen(self) -> str:
        out = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def wait_for(self, text: str | Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        check = text if callable(text) else (lambda screen: text in screen)
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if check(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {text!r}; screen:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], check=False)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[[str], Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(args: str) -> Terminal:
        command = f"{shlex.quote(sys.executable)} -m voxengine {args}"
        term = Terminal(command, tmp_path)
        opened.append(term)
        return term

    yield open_terminal
    for term in opened:
        term.close()


def test_push_to_talk_turn(
    terminal: Callable[[str], Terminal], tmp_path: Path, hello_wav: Path
) -> None:
    term = terminal(f"console --fake --input-file {hello_wav} --output-file out.wav")
    screen = term.wait_for("SPACE talk/send | i interrupt | q quit")
    assert "push-to-talk, talking to the bundled fake OpenAI server" in screen
    assert "mic off" in screen
    term.keys("Space")
    screen = term.wait_for(lambda s: "REC [" in s and "#" in s.split("REC [")[1][:16])
    assert "recording: SPACE to send" in screen  # the meter moved while the file "speaks"
    time.sleep(1.0)
    term.keys("Space")
    screen = term.wait_for("ms to first output)")
    assert "you: (" in screen  # the fake's transcript of what was sent
    assert "assistant: I heard" in screen
    assert "turns 1" in screen
    term.keys("q")
    screen = term.wait_for("EXIT=")
    assert "EXIT=0" in screen
    assert "Traceback" not in screen
    assert "wrote the assistant's audio to out.wav" in screen
    audio, fmt = read_wav(tmp_path / "out.wav")
    assert fmt.duration(len(audio)) > 1.0


def test_always_on_with_max_turns_exits_by_itself(
    terminal: Callable[[str], Terminal], tmp_path: Path, hello_wav: Path
) -> None:
    term = terminal(
        f"console --fake --always-on --input-file {hello_wav} --output-file out.wav "
        "--max-turns 1 --record s.jsonl"
    )
    screen = term.wait_for("EXIT=", timeout=30)
    assert "always-on" in screen
    assert "assistant: I heard" in screen
    assert "latency" in screen
    assert "EXIT=0" in screen
    assert (tmp_path / "s.jsonl").stat().st_size > 0


def test_interrupt_key(terminal: Callable[[str], Terminal], hello_wav: Path) -> None:
    term = terminal(f"console --fake --always-on --input-file {hello_wav} --output-file out.wav")
    term.wait_for("assistant speaking", timeout=20)
    term.keys("i")
    screen = term.wait_for("[interrupted")
    term.keys("q")
    screen = term.wait_for("EXIT=")
    assert "EXIT=0" in screen
