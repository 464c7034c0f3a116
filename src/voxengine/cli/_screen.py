"""The console's terminal view, drawn with ``rich``.

Why ``rich`` (its ``Live`` display) rather than ``textual`` or curses: the console
is a scrolling transcript with a small live area below it, not a full-screen app.
``rich.live.Live`` does exactly that: lines printed through its console scroll
above the live area and stay in the terminal's scrollback, the live area is redrawn
in place at the terminal's current width (it follows resizes), and colour degrades
by itself on terminals without it. ``textual`` would take the whole screen, own the
keyboard and the event loop, and hide the transcript from the scrollback.

The live area has up to four lines, each cut (with an ellipsis) to the width:

1. the turn in progress (what the user is saying, or the reply streaming in), or
   the text being typed;
2. the status: microphone, a level meter, speech detected, assistant speaking,
   turns, a note;
3. the last turn's latency per stage (:mod:`voxengine.cli._latency`);
4. the keys, always shown whole when the terminal is wide enough for them.

When the output is not a terminal only finished lines are printed, without colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import IO, final

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from voxengine.cli._latency import StageLatency

__all__ = ["ConsoleState", "Screen", "level_meter", "render_live"]

_METER_WIDTH = 12

#: Styles of finished lines, by their prefix.
_STYLES = (("you:", "bold cyan"), ("assistant:", "green"), ("[", "yellow"), ("voxengine", "bold"))


def level_meter(level: float, width: int = _METER_WIDTH) -> Text:
    """A meter of an RMS ``level`` (0..1 full scale) over -60..0 dBFS, and its dB value."""
    db = 20 * math.log10(level) if level > 0 else -120.0
    filled = max(0, min(width, round((db + 60) / 60 * width)))
    colour = "red" if db > -6 else "yellow" if db > -20 else "green"
    meter = Text("[")
    meter.append("#" * filled, style=colour)
    meter.append("-" * (width - filled), style="dim")
    meter.append("] ")
    meter.append(f"{db:4.0f} dB" if db > -100 else "  -- dB")
    return meter


@dataclass(slots=True)
class ConsoleState:
    """What the live area shows."""

    mode: str = "always-on"  # or "push-to-talk"
    listening: bool = False
    speech: bool = False
    level: float = 0.0
    assistant_audible: bool = False
    partial: str = ""  # the turn in progress, e.g. "assistant: Hel"
    typing: str | None = None  # text being typed (None: not typing)
    latency: StageLatency | None = None
    turns: int = 0
    note: str = ""


def _keys_help(state: ConsoleState) -> str:
    if state.typing is not None:
        return "Enter send | Esc cancel"
    talk = "SPACE talk/send" if state.mode == "push-to-talk" else "always on"
    return f"{talk} | t type | i interrupt | q quit"


def _cut(text: Text) -> Text:
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def render_live(state: ConsoleState) -> list[Text]:
    """The live area's lines for ``state`` (rich cuts them to the terminal's width)."""
    lines: list[Text] = []
    if state.typing is not None:
        lines.append(Text.assemble(("type> ", "bold magenta"), state.typing, ("_", "blink")))
    elif state.partial:
        style = "cyan" if state.partial.startswith("you:") else "green"
        lines.append(Text(state.partial, style=style))
    mic = "REC" if state.listening else "mic off"
    if state.mode != "push-to-talk" and state.listening:
        mic = "listening"
    status = Text.assemble((mic, "bold red" if state.listening else "dim"), " ")
    status.append_text(level_meter(state.level))
    if state.speech:
        status.append("  SPEECH", style="bold yellow")
    if state.assistant_audible:
        status.append("  assistant speaking", style="green")
    status.append(f"  turns {state.turns}")
    if state.note:
        status.append(f"  {state.note}", style="italic")
    lines.append(status)
    if state.latency is not None:
        lines.append(Text("latency " + state.latency.describe(), style="dim"))
    lines.append(Text(f"[{_keys_help(state)}]", style="bold"))
    return [_cut(line) for line in lines]


def _styled(text: str) -> Text:
    for prefix, style in _STYLES:
        if text.startswith(prefix):
            return Text(text, style=style)
    return Text(text)


@final
class Screen:
    """Writes transcript lines and keeps the live area drawn below them.

    Args:
        out: the terminal (or any text stream).
        live: draw the live area (True for terminals); False prints lines only.
    """

    def __init__(self, out: IO[str], *, live: bool) -> None:
        self._console = Console(file=out, highlight=False, soft_wrap=False)
        self._live: Live | None = None
        if live:
            self._live = Live(
                console=self._console,
                auto_refresh=False,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()

    def line(self, text: str, state: ConsoleState | None) -> None:
        """Print a finished transcript line above the live area, redrawn from ``state``.

        rich redraws the live area below every printed line from what it last drew, so
        the live area is redrawn from ``state`` first: else, for a moment, the old one
        (e.g. the partial reply just printed as a line) would show below the new line.
        """
        if state is not None:
            self.refresh(state)
        self._console.print(_styled(text), soft_wrap=True)

    def refresh(self, state: ConsoleState) -> None:
        """Redraw the live area."""
        if self._live is not None:
            self._live.update(Group(*render_live(state)), refresh=True)

    def close(self) -> None:
        """Stop the live area, leaving its last state and the cursor on a fresh line."""
        if self._live is not None:
            self._live.stop()
            self._live = None
