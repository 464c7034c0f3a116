"""Single key presses from a terminal, delivered to an asyncio loop.

:func:`key_reader` puts the terminal in cbreak mode (keys arrive at once, without
echo; Ctrl-C still interrupts) for the duration of the ``with`` block and restores
it afterwards, even on errors. Keys arrive through ``loop.add_reader``, so the loop
never blocks on the keyboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterator

__all__ = ["key_reader", "stdin_is_terminal"]


def stdin_is_terminal() -> bool:
    """True when standard input is an interactive terminal."""
    try:
        return os.isatty(sys.stdin.fileno())
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def key_reader(on_key: Callable[[str], None]) -> Iterator[None]:
    """Call ``on_key(char)`` for every key pressed while the block runs.

    ``on_key("")`` signals the end of input (the terminal closed). Does nothing when
    stdin is not a terminal.
    """
    if not stdin_is_terminal():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            data = os.read(fd, 64)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            on_key("")
            return
        for char in data.decode("utf-8", "replace"):
            on_key(char)

    tty.setcbreak(fd)
    loop.add_reader(fd, readable)
    try:
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
