"""JSON Schema from Python signatures: what :func:`~voxengine.tools.tool` derives for
each parameter (and how it converts the model's JSON back), and docstring parsing."""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from voxengine._json import type_name
from voxengine.errors import ConfigError

_Coerce = Callable[[Any], Any]
_Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """Converters per parameter, and the nullable parameters to pass as None when omitted."""

    coercers: Mapping[str, _Coerce]
    fill_none: frozenset[str]


def _identity(value: Any) -> Any:
    return value


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
    kind = type_name(value)
    if kind in ("array", "object"):
        raise _Unsupported(f"literal value {value!r} is not a JSON scalar")
    return kind


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
