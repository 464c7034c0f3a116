"""A curses-free terminal view: scrolling transcript lines above a live status area.

Finished lines are printed normally (they stay in the scrollback). Below them, a
live area of up to two lines — the turn being spoken or streamed, and the status
line with the level meter — is redrawn in place with ANSI escapes (carriage return,
cursor up, clear to end of screen), which every terminal emulator understands. When
the output is not a terminal only finished lines are printed.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from typing import IO, final

__all__ = ["ConsoleState", "Screen", "level_meter", "render_live"]

_CLEAR_TO_END = "\x1b[J"
_UP = "\x1b[{}A"


def level_meter(level: float, width: int = 16) -> str:
    """An ASCII meter of an RMS ``level`` (0..1 full scale), -60..0 dBFS, and its dB value."""
    db = 20 * math.log10(level) if level > 0 else -120.0
    filled = max(0, min(width, round((db + 60) / 60 * width)))
    shown = f"{db:4.0f} dB" if db > -100 else "  -- dB"
    return f"[{'#' * filled}{'-' * (width - filled)}] {shown}"


@dataclass(slots=True)
class ConsoleState:
    """What the live area shows."""

    mode: str = "always-on"  # or "push-to-talk"
    listening: bool = False
    speech: bool = False
    level: float = 0.0
    assistant_audible: bool = False
    partial: str = ""  # the turn in progress, e.g. "assistant: Hel"
    last_latency: float | None = None
    turns: int = 0
    note: str = ""


def _keys_help(state: ConsoleState) -> str:
    talk = "SPACE talk/send" if state.mode == "push-to-talk" else "always on"
    return f"{talk} | i interrupt | q quit"


def render_live(state: ConsoleState, width: int) -> list[str]:
    """The live area's lines for ``state``, each cut to ``width - 1`` columns."""
    mic = "REC" if state.listening else "mic off"
    if state.mode != "push-to-talk" and state.listening:
        mic = "listening"
    parts = [
        f"{mic} {level_meter(state.level)}",
        "SPEECH" if state.speech else "",
        "assistant speaking" if state.assistant_audible else "",
        f"latency {state.last_latency * 1000:.0f} ms" if state.last_latency is not None else "",
        f"turns {state.turns}",
        state.note,
        f"[{_keys_help(state)}]",
    ]
    status = "  ".join(p for p in parts if p)
    lines = [state.partial] if state.partial else []
    lines.append(status)
    limit = max(10, width - 1)
    return [line if len(line) <= limit else line[: limit - 1] + "~" for line in lines]


@final
class Screen:
    """Writes transcript lines and keeps the live area drawn below them.

    Args:
        out: the terminal (or any text stream).
        live: draw the live area (True for terminals); False prints lines only.
    """

    def __init__(self, out: IO[str], *, live: bool) -> None:
        self._out = out
        self._live = live
        self._drawn = 0  # live lines currently on screen

    def _width(self) -> int:
        try:  # the terminal we draw on, not $COLUMNS (which may be stale)
            return os.get_terminal_size(self._out.fileno()).columns
        except (AttributeError, OSError, ValueError):
            return shutil.get_terminal_size((100, 30)).columns

    def _erase(self) -> str:
        if not self._drawn:
            return ""
        up = _UP.format(self._drawn - 1) if self._drawn > 1 else ""
        self._drawn = 0
        return "\r" + up + _CLEAR_TO_END

    def _draw(self, state: ConsoleState | None) -> str:
        if not self._live or state is None:
            return ""
        lines = render_live(state, self._width())
        self._drawn = len(lines)
        return "\n".join(lines)

    def line(self, text: str, state: ConsoleState | None) -> None:
        """Print a finished transcript line, then redraw the live area."""
        self._out.write(self._erase() + text + "\n" + self._draw(state))
        self._out.flush()

    def refresh(self, state: ConsoleState) -> None:
        """Redraw the live area."""
        if self._live:
            self._out.write(self._erase() + self._draw(state))
            self._out.flush()

    def close(self) -> None:
        """Leave the cursor on a fresh line below the last status."""
        if self._live and self._drawn:
            self._out.write("\n")
            self._out.flush()
            self._drawn = 0
