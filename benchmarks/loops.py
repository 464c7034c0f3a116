"""Which event loop runs the clients: the standard asyncio loop or uvloop (optional)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LOOPS", "loop_factory", "run", "uvloop_available"]

T = TypeVar("T")

LOOPS = ("asyncio", "uvloop")


def uvloop_available() -> bool:
    """Whether ``uvloop`` can be imported (``pip install -e '.[bench]'``)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The loop factory for ``name`` (None: asyncio's default).

    Raises:
        ValueError: unknown name, or uvloop asked for but not installed.
    """
    if name == "asyncio":
        return None
    if name == "uvloop":
        if not uvloop_available():
            raise ValueError("--loop uvloop needs uvloop: pip install -e '.[bench]'")
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    raise ValueError(f"unknown event loop {name!r}; choose from {', '.join(LOOPS)}")


def run(coro: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    """``asyncio.run(coro)`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(coro)
