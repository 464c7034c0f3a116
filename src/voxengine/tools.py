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

Supported annotations: ``str``, ``int``, ``float``, ``bool``, ``Literal[...]``,
:class:`enum.Enum` subclasses with ``str``/``int`` values, ``list[T]``,
``Sequence[T]``, ``tuple[T, ...]``, ``set[T]``, ``frozenset[T]``, ``dict[str, T]``,
``Mapping[str, T]``, ``T | None``, ``TypedDict`` and dataclasses (nested objects),
each optionally wrapped in ``Annotated[T, "description"]``. Annotations must be
resolvable from the module that defines the function (this matters under
``from __future__ import annotations``).
"""

from __future__ import annotations

import asyncio
import collections.abc
import dataclasses
import enum
import functools
import inspect
import json
import logging
import re
import time
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, final, overload

from voxengine.config import ToolSpec
from voxengine.errors import ConfigError
from voxengine.events import ToolCall

__all__ = ["Tool", "ToolRegistry", "ToolResult", "tool"]

logger = logging.getLogger("voxengine.tools")

_Coerce = Callable[[Any], Any]
_Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """Converters per parameter, and the nullable parameters to pass as None when omitted."""

    coercers: Mapping[str, _Coerce]
    fill_none: frozenset[str]


def _identity(value: Any) -> Any:
    return value


# --------------------------------------------------------------------------- public types


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


# --------------------------------------------------------------------------- docstrings

_SECTION = re.compile(r"^(\s*)([A-Z][A-Za-z ]*):\s*$")
_ARG_SECTIONS = frozenset(
    {"Args", "Arguments", "Parameters", "Params", "Keyword Args", "Keyword Arguments"}
)
_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """The first paragraph (joined into one line) and the ``Args:`` descriptions."""
    lines = doc.splitlines()
    summary: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line):
            break
        summary.append(line.strip())
    args: dict[str, str] = {}
    section_indent: int | None = None
    entry_indent: int | None = None
    current: str | None = None
    for line in lines:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        header = _SECTION.match(line)
        if section_indent is None or indent <= section_indent:
            section_indent = entry_indent = None
            current = None
            if header and header.group(2) in _ARG_SECTIONS:
                section_indent = indent
            continue
        text = line.strip()
        if entry_indent is None:
            entry_indent = indent
        entry = _ENTRY.match(text) if indent == entry_indent else None
        if entry:
            current = entry.group(1)
            args[current] = entry.group(2).strip()
        elif current is not None and indent > entry_indent:
            args[current] = f"{args[current]} {text}".strip()
    return " ".join(summary), args


# --------------------------------------------------------------------------- schemas


class _Unsupported(Exception):
    """An annotation cannot be expressed; ``where`` is the path inside the parameter."""

    def __init__(self, message: str, where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where


def _signature_schema(
    fn: Callable[..., Any], tool_name: str, arg_docs: Mapping[str, str]
) -> tuple[_Json, _Plan]:
    try:
        signature = inspect.signature(fn, eval_str=True)
    except (NameError, SyntaxError, TypeError) as exc:
        raise ConfigError(f"tool {tool_name!r}: cannot resolve type hints: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"tool {tool_name!r}: cannot read the signature: {exc}") from exc
    properties: _Json = {}
    required: list[str] = []
    coercers: dict[str, _Coerce] = {}
    fill_none: set[str] = set()
    for param in signature.parameters.values():
        where = f"tool {tool_name!r}: parameter {param.name!r}"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ConfigError(f"{where}: *args and **kwargs cannot be tool arguments")
        if param.kind is param.POSITIONAL_ONLY:
            raise ConfigError(f"{where}: positional-only parameters are not supported")
        if param.annotation is param.empty:
            raise ConfigError(f"{where}: missing type annotation")
        try:
            schema, coerce, nullable = _schema_for(param.annotation, set())
        except _Unsupported as exc:
            inner = f" (at {exc.where.lstrip('.')})" if exc.where else ""
            raise ConfigError(f"{where}{inner}: {exc.message}") from None
        if "description" not in schema and param.name in arg_docs and arg_docs[param.name]:
            schema = {"description": arg_docs[param.name], **schema}
        if param.default is not param.empty:
            default = _json_default(param.default)
            if default is not _NO_DEFAULT:
                schema["default"] = default
        elif nullable:
            fill_none.add(param.name)
        else:
            required.append(param.name)
        properties[param.name] = schema
        coercers[param.name] = coerce
    return _object_schema(properties, required), _Plan(coercers, frozenset(fill_none))


def _object_schema(properties: _Json, required: list[str]) -> _Json:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


_NO_DEFAULT: Any = object()


def _json_default(value: object) -> Any:
    """A default as JSON, or ``_NO_DEFAULT`` when it has no JSON form."""
    try:
        return json.loads(json.dumps(value, default=_json_fallback_strict, allow_nan=False))
    except (TypeError, ValueError):
        return _NO_DEFAULT


def _json_fallback_strict(value: object) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise TypeError(type(value).__name__)


_SCALARS: dict[type, tuple[str, _Coerce]] = {
    bool: ("boolean", _identity),
    int: ("integer", int),
    float: ("number", float),
    str: ("string", _identity),
}

_SEQUENCES: dict[Any, Callable[[Iterable[Any]], Any]] = {
    list: list,
    collections.abc.Sequence: list,
    collections.abc.MutableSequence: list,
    set: set,
    collections.abc.Set: frozenset,
    collections.abc.MutableSet: set,
    frozenset: frozenset,
}

_MAPPINGS = frozenset({dict, collections.abc.Mapping, collections.abc.MutableMapping})


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    raise _Unsupported(f"literal value {value!r} is not a JSON scalar")


def _enum_schema(values: Sequence[object]) -> _Json:
    kinds: list[str] = []
    for value in values:
        kind = _json_type(value)
        if kind not in kinds:
            kinds.append(kind)
    return {"type": kinds[0] if len(kinds) == 1 else kinds, "enum": list(values)}


def _schema_for(annotation: Any, seen: set[type]) -> tuple[_Json, _Coerce, bool]:
    """JSON Schema, converter and nullability of one annotation.

    Raises:
        _Unsupported: the annotation (or one nested in it) has no JSON Schema form.
    """
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)

    if origin is typing.Annotated:
        schema, coerce, nullable = _schema_for(args[0], seen)
        text = next((m for m in args[1:] if isinstance(m, str)), None)
        if text:
            schema = {"description": text, **schema}
        return schema, coerce, nullable

    if origin is Union or origin is types.UnionType:
        members = [a for a in args if a is not type(None)]
        if len(members) != 1:
            raise _Unsupported(
                f"unsupported union {_name(annotation)}: only 'T | None' is supported"
            )
        schema, coerce, _ = _schema_for(members[0], seen)
        return _nullable(schema), _optional(coerce), True

    if origin is Literal:
        if not args:
            raise _Unsupported("empty Literal")
        return _enum_schema(args), _identity, None in args

    if isinstance(annotation, type) and annotation in _SCALARS:
        kind, coerce = _SCALARS[annotation]
        return {"type": kind}, coerce, False

    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        values = [member.value for member in annotation]
        if not values:
            raise _Unsupported(f"enum {annotation.__name__} has no members")
        try:
            schema = _enum_schema(values)
        except _Unsupported:
            raise _Unsupported(f"enum {annotation.__name__} must have str or int values") from None
        return schema, annotation, False

    if origin in _SEQUENCES or origin is tuple:
        if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
            raise _Unsupported(
                f"unsupported tuple {_name(annotation)}: use tuple[T, ...] for a sequence"
            )
        if not args:
            raise _Unsupported(f"give the item type, e.g. {_name(origin)}[str]")
        try:
            items, item_coerce, _ = _schema_for(args[0], seen)
        except _Unsupported as exc:
            raise _Unsupported(exc.message, "[]" + exc.where) from None
        schema = {"type": "array", "items": items}
        make: Callable[[Iterable[Any]], Any] = tuple if origin is tuple else _SEQUENCES[origin]
        if make in (set, frozenset):
            schema["uniqueItems"] = True
        return schema, _sequence(make, item_coerce), False

    if origin in _MAPPINGS:
        if len(args) != 2 or args[0] is not str:
            raise _Unsupported(f"unsupported mapping {_name(annotation)}: use dict[str, T]")
        try:
            values_schema, value_coerce, _ = _schema_for(args[1], seen)
        except _Unsupported as exc:
            raise _Unsupported(exc.message, "{}" + exc.where) from None
        return (
            {"type": "object", "additionalProperties": values_schema},
            _mapping(value_coerce),
            False,
        )

    if typing.is_typeddict(annotation) or (
        isinstance(annotation, type) and dataclasses.is_dataclass(annotation)
    ):
        if annotation in seen:
            raise _Unsupported(f"recursive type {annotation.__name__} is not supported")
        return (*_class_schema(annotation, seen | {annotation}), False)

    if annotation is tuple:
        raise _Unsupported("give the item type, e.g. tuple[str, ...]")
    if isinstance(annotation, type) and (annotation in _SEQUENCES or annotation in _MAPPINGS):
        example = "[str, str]" if annotation in _MAPPINGS else "[str]"
        raise _Unsupported(f"give the item type, e.g. {_name(annotation)}{example}")
    raise _Unsupported(f"unsupported annotation {_name(annotation)}")


def _class_schema(cls: type, seen: set[type]) -> tuple[_Json, _Coerce]:
    """Object schema of a TypedDict or dataclass, with a converter building it from a dict."""
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except (NameError, SyntaxError, TypeError) as exc:
        raise _Unsupported(f"cannot resolve type hints of {cls.__name__}: {exc}") from None
    properties: _Json = {}
    required: list[str] = []
    coercers: dict[str, _Coerce] = {}
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            schema, coerce, nullable = _field_schema(cls, f.name, hints[f.name], seen)
            if f.default is not dataclasses.MISSING:
                default = _json_default(f.default)
                if default is not _NO_DEFAULT:
                    schema["default"] = default
            elif f.default_factory is dataclasses.MISSING and not nullable:
                required.append(f.name)
            properties[f.name] = schema
            coercers[f.name] = coerce
        build: Callable[..., Any] = cls
        # Nullable fields without defaults are optional in the schema but not in __init__.
        must_pass = [
            f.name
            for f in dataclasses.fields(cls)
            if f.init
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ]
    else:
        required_keys: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
        for key, hint in hints.items():
            wrapper = typing.get_origin(hint)
            is_required = key in required_keys
            if wrapper is typing.Required or wrapper is typing.NotRequired:
                is_required = wrapper is typing.Required
                hint = typing.get_args(hint)[0]
            schema, coerce, nullable = _field_schema(cls, key, hint, seen)
            if is_required and not nullable:
                required.append(key)
            properties[key] = schema
            coercers[key] = coerce
        build = dict
        must_pass = []

    def coerce_object(value: Mapping[str, Any]) -> Any:
        kwargs = {k: coercers[k](v) if k in coercers else v for k, v in value.items()}
        for key in must_pass:
            kwargs.setdefault(key, None)
        return build(**kwargs)

    return _object_schema(properties, required), coerce_object


def _field_schema(cls: type, key: str, hint: Any, seen: set[type]) -> tuple[_Json, _Coerce, bool]:
    try:
        return _schema_for(hint, seen)
    except _Unsupported as exc:
        raise _Unsupported(exc.message, f".{key}{exc.where}") from None


def _nullable(schema: _Json) -> _Json:
    schema = dict(schema)
    kind = schema.get("type")
    if isinstance(kind, str):
        schema["type"] = [kind, "null"]
    elif isinstance(kind, list) and "null" not in kind:
        schema["type"] = [*kind, "null"]
    if "enum" in schema and None not in schema["enum"]:
        schema["enum"] = [*schema["enum"], None]
    return schema


def _optional(coerce: _Coerce) -> _Coerce:
    return lambda value: None if value is None else coerce(value)


def _sequence(make: Callable[[Iterable[Any]], Any], item: _Coerce) -> _Coerce:
    return lambda value: make(item(v) for v in value)


def _mapping(item: _Coerce) -> _Coerce:
    return lambda value: {k: item(v) for k, v in value.items()}


def _name(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    return repr(annotation).replace("typing.", "")


# --------------------------------------------------------------------------- validation


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _where(path: Iterable[str | int]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    """A JSON Schema validator for one tool schema (compiled once per schema).

    ``jsonschema`` is imported here, on the first tool call, not with voxengine.
    """
    import jsonschema  # deferred: keeps `import voxengine` light

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def _check_schema(tool_name: str, schema: Any) -> None:
    """Raise :class:`ConfigError` when ``schema`` is not a valid JSON Schema."""
    import jsonschema  # deferred, as in _validator

    if not isinstance(schema, dict):
        raise ConfigError(f"tool {tool_name!r}: parameters must be an object JSON Schema")
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigError(f"tool {tool_name!r}: invalid JSON Schema: {exc.message}") from None


def _argument_errors(
    arguments: dict[str, Any], schema: Mapping[str, Any], *, merge_duplicates: bool
) -> list[str]:
    """What is wrong with ``arguments`` against the tool's JSON Schema, as short sentences.

    Validation is ``jsonschema``'s (the draft the schema names, 2020-12 by default);
    this function only words its errors for the model: one sentence per problem, and
    nothing more about a value whose type is already wrong. With ``merge_duplicates``
    (schemas derived from type hints, where ``uniqueItems`` marks a ``set`` parameter
    whose conversion merges repeats) repeated items are not an error.
    """
    errors = [
        e
        for e in _validator(json.dumps(schema)).iter_errors(arguments)
        if not (merge_duplicates and e.validator == "uniqueItems")
    ]
    wrong_type = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    messages: list[str] = []
    for error in errors:
        path = tuple(error.absolute_path)
        if error.validator != "type" and any(path[: len(bad)] == bad for bad in wrong_type):
            continue
        where = f"argument {_where(path)!r}" if path else "arguments"
        prefix = f"{_where(path)}." if path else ""
        value = error.instance
        match error.validator:
            case "type":
                kinds = error.validator_value
                expected = " or ".join(kinds) if isinstance(kinds, list) else str(kinds)
                text = f"{where}: expected {expected}, got {_describe(value)}"
            case "required":
                missing = [k for k in error.validator_value if k not in value]
                text = "; ".join(f"missing required argument {prefix + k!r}" for k in missing)
            case "additionalProperties":
                known = ", ".join(error.schema.get("properties") or {}) or "none"
                extra = [k for k in value if k not in (error.schema.get("properties") or {})]
                text = "; ".join(
                    f"unexpected argument {prefix + k!r} (allowed: {known})" for k in extra
                )
            case "enum":
                options = ", ".join(json.dumps(a) for a in error.validator_value)
                text = f"{where}: expected one of {options}, got {json.dumps(value)}"
            case "const":
                text = f"{where}: must be {json.dumps(error.validator_value)}"
            case "anyOf" | "oneOf":
                text = f"{where}: {_describe(value)} does not match any allowed form"
            case _:
                text = f"{where}: {error.message}"
        if text not in messages:
            messages.append(text)
    return messages


# --------------------------------------------------------------------------- serialisation


def _json_fallback(value: object) -> Any:
    try:
        return _json_fallback_strict(value)
    except TypeError:
        return str(value)


def _serialise(value: object) -> str:
    """``str`` as is; anything else as JSON (dataclasses, enums and sets converted, else str())."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=_json_fallback, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # non-str keys, NaN, cycles
        return str(value)


def _error_output(message: str) -> str:
    return json.dumps({"error": message}, ensure_ascii=False)


# --------------------------------------------------------------------------- registry


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
            raise _CallFailed(f"arguments must be a JSON object, got {_describe(parsed)}")
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
