"""Function calling: describe Python functions to the model and run the calls it makes.

:func:`tool` turns a function into a :class:`Tool`, deriving the JSON Schema of its
parameters (the ``parameters`` of a §4.2 function tool) from the signature and type
hints. :class:`ToolRegistry` holds tools, hands their :class:`~voxengine.config.ToolSpec`
to the session config, and executes :class:`~voxengine.events.ToolCall` events::

    @tool
    def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
        \"\"\"Get the current weather for a city.\"\"\"
        ...

    registry = ToolRegistry([get_weather])
    config = SessionConfig(tools=registry.specs())
    ...
    result = await registry.execute(call)           # never raises, never hangs
    await session.send(SendToolResult(call_id=result.call_id, output=result.output))

The schema derivation is in :mod:`.tool_schema`, argument checking in
:mod:`.tool_validation` and :class:`ToolRegistry` in :mod:`.tool_registry`.

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``Literal[...]``,
:class:`enum.Enum` subclasses with ``str``/``int`` values, ``list[T]``,
``Sequence[T]``, ``tuple[T, ...]``, ``set[T]``, ``frozenset[T]``, ``dict[str, T]``,
``Mapping[str, T]``, ``T | None``, ``TypedDict`` and dataclasses (nested objects),
each optionally wrapped in ``Annotated[T, "description"]``. Annotations must be
resolvable from the module that defines the function (this matters under
``from __future__ import annotations``).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, final, overload

from voxengine.config import ToolSpec
from voxengine.conversation.tool_schema import _parse_docstring, _Plan, _signature_schema
from voxengine.conversation.tool_validation import _check_schema
from voxengine.errors import ConfigError

__all__ = ["Tool", "ToolResult", "tool"]


@final
@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call, with the :class:`ToolSpec` that describes it.

    Build tools with :func:`tool`. Calling a ``Tool`` calls ``function`` directly, so
    a decorated function stays usable from Python.

    Attributes:
        spec: name, description and JSON Schema of the parameters, as sent to the model.
        function: the Python callable (sync or async) that implements the tool.
        timeout: seconds :meth:`ToolRegistry.execute` waits for a result; ``None`` = no limit.
        is_async: whether ``function`` returns an awaitable (it is awaited on the
            event loop); otherwise it runs in a worker thread.
    """

    spec: ToolSpec
    function: Callable[..., Any]
    timeout: float | None
    is_async: bool
    # How to turn validated JSON into the annotated Python types; only set when the
    # schema was derived from the signature (None: arguments are passed as parsed JSON).
    _plan: _Plan | None = field(default=None, repr=False, compare=False, kw_only=True)

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise ConfigError(f"tool {self.spec.name!r}: timeout must be positive or None")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the underlying function directly (no validation, timeout or threading)."""
        return self.function(*args, **kwargs)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult:
    """The outcome of one tool call, ready to send back as a function call output.

    Attributes:
        call_id: the ``call_id`` of the :class:`~voxengine.events.ToolCall`.
        name: the tool name the model asked for.
        output: what to return to the model: the serialised return value, or a JSON
            object ``{"error": "..."}`` when the call failed.
        error: ``None`` on success, else the human-readable reason (also in ``output``).
        duration: wall-clock seconds spent on the call, validation included.
    """

    call_id: str
    name: str
    output: str
    error: str | None
    duration: float

    @property
    def ok(self) -> bool:
        """``True`` when the tool ran and returned a value."""
        return self.error is None


# --------------------------------------------------------------------------- tool()


@overload
def tool(
    fn: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = 30.0,
) -> Tool: ...


@overload
def tool(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = 30.0,
) -> Callable[[Callable[..., Any]], Tool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timeout: float | None = 30.0,
) -> Tool | Callable[[Callable[..., Any]], Tool]:
    """Make a :class:`Tool` from a function; usable as ``@tool`` or ``@tool(name=...)``.

    Args:
        fn: the function (sync or async). Its parameters become the tool's arguments
            and must all be annotated; ``*args``, ``**kwargs`` and positional-only
            parameters are not allowed.
        name: tool name; defaults to the function's ``__name__``.
        description: what the tool does; defaults to the first paragraph of the docstring.
        parameters: an explicit JSON Schema object for the arguments. When given, the
            signature is not inspected and arguments are passed to ``fn`` as parsed JSON.
            When omitted, the schema is derived from the type hints (parameter
            descriptions come from ``Annotated[T, "..."]`` or a Google-style ``Args:``
            section) and arguments are converted to the annotated types.
        timeout: seconds a call may take before it fails with a timeout; ``None`` for no limit.

    Returns:
        The tool, or a decorator producing it when ``fn`` is omitted.

    Raises:
        ConfigError: a parameter is unannotated or has an unsupported annotation (the
            message names it), the name is invalid, the schema is not a JSON object
            schema, or ``timeout`` is not positive.
    """

    def build(function: Callable[..., Any]) -> Tool:
        return _build_tool(function, name, description, parameters, timeout)

    if fn is None:
        return build
    return build(fn)


def _build_tool(
    fn: Callable[..., Any],
    name: str | None,
    description: str | None,
    parameters: Mapping[str, Any] | None,
    timeout: float | None,
) -> Tool:
    if isinstance(fn, Tool):
        fn = fn.function
    if not callable(fn):
        raise ConfigError(f"tool() needs a callable, got {type(fn).__name__}")
    tool_name = name if name is not None else getattr(fn, "__name__", None)
    if not isinstance(tool_name, str):
        raise ConfigError(f"{fn!r} has no __name__; pass name=...")
    summary, arg_docs = _parse_docstring(_docstring_of(fn))
    plan: _Plan | None = None
    if parameters is not None:
        try:
            schema = json.loads(json.dumps(parameters))  # detach from the caller's dict
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"tool {tool_name!r}: parameters are not JSON") from exc
        _check_schema(tool_name, schema)
    else:
        schema, plan = _signature_schema(fn, tool_name, arg_docs)
    spec = ToolSpec(
        name=tool_name,
        description=description if description is not None else summary,
        parameters=schema,
    )
    return Tool(
        spec=spec,
        function=fn,
        timeout=timeout,
        is_async=_is_async(fn),
        _plan=plan,
    )


def _is_async(fn: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(fn):
        return True
    # An instance whose class defines ``async def __call__``.
    return (
        not inspect.isroutine(fn)
        and not isinstance(fn, type)
        and inspect.iscoroutinefunction(type(fn).__call__)
    )


def _docstring_of(fn: Callable[..., Any]) -> str:
    target: object = fn.func if isinstance(fn, functools.partial) else fn
    return inspect.getdoc(target) or ""
