"""The tool registry: the tools a session offers, and running the model's calls."""

from __future__ import annotations

import asyncio
import collections.abc
import inspect
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, final

from voxengine._json import type_name
from voxengine.config import ToolSpec
from voxengine.conversation.tool_validation import (
    _argument_errors,
    _error_output,
    _serialise,
)
from voxengine.conversation.tools import Tool, ToolResult, tool
from voxengine.errors import ConfigError
from voxengine.events import ToolCall

__all__ = ["ToolRegistry"]


logger = logging.getLogger("voxengine.tools")


class _CallFailed(Exception):
    """Internal: turns into an error :class:`ToolResult` carrying ``message``."""


@final
class ToolRegistry:
    """The tools available to the model, by name, and the executor of their calls.

    Not thread-safe: use it from the event loop. :meth:`execute` and
    :meth:`execute_all` never raise (except ``CancelledError`` when the caller is
    cancelled) and never wait longer than the tools' timeouts; every failure becomes
    an error :class:`ToolResult` the model can act on.
    """

    # Slots: one of these per session (memory per idle session).
    __slots__ = ("_tools",)

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        """Create a registry holding ``tools`` (functions are wrapped with :func:`tool`).

        Raises:
            ConfigError: as :meth:`add`.
        """
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.add(item)

    def add(self, tool_or_function: Tool | Callable[..., Any]) -> Tool:
        """Register a tool; a plain function is first wrapped with :func:`tool`.

        Returns:
            The registered tool.

        Raises:
            ConfigError: a tool with the same name is registered already, or the
                function cannot be described (see :func:`tool`).
        """
        item = tool_or_function if isinstance(tool_or_function, Tool) else tool(tool_or_function)
        if item.spec.name in self._tools:
            raise ConfigError(f"a tool named {item.spec.name!r} is already registered")
        self._tools[item.spec.name] = item
        return item

    def remove(self, name: str) -> Tool:
        """Unregister and return the tool called ``name``.

        Raises:
            KeyError: no tool has that name.
        """
        return self._tools.pop(name)

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)

    def specs(self) -> tuple[ToolSpec, ...]:
        """The specs of all tools in registration order, for ``SessionConfig(tools=...)``."""
        return tuple(t.spec for t in self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> collections.abc.Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __repr__(self) -> str:
        return f"ToolRegistry({list(self._tools)!r})"

    async def execute(self, call: ToolCall) -> ToolResult:
        """Run ``call`` and return its result; failures become error results.

        The arguments are parsed as JSON (an empty string counts as ``{}``), checked
        against the tool's schema (required, unexpected and wrongly typed arguments)
        and converted to the annotated types. Sync functions run in a worker thread
        (``asyncio.to_thread``), async ones are awaited. A timed-out sync function's
        thread cannot be stopped: it keeps running in the background and its result
        is discarded.

        Returns:
            A :class:`ToolResult`; ``output`` is the serialised return value (``str``
            as is, anything else as JSON), or ``{"error": "..."}`` on failure.

        Raises:
            asyncio.CancelledError: only when the task running ``execute`` is cancelled.
        """
        start = time.perf_counter()
        try:
            output = await self._run(call)
        except _CallFailed as exc:
            duration = time.perf_counter() - start
            logger.info("tool %s failed after %.3f s", call.name, duration)
            return ToolResult(
                call_id=call.call_id,
                name=call.name,
                output=_error_output(str(exc)),
                error=str(exc),
                duration=duration,
            )
        duration = time.perf_counter() - start
        logger.debug("tool %s finished in %.3f s", call.name, duration)
        return ToolResult(
            call_id=call.call_id, name=call.name, output=output, error=None, duration=duration
        )

    async def execute_all(self, calls: Iterable[ToolCall]) -> list[ToolResult]:
        """Run several calls concurrently; the results are in the order of ``calls``."""
        return list(await asyncio.gather(*(self.execute(call) for call in calls)))

    async def _run(self, call: ToolCall) -> str:
        item = self._tools.get(call.name)
        if item is None:
            known = ", ".join(self._tools) or "none"
            raise _CallFailed(f"unknown tool {call.name!r} (available: {known})")
        kwargs = self._arguments(item, call.arguments)
        deadline = asyncio.timeout(item.timeout)
        try:
            async with deadline:
                result = await self._invoke(item, kwargs)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            raise _CallFailed(f"tool {item.spec.name!r} was cancelled") from None
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                raise _CallFailed(
                    f"tool {item.spec.name!r} timed out after {item.timeout:g} s"
                ) from None
            raise _CallFailed(_exception_text(exc)) from None
        try:
            return _serialise(result)
        except Exception as exc:  # a user __str__ failed
            raise _CallFailed(f"cannot serialise the result: {type(exc).__name__}") from None

    @staticmethod
    def _arguments(item: Tool, arguments: str) -> dict[str, Any]:
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            raise _CallFailed(f"arguments are not valid JSON: {exc}") from None
        if not isinstance(parsed, dict):
            raise _CallFailed(f"arguments must be a JSON object, got {type_name(parsed)}")
        errors = _argument_errors(
            parsed, item.spec.parameters, merge_duplicates=item._plan is not None
        )
        if errors:
            raise _CallFailed(f"invalid arguments for {item.spec.name!r}: " + "; ".join(errors))
        plan = item._plan
        if plan is None:
            return parsed
        try:
            kwargs = {
                key: plan.coercers[key](value) if key in plan.coercers else value
                for key, value in parsed.items()
            }
        except Exception as exc:  # e.g. a dataclass __post_init__ rejecting a value
            raise _CallFailed(
                f"invalid arguments for {item.spec.name!r}: {_exception_text(exc)}"
            ) from None
        for key in plan.fill_none:  # omitted nullable parameters without a default
            kwargs.setdefault(key, None)
        return kwargs

    @staticmethod
    async def _invoke(item: Tool, kwargs: dict[str, Any]) -> Any:
        if item.is_async:
            result = item.function(**kwargs)
        else:
            result = await asyncio.to_thread(item.function, **kwargs)
        if inspect.isawaitable(result):
            awaitable: Awaitable[Any] = result
            result = await awaitable
        return result


def _exception_text(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
