"""Ending background tasks within a bound (``disconnect()``'s helpers)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

__all__ = ["wait_then_cancel"]


async def wait_then_cancel(tasks: Collection[asyncio.Future[Any]], timeout: float) -> int:
    """Wait up to ``timeout`` seconds for ``tasks`` to finish, cancel those still
    running and give them ``timeout`` seconds more to end. Returns how many had to be
    cancelled. Never raises what the tasks raise."""
    if not tasks:
        return 0
    tasks = set(tasks)
    await asyncio.wait(tasks, timeout=timeout)
    left = [task for task in tasks if not task.done()]
    if not left:
        return 0
    for task in left:
        task.cancel()
    await asyncio.wait(left, timeout=timeout)
    return len(left)
