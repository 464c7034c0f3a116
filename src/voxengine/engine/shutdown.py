"""The bounded parts of :meth:`VoiceEngine.disconnect <voxengine.VoiceEngine.disconnect>`.

:func:`close_provider` closes the tool runner and the provider side by side, each
bounded; :func:`report_cancelled` tells the application what had to be cancelled.
Neither raises a background failure.
"""

from __future__ import annotations

import asyncio
import logging

from voxengine.bus import EventBus
from voxengine.conversation.tool_runner import ToolRunner
from voxengine.events import ShutdownCancelled
from voxengine.providers.base import BaseProvider

__all__ = ["close_provider", "report_cancelled"]

logger = logging.getLogger("voxengine.engine")


async def close_provider(
    runner: ToolRunner | None, provider: BaseProvider, grace: float
) -> list[str]:
    """Close ``runner`` (tool outputs being sent get ``grace`` seconds) while the
    provider disconnects; returns the tool calls that were cancelled."""
    closing = await asyncio.gather(
        runner.aclose(timeout=grace) if runner is not None else _nothing(),
        provider.disconnect(),
        return_exceptions=True,
    )
    for failure in closing:
        if isinstance(failure, BaseException):
            logger.warning("closing failed: %r", failure)
    return closing[0] if isinstance(closing[0], list) else []


async def report_cancelled(
    events: EventBus, tool_calls: list[str], handlers: tuple[str, ...], grace: float
) -> None:
    """Log and dispatch a :class:`ShutdownCancelled` (its async handlers get ``grace``
    seconds)."""
    report = ShutdownCancelled(tool_calls=tuple(tool_calls), handlers=handlers)
    logger.warning(
        "disconnect cancelled %d tool call(s) %s and handler(s) for %s",
        len(tool_calls),
        tool_calls,
        handlers,
    )
    pending = events.dispatch(report)
    if pending is not None:  # an async handler of the report: bounded too
        waiter = asyncio.ensure_future(pending)
        await asyncio.wait({waiter}, timeout=grace)
        waiter.cancel()


async def _nothing() -> list[str]:
    return []
