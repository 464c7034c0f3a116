"""Function calling: schema derivation, the registry, and call execution."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired, Optional, TypedDict

import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeFunctionTool
from pydantic import TypeAdapter

from voxengine.config import ToolSpec
from voxengine.errors import ConfigError
from voxengine.events import ToolCall
from voxengine.tools import Tool, ToolRegistry, ToolResult, tool

# Types used in annotations live at module level: with ``from __future__ import
# annotations`` the hints are strings resolved in the function's module.


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Filters(TypedDict):
    query: str
    limit: NotRequired[int]


@dataclasses.dataclass(frozen=True)
class Point:
    x: float
    y: Annotated[float, "Vertical position"] = 0.0
    label: str | None = None


@dataclasses.dataclass
class Route:
    name: str
    stops: list[Point]
    note: str | None


@dataclasses.dataclass
class Node:
    children: list[Node]


def _params(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _call(name: str, arguments: Any, call_id: str = "c1") -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(call_id=call_id, name=name, arguments=text)


# --------------------------------------------------------------------------- schemas


def test_scalars_and_defaults() -> None:
    @tool
    def f(s: str, i: int, x: float, b: bool, n: int = 3, on: bool = False) -> None:
        """Scalars."""

    assert f.spec == ToolSpec(
        name="f",
        description="Scalars.",
        parameters=_params(
            {
                "s": {"type": "string"},
                "i": {"type": "integer"},
                "x": {"type": "number"},
                "b": {"type": "boolean"},
                "n": {"type": "integer", "default": 3},
                "on": {"type": "boolean", "default": False},
            },
            ["s", "i", "x", "b"],
        ),
    )
    assert f.timeout == 30.0
    assert f.is_async is False


def test_literal_and_enums() -> None:
    @tool
    def f(
        mode: Literal["fast", "slow"],
        mixed: Literal["a", 1],
        unit: Unit = Unit.CELSIUS,
        level: Level = Level.LOW,
    ) -> None:
        pass

    assert f.spec.parameters == _params(
        {
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "mixed": {"type": ["string", "integer"], "enum": ["a", 1]},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "default": "celsius"},
            "level": {"type": "integer", "enum": [1, 2], "default": 1},
        },
        ["mode", "mixed"],
    )
    assert f.spec.description == ""


def test_collections() -> None:
    @tool
    def f(
        names: list[str],
        seq: Sequence[int],
        pair: tuple[float, ...],
        tags: set[str],
        frozen: frozenset[int],
        counts: dict[str, int],
        by_name: Mapping[str, list[bool]],
    ) -> None:
        pass

    assert f.spec.parameters == _params(
        {
            "names": {"type": "array", "items": {"type": "string"}},
            "seq": {"type": "array", "items": {"type": "integer"}},
            "pair": {"type": "array", "items": {"type": "number"}},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
            "frozen": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_name": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "boolean"}},
            },
        },
        ["names", "seq", "pair", "tags", "frozen", "counts", "by_name"],
    )


def test_optional_is_nullable_and_not_required() -> None:
    @tool
    def f(
        a: str | None,
        b: Optional[int],  # noqa: UP045 - the typing spelling is supported too
        c: Literal["x", "y"] | None = None,
        d: list[str] | None = None,
    ) -> None:
        pass

    assert f.spec.parameters == _params(
        {
            "a": {"type": ["string", "null"]},
            "b": {"type": ["integer", "null"]},
            "c": {"type": ["string", "null"], "enum": ["x", "y", None], "default": None},
            "d": {"type": ["array", "null"], "items": {"type": "string"}, "default": None},
        },
        [],
    )


_POINT_SCHEMA = _params(
    {
        "x": {"type": "number"},
        "y": {"type": "number", "description": "Vertical position", "default": 0.0},
        "label": {"type": ["string", "null"], "default": None},
    },
    ["x"],
)


def test_typeddict_and_dataclasses_nest() -> None:
    @tool
    def f(filters: Filters, route: Route, origin: Point = Point(1.0, 2.0)) -> None:
        pass

    assert f.spec.parameters == _params(
        {
            "filters": _params(
                {"query": {"type": "string"}, "limit": {"type": "integer"}}, ["query"]
            ),
            "route": _params(
                {
                    "name": {"type": "string"},
                    "stops": {"type": "array", "items": _POINT_SCHEMA},
                    "note": {"type": ["string", "null"]},
                },
                ["name", "stops"],
            ),
            "origin": {**_POINT_SCHEMA, "default": {"x": 1.0, "y": 2.0, "label": None}},
        },
        ["filters", "route"],
    )


def test_descriptions_from_docstring_and_annotated() -> None:
    @tool
    def get_weather(
        city: str,
        days: Annotated[int, "How many days to forecast"] = 1,
        unit: Annotated[Unit, "Temperature unit"] = Unit.CELSIUS,
    ) -> str:
        """Get the weather forecast
        for a city.

        Uses the cached forecast when fresh.

        Args:
            city (str): The city name, e.g.
                "Paris".
            days: Ignored: Annotated wins.

        Returns:
            The forecast.
        """
        return ""

    assert get_weather.spec.description == "Get the weather forecast for a city."
    assert get_weather.spec.parameters == _params(
        {
            "city": {"type": "string", "description": 'The city name, e.g. "Paris".'},
            "days": {"type": "integer", "description": "How many days to forecast", "default": 1},
            "unit": {
                "type": "string",
                "enum": ["celsius", "fahrenheit"],
                "description": "Temperature unit",
                "default": "celsius",
            },
        },
        ["city"],
    )


def test_explicit_name_description_parameters_and_timeout() -> None:
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}

    @tool(name="search_docs", description="Search.", parameters=schema, timeout=None)
    async def anything(**kwargs: Any) -> str:
        """Not used."""
        return ""

    assert anything.spec == ToolSpec(name="search_docs", description="Search.", parameters=schema)
    assert anything.spec.parameters is not schema  # copied
    assert anything.timeout is None
    assert anything.is_async is True


def test_no_parameters() -> None:
    @tool
    def now() -> str:
        return "noon"

    assert now.spec.parameters == _params({}, [])
    assert now() == "noon"  # a Tool still calls its function


@pytest.mark.parametrize(
    ("annotation", "fragment"),
    [
        ("bytes", "parameter 'p': unsupported annotation bytes"),
        ("Any", "parameter 'p': unsupported annotation Any"),
        ("int | str", "parameter 'p': unsupported union"),
        ("tuple[int, int]", "parameter 'p': unsupported tuple"),
        ("tuple", "parameter 'p': give the item type"),
        ("list", "parameter 'p': give the item type, e.g. list[str]"),
        ("dict[int, str]", "parameter 'p': unsupported mapping"),
        ("list[bytes]", "parameter 'p' (at []): unsupported annotation bytes"),
        ("Node", "parameter 'p' (at children[]): recursive type Node"),
        ("Undefined", "parameter 'p' cannot be resolved"),
    ],
)
def test_unsupported_annotations_name_the_parameter(annotation: str, fragment: str) -> None:
    namespace: dict[str, Any] = {}
    source = f"def f(ok: int, p: {annotation}) -> None: pass"
    exec(source, {**globals(), "__name__": __name__}, namespace)
    with pytest.raises(ConfigError) as info:
        tool(namespace["f"])
    if "cannot be resolved" in fragment:
        assert "cannot resolve type hints" in str(info.value)
    else:
        assert fragment in str(info.value)
    assert "'f'" in str(info.value)


def test_nested_unsupported_field_is_located() -> None:
    with pytest.raises(ConfigError, match=r"parameter 'p' \(at \[\]\.when\): unsupported"):
        tool(_uses_bad_dataclass)


@dataclasses.dataclass
class _Bad:
    when: bytes


def _uses_bad_dataclass(p: list[_Bad]) -> None:
    pass


def test_signature_errors() -> None:
    def unannotated(a):  # type: ignore[no-untyped-def]
        pass

    def star(*args: int) -> None:
        pass

    def kw(**kwargs: int) -> None:
        pass

    def positional(a: int, /) -> None:
        pass

    def positional_ok(a: int) -> None:
        pass

    with pytest.raises(ConfigError, match="parameter 'a': missing type annotation"):
        tool(unannotated)
    with pytest.raises(ConfigError, match=r"parameter 'args': \*args and \*\*kwargs"):
        tool(star)
    with pytest.raises(ConfigError, match=r"parameter 'kwargs': \*args and \*\*kwargs"):
        tool(kw)
    with pytest.raises(ConfigError, match="positional-only"):
        tool(positional)
    with pytest.raises(ConfigError, match="timeout must be positive"):
        tool(timeout=0)(positional_ok)
    with pytest.raises(ConfigError, match="tool name must match"):
        tool(name="bad name")(positional_ok)
    with pytest.raises(ConfigError, match="tool name must match"):
        tool(lambda: None)


def _all_kinds(
    s: str,
    unit: Unit,
    level: Level,
    mode: Literal["a", "b"],
    names: list[str],
    pair: tuple[int, ...],
    tags: set[str],
    counts: dict[str, float],
    filters: Filters,
    route: Route,
    maybe: Annotated[bool | None, "Flag"] = None,
    origin: Point = Point(0.0),
) -> None:
    """Every supported kind of annotation.

    Args:
        s: A string.
    """


def test_schemas_are_accepted_by_the_openai_models() -> None:
    """A schema using every kind validates as a GA function tool and inside session.update."""
    spec = tool(_all_kinds).spec
    wire = {
        "type": "function",
        "name": spec.name,
        "description": spec.description,
        "parameters": spec.parameters,
    }
    assert json.loads(json.dumps(wire)) == wire  # plain JSON all the way down
    model = RealtimeFunctionTool.model_validate(wire)
    assert model.parameters == spec.parameters
    assert model.name == "_all_kinds"
    event = {"type": "session.update", "session": {"type": "realtime", "tools": [wire]}}
    TypeAdapter(RealtimeClientEvent).validate_python(event)


# --------------------------------------------------------------------------- registry


def test_registry_basics() -> None:
    def ping() -> str:
        return "pong"

    @tool(name="echo")
    def echo_fn(text: str) -> str:
        return text

    registry = ToolRegistry([ping])
    added = registry.add(echo_fn)
    assert added is echo_fn
    assert len(registry) == 2
    assert "ping" in registry
    assert "echo" in registry
    assert "nope" not in registry
    assert [s.name for s in registry.specs()] == ["ping", "echo"]
    ping_tool = registry.get("ping")
    assert isinstance(ping_tool, Tool)
    assert ping_tool.function is ping
    assert registry.get("nope") is None
    with pytest.raises(ConfigError, match="already registered"):
        registry.add(ping)
    assert registry.remove("ping") is ping_tool
    assert len(registry) == 1
    with pytest.raises(KeyError):
        registry.remove("ping")
    registry.add(ping)
    assert [t.spec.name for t in registry] == ["echo", "ping"]


# --------------------------------------------------------------------------- execution


def _registry(*items: Any) -> ToolRegistry:
    return ToolRegistry(items)


async def test_sync_tool_runs_in_a_worker_thread() -> None:
    loop_thread = threading.get_ident()

    def where(tag: str) -> dict[str, Any]:
        return {"tag": tag, "thread": threading.get_ident()}

    result = await _registry(where).execute(_call("where", {"tag": "t"}))
    assert result.error is None
    assert result.ok
    payload = json.loads(result.output)
    assert payload["tag"] == "t"
    assert payload["thread"] != loop_thread
    assert result.call_id == "c1"
    assert result.name == "where"
    assert result.duration >= 0


async def test_sync_tool_does_not_block_the_loop() -> None:
    """The loop releases a blocking tool while it runs: impossible if it ran inline."""
    started = threading.Event()
    release = threading.Event()

    def blocking() -> str:
        started.set()
        return "released" if release.wait(2) else "starved"

    task = asyncio.create_task(_registry(blocking).execute(_call("blocking", {})))
    assert await asyncio.to_thread(started.wait, 2)
    release.set()
    result = await task
    assert result.output == "released"


async def test_async_tool_runs_on_the_loop() -> None:
    loop_thread = threading.get_ident()

    async def where() -> int:
        await asyncio.sleep(0)
        return threading.get_ident()

    result = await _registry(where).execute(_call("where", ""))  # "" counts as {}
    assert result == ToolResult(
        call_id="c1", name="where", output=str(loop_thread), error=None, duration=result.duration
    )


async def test_async_callable_instance() -> None:
    class Lookup:
        async def __call__(self, key: str) -> str:
            return key.upper()

    item = tool(Lookup(), name="lookup")
    assert item.is_async
    result = await _registry(item).execute(_call("lookup", {"key": "ab"}))
    assert result.output == "AB"


async def test_timeouts() -> None:
    release = threading.Event()

    @tool(timeout=0.05)
    async def hangs() -> None:
        await asyncio.sleep(10)

    @tool(timeout=0.05)
    def blocks() -> None:
        release.wait(5)

    registry = _registry(hangs, blocks)
    started = time.perf_counter()
    try:
        results = await registry.execute_all([_call("hangs", {}), _call("blocks", {})])
    finally:
        release.set()  # let the abandoned worker thread finish
    assert time.perf_counter() - started < 1.0
    for result, name in zip(results, ["hangs", "blocks"], strict=True):
        assert result.error == f"tool {name!r} timed out after 0.05 s"
        assert json.loads(result.output) == {"error": result.error}


async def test_exceptions_become_error_results() -> None:
    def fails(city: str) -> str:
        raise LookupError(f"no weather for {city}")

    async def fails_async() -> str:
        raise TimeoutError  # the tool's own TimeoutError is not our timeout

    registry = _registry(fails, fails_async)
    result = await registry.execute(_call("fails", {"city": "Atlantis"}))
    assert result.error == "LookupError: no weather for Atlantis"
    assert json.loads(result.output) == {"error": "LookupError: no weather for Atlantis"}
    assert not result.ok
    result = await registry.execute(_call("fails_async", {}))
    assert result.error == "TimeoutError"


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ("{not json", "arguments are not valid JSON: "),
        ("[1, 2]", "arguments must be a JSON object, got array"),
        ({}, "invalid arguments for 'book': missing required argument 'city'"),
        (
            {"city": "Oslo", "nights": 2, "pets": True},
            "invalid arguments for 'book': unexpected argument 'pets' (allowed: city, nights, unit, stops)",
        ),
        (
            {"city": 7},
            "invalid arguments for 'book': argument 'city': expected string, got integer",
        ),
        (
            {"city": "Oslo", "nights": True},
            "invalid arguments for 'book': argument 'nights': expected integer, got boolean",
        ),
        (
            {"city": "Oslo", "nights": 1.5},
            "invalid arguments for 'book': argument 'nights': expected integer, got number",
        ),
        (
            {"city": "Oslo", "unit": "kelvin"},
            'invalid arguments for \'book\': argument \'unit\': expected one of "celsius", "fahrenheit", got "kelvin"',
        ),
        (
            {"city": "Oslo", "stops": [{"x": 1}, {"x": "2", "z": 0}]},
            "invalid arguments for 'book': argument 'stops[1].x': expected number, got string; "
            "unexpected argument 'stops[1].z' (allowed: x, y, label)",
        ),
        (
            {"city": None},
            "invalid arguments for 'book': argument 'city': expected string, got null",
        ),
    ],
)
async def test_invalid_arguments_become_error_results(arguments: Any, error: str) -> None:
    called = False

    def book(city: str, nights: int = 1, unit: Unit = Unit.CELSIUS, stops: list[Point] = []) -> str:  # noqa: B006
        nonlocal called
        called = True
        return "booked"

    result = await _registry(book).execute(_call("book", arguments))
    assert result.error is not None
    assert result.error.startswith(error)
    assert json.loads(result.output) == {"error": result.error}
    assert not called


async def test_unknown_tool() -> None:
    def a() -> None: ...

    result = await _registry(a).execute(_call("b", {}))
    assert result.error == "unknown tool 'b' (available: a)"
    assert json.loads(result.output) == {"error": result.error}


async def test_arguments_are_converted_to_annotated_types() -> None:
    seen: dict[str, Any] = {}

    def convert(
        unit: Unit,
        level: Level,
        x: float,
        n: int,
        pair: tuple[int, ...],
        tags: set[str],
        filters: Filters,
        route: Route,
        counts: dict[str, Point],
        maybe: str | None,
        default: int = 5,
    ) -> str:
        seen.update({k: v for k, v in locals().items() if k != "seen"})
        return "ok"

    arguments = {
        "unit": "fahrenheit",
        "level": 2,
        "x": 3,
        "n": 4.0,
        "pair": [1, 2],
        "tags": ["a", "b", "a"],
        "filters": {"query": "q"},
        "route": {"name": "r", "stops": [{"x": 1, "y": 2}], "note": None},
        "counts": {"home": {"x": 0}},
    }
    result = await _registry(convert).execute(_call("convert", arguments))
    assert result.error is None
    assert seen == {
        "unit": Unit.FAHRENHEIT,
        "level": Level.HIGH,
        "x": 3.0,
        "n": 4,
        "pair": (1, 2),
        "tags": {"a", "b"},
        "filters": {"query": "q"},
        "route": Route(name="r", stops=[Point(1.0, 2.0)], note=None),
        "counts": {"home": Point(0.0)},
        "maybe": None,  # omitted nullable parameter without default: None
        "default": 5,
    }
    assert type(seen["x"]) is float
    assert type(seen["n"]) is int


async def test_explicit_parameters_pass_json_as_is() -> None:
    schema = {"type": "object", "properties": {"unit": {"type": "string"}}, "required": ["unit"]}

    @tool(parameters=schema)
    def raw(**kwargs: Any) -> dict[str, Any]:
        return kwargs

    registry = _registry(raw)
    result = await registry.execute(_call("raw", {"unit": "celsius", "extra": [1]}))
    assert json.loads(result.output) == {"unit": "celsius", "extra": [1]}  # extras allowed
    result = await registry.execute(_call("raw", {"unit": 1}))
    assert (
        result.error == "invalid arguments for 'raw': argument 'unit': expected string, got integer"
    )


@dataclasses.dataclass
class _Reply:
    unit: Unit
    tags: frozenset[str]


class _Opaque:
    def __str__(self) -> str:
        return "<opaque>"


@pytest.mark.parametrize(
    ("value", "output"),
    [
        ("plain text", "plain text"),
        ({"temp": 21.5, "ok": True}, '{"temp": 21.5, "ok": true}'),
        ([1, "é"], '[1, "é"]'),
        (None, "null"),
        (7, "7"),
        (Unit.CELSIUS, '"celsius"'),
        (_Reply(Unit.FAHRENHEIT, frozenset({"b"})), '{"unit": "fahrenheit", "tags": ["b"]}'),
        ({"thing": _Opaque()}, '{"thing": "<opaque>"}'),
        (_Opaque(), '"<opaque>"'),
        ({1: "a", (2, 3): "b"}, "{1: 'a', (2, 3): 'b'}"),  # no JSON form: str()
        (float("nan"), "nan"),
    ],
)
async def test_return_values_are_serialised(value: object, output: str) -> None:
    def give() -> object:
        return value

    result = await _registry(give).execute(_call("give", {}))
    assert result.error is None
    assert result.output == output


async def test_execute_all_is_concurrent_and_ordered() -> None:
    async def wait(seconds: float, tag: str) -> str:
        await asyncio.sleep(seconds)
        return tag

    def wait_sync(seconds: float, tag: str) -> str:
        time.sleep(seconds)
        return tag

    registry = _registry(wait, wait_sync)
    calls = [
        _call("wait", {"seconds": 0.15, "tag": "first"}, call_id="a"),
        _call("wait_sync", {"seconds": 0.1, "tag": "second"}, call_id="b"),
        _call("missing", {}, call_id="c"),
        _call("wait", {"seconds": 0.0, "tag": "fourth"}, call_id="d"),
    ]
    started = time.perf_counter()
    results = await registry.execute_all(calls)
    assert time.perf_counter() - started < 0.24  # sequential would take >= 0.25 s
    assert [r.call_id for r in results] == ["a", "b", "c", "d"]
    assert [r.output for r in results[:2] + results[3:]] == ["first", "second", "fourth"]
    assert results[2].error is not None
    assert await registry.execute_all([]) == []


async def test_cancelling_the_caller_propagates() -> None:
    async def hang() -> None:
        await asyncio.sleep(10)

    task = asyncio.create_task(_registry(hang).execute(_call("hang", {})))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_logs_names_and_durations_only(caplog: pytest.LogCaptureFixture) -> None:
    def login(password: str) -> str:
        raise PermissionError(f"bad password {password}")

    caplog.set_level(logging.DEBUG, logger="voxengine.tools")
    await _registry(login).execute(_call("login", {"password": "hunter2"}))
    assert "login" in caplog.text
    assert "hunter2" not in caplog.text


def test_an_invalid_json_schema_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="invalid JSON Schema"):
        tool(lambda city: city, name="f", parameters={"type": "object", "required": "city"})
