"""Runs the model's function calls and answers them, so conversations never hang.

On :class:`~voxengine.events.ToolCall` the runner starts the call at once (registered
tools run concurrently; sync ones in a worker thread), or asks the application's
``on_function_call`` handler. When the calling response ends it sends every output
(errors included, as tool error outputs) and, if the response completed, asks for
the follow-up response — one follow-up for any number of parallel calls. A call with
no handler gets an error output instead of silence. Outputs are sent even while the
provider is reconnecting (it queues them and delivers them on the new connection); an
output that can no longer be delivered (the session ended) is logged.

:meth:`ToolRunner.aclose` is bounded: calls still running are cancelled (a sync
tool's worker thread cannot be stopped; its result is discarded) and reported.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Awaitable, Callable
from typing import final

from voxengine._tasks import wait_then_cancel
from voxengine.conversation.tool_registry import ToolRegistry
from voxengine.conversation.tools import ToolResult
from voxengine.errors import VoxError
from voxengine.events import ResponseDone, ResponseStatus, ToolCall
from voxengine.providers.base import BaseProvider

__all__ = ["ManualHandler", "ToolRunner"]

logger = logging.getLogger("voxengine.tools")

#: The application's handler: returns the output (``None``: the app answers itself).
ManualHandler = Callable[[ToolCall], Awaitable[object] | object]


def _encode(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return json.dumps(str(value))


@final
class ToolRunner:
    """Executes tool calls for one engine; see the module docstring for the contract."""

    def __init__(
        self,
        registry: ToolRegistry,
        provider: BaseProvider,
        manual: Callable[[], ManualHandler | None],
        on_request: Callable[[], None],
    ) -> None:
        self._registry = registry
        self._provider = provider
        self._manual = manual
        self._on_request = on_request
        self._pending: dict[str, list[asyncio.Task[ToolResult | None]]] = {}
        self._calls: dict[asyncio.Task[ToolResult | None], str] = {}  # running -> call id
        self._tasks: set[asyncio.Task[None]] = set()
        #: Results sent so far, in order (for inspection and tests).
        self.results: list[ToolResult] = []

    async def on_tool_call(self, call: ToolCall) -> None:
        """Start running ``call``; its output is sent when its response ends."""
        task = asyncio.create_task(self._run(call), name=f"voxengine-tool-{call.name}")
        self._calls[task] = call.call_id
        task.add_done_callback(self._calls.pop)
        self._pending.setdefault(call.response_id, []).append(task)

    async def _run(self, call: ToolCall) -> ToolResult | None:
        if call.name in self._registry:
            return await self._registry.execute(call)
        handler = self._manual()
        if handler is None:
            logger.warning("no handler for tool %r; answering with an error", call.name)
            return ToolResult(
                call_id=call.call_id,
                name=call.name,
                output=json.dumps({"error": f"no handler for tool {call.name!r}"}),
                error=f"no handler for tool {call.name!r}",
                duration=0.0,
            )
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            result = handler(call)
            if inspect.isawaitable(result):
                result = await result
        except Exception as exc:
            logger.exception("on_function_call failed for %r", call.name)
            return ToolResult(
                call_id=call.call_id,
                name=call.name,
                output=json.dumps({"error": f"{type(exc).__name__}: {exc}"}),
                error=str(exc),
                duration=loop.time() - started,
            )
        if result is None:
            return None  # the application answers this call itself
        return ToolResult(
            call_id=call.call_id,
            name=call.name,
            output=_encode(result),
            error=None,
            duration=loop.time() - started,
        )

    def on_response_done(self, done: ResponseDone) -> None:
        """Send the outputs of ``done``'s calls once they finish (without blocking events)."""
        calls = self._pending.pop(done.response_id, None)
        if not calls:
            return
        task = asyncio.create_task(self._answer(done, calls), name="voxengine-tool-answer")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(
        self, done: ResponseDone, calls: list[asyncio.Task[ToolResult | None]]
    ) -> None:
        results = [r for r in await asyncio.gather(*calls) if r is not None]
        if not results:
            return
        try:
            for result in results:
                await self._provider.send_tool_result(result.call_id, result.output, respond=False)
                self.results.append(result)
            if done.status is ResponseStatus.COMPLETED:
                self._on_request()
                await self._provider.create_response()
        except VoxError as exc:  # the session ended: the provider reports what was lost
            unsent = [r.call_id for r in results if r not in self.results]
            logger.warning("tool output(s) %s not delivered: %s", unsent, exc)
        except Exception:  # a bug: logged here, never a task error nobody retrieves
            logger.exception("sending tool outputs failed")

    async def aclose(self, timeout: float = 1.0) -> list[str]:
        """Cancel calls still running; give answers in flight ``timeout`` seconds, then
        cancel them too. Returns the call ids of the calls cancelled."""
        cancelled = [call_id for task, call_id in self._calls.items() if not task.done()]
        for task in list(self._calls):
            task.cancel()
        self._pending.clear()
        await wait_then_cancel(self._tasks, timeout)
        if cancelled:
            logger.warning("disconnect cancelled tool call(s) still running: %s", cancelled)
        return cancelled
