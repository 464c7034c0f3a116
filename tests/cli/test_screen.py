"""The console's screen over a real pseudo-terminal: what one printed line writes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from voxengine.cli._screen import ConsoleState, Screen


def _drain(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


@pytest.fixture
def terminal() -> Iterator[tuple[Screen, int]]:
    master, slave = os.openpty()
    os.set_blocking(master, False)
    out = os.fdopen(slave, "w")
    screen = Screen(out, live=True)
    try:
        yield screen, master
    finally:
        screen.close()
        out.close()
        os.close(master)


def test_a_printed_line_is_drawn_with_the_new_live_area_not_the_old(
    terminal: tuple[Screen, int],
) -> None:
    screen, master = terminal
    state = ConsoleState(mode="always-on")
    state.partial = "assistant: Hello the"
    screen.refresh(state)
    assert "assistant: Hello the" in _drain(master)  # the live area shows the partial reply
    # the reply is cut: printed as a line, and the live area no longer shows it
    state.partial = ""
    screen.line("assistant: Hello the...", state)
    screen.line("[interrupted after 0.4 s]", state)
    written = _drain(master)
    assert "[interrupted after 0.4 s]" in written
    # the old live area (the partial reply) is never drawn again, not even for a moment
    assert written.count("assistant: Hello the") == 1
    assert "mic off" in written or "listening" in written  # the live area was redrawn
