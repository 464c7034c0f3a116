"""The spec types the client-event schemas of the fake OpenAI server are written in (pure).

The live server validates every client event strictly (protocol notes §3, §10):
unknown fields give ``unknown_parameter``, wrong JSON types ``invalid_type``, bad
enum values ``invalid_value``, range violations ``integer_below_min_value`` and
friends, missing fields ``missing_required_parameter``. The ``param`` of the error
is the dotted path inside the event, e.g. ``session.audio.input.format.rate`` or
``item.content[0].type``.

The specs here are small and composable (objects, tagged unions, lists, maps,
bounded numbers, enums); :mod:`.schema` writes the wire shapes with them. A spec's
``check(value, path)`` returns ``None`` or raises :class:`SchemaError`; it never
mutates the value.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from voxengine._json import type_name

__all__ = ["SchemaError", "Spec"]


class SchemaError(Exception):
    """A client event violates the wire schema; maps 1:1 onto an ``error`` event (§10)."""

    def __init__(self, code: str, message: str, param: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


#: The live API's wording of each JSON type in its messages.
_WORDING: Final = {
    "null": "null",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a decimal",
    "string": "a string",
    "array": "an array",
    "object": "an object",
}


def _type_error(path: str, expected: str, value: object) -> SchemaError:
    got = _WORDING[type_name(value)]
    return SchemaError(
        "invalid_type",
        f"Invalid type for '{path}': expected {expected}, but got {got} instead.",
        path,
    )


class Spec:
    """Base of all specs. ``expected`` words the accepted JSON type for messages."""

    __slots__ = ()
    expected: str = "a value"

    def accepts(self, value: object) -> bool:
        """True when ``value`` has the JSON type this spec validates (used by :class:`OneOf`)."""
        raise NotImplementedError

    def check(self, value: object, path: str) -> None:
        """Raise :class:`SchemaError` if ``value`` (found at ``path``) is invalid."""
        if not self.accepts(value):
            raise _type_error(path, self.expected, value)


@dataclass(frozen=True, slots=True)
class Str(Spec):
    max_len: int | None = None
    expected: str = "a string"

    def accepts(self, value: object) -> bool:
        return isinstance(value, str)

    def check(self, value: object, path: str) -> None:
        Spec.check(self, value, path)
        if self.max_len is not None and isinstance(value, str) and len(value) > self.max_len:
            raise SchemaError(
                "string_above_max_length",
                f"Invalid '{path}': string too long. Expected a string with maximum length "
                f"{self.max_len}, but got a string with length {len(value)} instead.",
                path,
            )


@dataclass(frozen=True, slots=True)
class Enum(Spec):
    values: tuple[str, ...]
    expected: str = "a string"

    def accepts(self, value: object) -> bool:
        return isinstance(value, str)

    def check(self, value: object, path: str) -> None:
        Spec.check(self, value, path)
        if value not in self.values:
            allowed = ", ".join(f"'{v}'" for v in self.values)
            raise SchemaError(
                "invalid_value",
                f"Invalid value: '{value}'. Supported values are: {allowed}.",
                path,
            )


def enum(*values: str) -> Enum:
    """Shorthand for :class:`Enum`."""
    return Enum(values)


@dataclass(frozen=True, slots=True)
class Num(Spec):
    """A number within ``lo..hi`` (either bound optional); ``kind`` words range errors."""

    lo: float | None = None
    hi: float | None = None
    expected: str = "a decimal"
    kind: str = "decimal"

    def accepts(self, value: object) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    def check(self, value: object, path: str) -> None:
        Spec.check(self, value, path)
        assert isinstance(value, int | float)
        for bound, below, sign in ((self.lo, True, ">="), (self.hi, False, "<=")):
            if bound is not None and (value < bound if below else value > bound):
                side, limit = ("below", "min") if below else ("above", "max")
                raise SchemaError(
                    f"{self.kind}_{side}_{limit}_value",
                    f"Invalid '{path}': {self.kind} {side} {limit}imum value. Expected a "
                    f"value {sign} {bound}, but got {value} instead.",
                    path,
                )


@dataclass(frozen=True, slots=True)
class Int(Num):
    """An integer (not a boolean) within ``lo..hi``."""

    expected: str = "an integer"
    kind: str = "integer"

    def accepts(self, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Bool(Spec):
    expected: str = "a boolean"

    def accepts(self, value: object) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class AnyObject(Spec):
    """Any JSON object, contents unchecked (JSON Schema ``parameters``, free ``metadata``)."""

    expected: str = "an object"

    def accepts(self, value: object) -> bool:
        return isinstance(value, dict)


@dataclass(frozen=True, slots=True)
class AnyJson(Spec):
    """Any JSON value (fields the fake passes through without interpreting)."""

    def accepts(self, value: object) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Nullable(Spec):
    inner: Spec

    def accepts(self, value: object) -> bool:
        return value is None or self.inner.accepts(value)

    def check(self, value: object, path: str) -> None:
        if value is not None:
            self.inner.check(value, path)


@dataclass(frozen=True, slots=True)
class ListOf(Spec):
    inner: Spec
    max_items: int | None = None
    expected: str = "an array"

    def accepts(self, value: object) -> bool:
        return isinstance(value, list)

    def check(self, value: object, path: str) -> None:
        Spec.check(self, value, path)
        assert isinstance(value, list)
        if self.max_items is not None and len(value) > self.max_items:
            raise SchemaError(
                "array_above_max_length",
                f"Invalid '{path}': array too long. Expected an array with maximum length "
                f"{self.max_items}, but got an array with length {len(value)} instead.",
                path,
            )
        for index, element in enumerate(value):
            self.inner.check(element, f"{path}[{index}]")


@dataclass(frozen=True, slots=True)
class MapOf(Spec):
    """A JSON object with free string keys (``metadata``, MCP ``headers``)."""

    inner: Spec
    max_items: int | None = None
    max_key_len: int | None = None
    expected: str = "an object"

    def accepts(self, value: object) -> bool:
        return isinstance(value, dict)

    def check(self, value: object, path: str) -> None:
        Spec.check(self, value, path)
        assert isinstance(value, dict)
        if self.max_items is not None and len(value) > self.max_items:
            raise SchemaError(
                "object_above_max_properties",
                f"Invalid '{path}': too many properties. Expected at most {self.max_items}.",
                path,
            )
        for key, element in value.items():
            if self.max_key_len is not None and len(key) > self.max_key_len:
                raise SchemaError(
                    "string_above_max_length",
                    f"Invalid '{path}': key '{key}' longer than {self.max_key_len} characters.",
                    path,
                )
            self.inner.check(element, _join(path, key))


@dataclass(frozen=True, slots=True)
class Obj(Spec):
    """A JSON object with a closed set of keys; unknown keys are ``unknown_parameter`` (§3)."""

    fields: Mapping[str, Spec]
    required: tuple[str, ...] = ()
    expected: str = "an object"

    def accepts(self, value: object) -> bool:
        return isinstance(value, dict)

    def check(self, value: object, path: str) -> None:
        Spec.check(self, value, path)
        assert isinstance(value, dict)
        for key in value:
            if key not in self.fields:
                where = _join(path, key)
                raise SchemaError("unknown_parameter", f"Unknown parameter: '{where}'.", where)
        for key in self.required:
            if key not in value:
                where = _join(path, key)
                raise SchemaError(
                    "missing_required_parameter", f"Missing required parameter: '{where}'.", where
                )
        for key, element in value.items():
            self.fields[key].check(element, _join(path, key))


@dataclass(frozen=True, slots=True)
class Tagged(Spec):
    """A discriminated union of objects keyed by ``key`` (``type``, or ``role`` for messages)."""

    key: str
    variants: Mapping[str, Spec]
    default: str | None = None
    expected: str = "an object"

    def accepts(self, value: object) -> bool:
        return isinstance(value, dict)

    def check(self, value: object, path: str) -> None:
        Spec.check(self, value, path)
        assert isinstance(value, dict)
        where = _join(path, self.key)
        tag = value.get(self.key, self.default)
        if tag is None:
            raise SchemaError(
                "missing_required_parameter", f"Missing required parameter: '{where}'.", where
            )
        if not isinstance(tag, str):
            raise _type_error(where, "a string", tag)
        variant = self.variants.get(tag)
        if variant is None:
            allowed = ", ".join(f"'{v}'" for v in self.variants)
            raise SchemaError(
                "invalid_value", f"Invalid value: '{tag}'. Supported values are: {allowed}.", where
            )
        variant.check(value, path)


@dataclass(frozen=True, slots=True)
class OneOf(Spec):
    """Alternatives told apart by JSON type (e.g. ``"inf"`` or an integer)."""

    alternatives: tuple[Spec, ...]
    expected: str = field(default="one of the allowed types")

    def accepts(self, value: object) -> bool:
        return any(alt.accepts(value) for alt in self.alternatives)

    def check(self, value: object, path: str) -> None:
        for alt in self.alternatives:
            if alt.accepts(value):
                alt.check(value, path)
                return
        expected = " or ".join(alt.expected for alt in self.alternatives)
        raise _type_error(path, expected, value)


def one_of(*alternatives: Spec) -> OneOf:
    """Shorthand for :class:`OneOf`."""
    return OneOf(alternatives)


def obj(required: Sequence[str] = (), /, **fields: Spec) -> Obj:
    """Shorthand for :class:`Obj` (keyword names that are not identifiers go through dicts)."""
    return Obj(fields, tuple(required))
