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


#: Where screen captures go (ignored by git); CI keeps them as test artefacts.
ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts" / "console"

SIZES = [(80, 24), (120, 35)]


class Terminal:
    """A detached tmux session of ``width`` x ``height`` running one command.

    Each terminal has a tmux server of its own (``-L``): on one shared server, a
    session starting while another test's last session closes meets a server on
    its way out ("server exited unexpectedly").
    """

    def __init__(self, command: str, cwd: Path, width: int = 120, height: int = 35) -> None:
        self.name = f"vx-{uuid.uuid4().hex[:8]}"
        self.width = width
        shell = f"cd {shlex.quote(str(cwd))} && {command}; echo EXIT=$?; sleep 60"
        size = ["-x", str(width), "-y", str(height)]
        self._tmux("new-session", "-d", "-s", self.name, *size, shell)

    def _tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.name, *args], capture_output=True, text=True, check=check
        )

    def capture(self, label: str) -> Path:
        """Save the screen as a test artefact; returns (and prints) its path."""
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTEFACTS / f"{label}.txt"
        path.write_text(self.screen())
        print(f"screen captured: {path}")
        return path

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.name, check=False).stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", self.name, *keys)

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
        self._tmux("kill-server", check=False)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(args: str, width: int = 120, height: int = 35) -> Terminal:
        command = f"{shlex.quote(sys.executable)} -m voxengine {args}"
        term = Terminal(command, tmp_path, width, height)
        opened.append(term)
        return term

    yield open_terminal
    for term in opened:
        term.close()


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_push_to_talk_turn(
    terminal: Callable[..., Terminal], tmp_path: Path, hello_wav: Path, width: int, height: int
) -> None:
    term = terminal(f"console --fake --input {hello_wav} --out out.wav", width, height)
    screen = term.wait_for("SPACE talk/send | t type | i interrupt | q quit")
    assert "push-to-talk, talking to the bundled fake OpenAI server" in screen
    assert "mic off" in screen
    assert all(len(line) <= width for line in screen.splitlines())
    term.keys("Space")
    screen = term.wait_for(lambda s: "REC [" in s and "#" in s.split("REC [")[1][:12])
    assert "recording: SPACE to send" in screen or width < 100  # the meter moved
    time.sleep(1.0)
    term.keys("Space")
    screen = term.wait_for("ms to first output)")
    assert "you: (" in screen  # the fake's transcript of what was sent
    assert "assistant: I heard" in screen
    assert "turns 1" in screen
    assert "latency STT" in screen  # the stages of the turn
    assert "q quit]" in screen  # the keys fit, whatever the width
    term.capture(f"push_to_talk_{width}x{height}")
    term.keys("q")
    screen = term.wait_for("EXIT=")
    assert "EXIT=0" in screen
    assert "Traceback" not in screen
    assert "wrote the assistant's audio to out.wav" in screen
    audio, fmt = read_wav(tmp_path / "out.wav")
    assert fmt.duration(len(audio)) > 1.0


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_typed_message_beside_voice(
    terminal: Callable[..., Terminal], hello_wav: Path, width: int, height: int
) -> None:
    term = terminal(f"console --fake --input {hello_wav} --out out.wav", width, height)
    term.wait_for("q quit]")
    term.keys("t")
    term.wait_for("type> ")
    term.keys("-l", "hello there")
    term.wait_for("type> hello there")
    term.keys("Enter")
    screen = term.wait_for("assistant: You said: hello there")
    assert "you (typed): hello there" in screen
    term.capture(f"typed_{width}x{height}")
    term.keys("q")
    assert "EXIT=0" in term.wait_for("EXIT=")


def test_ends_by_itself_when_the_input_file_ends(
    terminal: Callable[..., Terminal], hello_wav: Path
) -> None:
    term = terminal(f"console --fake --always-on --input {hello_wav} --out out.wav", 80, 24)
    screen = term.wait_for("EXIT=", timeout=40)
    assert "assistant: I heard" in screen
    assert "EXIT=0" in screen
    assert "Traceback" not in screen
    term.capture("input_file_ends_80x24")


def test_always_on_with_max_turns_exits_by_itself(
    terminal: Callable[..., Terminal], tmp_path: Path, hello_wav: Path
) -> None:
    term = terminal(
        f"console --fake --always-on --input {hello_wav} --out out.wav "
        "--max-turns 1 --record s.jsonl"
    )
    screen = term.wait_for("EXIT=", timeout=30)
    assert "always-on" in screen
    assert "assistant: I heard" in screen
    assert "latency" in screen
    assert "EXIT=0" in screen
    assert (tmp_path / "s.jsonl").stat().st_size > 0


def test_interrupt_key(terminal: Callable[..., Terminal], hello_wav: Path) -> None:
    term = terminal(f"console --fake --always-on --input {hello_wav} --out out.wav")
    term.wait_for("assistant speaking", timeout=20)
    term.keys("i")
    screen = term.wait_for("[interrupted")
    lines = screen.splitlines()
    cut = next(i for i, line in enumerate(lines) if line.startswith("[interrupted"))
    # the cut reply (if any text of it arrived) is above its note, never below it
    below = lines[cut + 1 :]
    assert not any(line.startswith("assistant: ") for line in below), screen
    term.capture("interrupted_120x35")
    term.keys("q")
    screen = term.wait_for("EXIT=")
    assert "EXIT=0" in screen


def test_chat_shows_a_prompt_in_a_terminal(terminal: Callable[..., Terminal]) -> None:
    term = terminal("chat --fake", 80, 24)
    term.wait_for("you>")  # (tmux drops the trailing space)
    term.keys("-l", "hello")
    term.keys("Enter")
    reply = "assistant: You said: hello"
    # the prompt again, for the next message (printed after the reply: wait for it)
    screen = term.wait_for(lambda s: reply in s and "you>" in s.split(reply, 1)[1])
    assert "user: hello" not in screen  # what was typed is not echoed a second time
    term.capture("chat_80x24")
    term.keys("C-d")
    screen = term.wait_for("EXIT=")
    assert "EXIT=0" in screen
    assert "Traceback" not in screen
