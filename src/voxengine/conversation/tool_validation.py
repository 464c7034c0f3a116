"""Checking a model's tool arguments against the tool's JSON Schema (``jsonschema``), and
turning results and errors into the text sent back to the model."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from voxengine._json import type_name
from voxengine.conversation.tool_schema import _json_fallback_strict
from voxengine.errors import ConfigError


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
                text = f"{where}: expected {expected}, got {type_name(value)}"
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
                text = f"{where}: {type_name(value)} does not match any allowed form"
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
