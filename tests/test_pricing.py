"""Usage bookkeeping and cost estimates (protocol notes §8.3 and §11)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from voxengine.errors import ConfigError
from voxengine.events import Usage
from voxengine.pricing import (
    DEFAULT_PRICES,
    Cost,
    ModelPrice,
    PriceTable,
    UsageTracker,
    estimate_cost,
)

GPT_REALTIME = ModelPrice(
    text_input=4.00,
    text_cached_input=0.40,
    text_output=16.00,
    audio_input=32.00,
    audio_cached_input=0.40,
    audio_output=64.00,
    image_input=5.00,
)
GPT_REALTIME_2 = dataclasses.replace(GPT_REALTIME, text_output=24.00)
GPT_REALTIME_MINI = ModelPrice(
    text_input=0.60,
    text_cached_input=0.06,
    text_output=2.40,
    audio_input=10.00,
    audio_cached_input=0.30,
    audio_output=20.00,
    image_input=0.80,
)
GPT_4O_PREVIEW = ModelPrice(
    text_input=5.00,
    text_cached_input=2.50,
    text_output=20.00,
    audio_input=40.00,
    audio_cached_input=2.50,
    audio_output=80.00,
)
GPT_4O_MINI_PREVIEW = ModelPrice(
    text_input=0.60,
    text_cached_input=0.30,
    text_output=2.40,
    audio_input=10.00,
    audio_cached_input=0.30,
    audio_output=20.00,
)

# The usage object of §8.3 (its cached tokens are all audio: text 0, audio 64).
EXAMPLE = Usage(
    total_tokens=320,
    input_tokens=132,
    output_tokens=188,
    input_text_tokens=59,
    input_audio_tokens=73,
    input_cached_tokens=64,
    output_text_tokens=41,
    output_audio_tokens=147,
)


def _approx(cost: Cost) -> dict[str, object]:
    return {f.name: pytest.approx(getattr(cost, f.name)) for f in dataclasses.fields(cost)}


def _fields(cost: Cost) -> dict[str, float]:
    return {f.name: getattr(cost, f.name) for f in dataclasses.fields(cost)}


def test_default_prices_are_the_published_table() -> None:
    assert DEFAULT_PRICES.as_of == date(2026, 11, 1)
    assert dict(DEFAULT_PRICES) == {
        "gpt-realtime": GPT_REALTIME,
        "gpt-realtime-1.5": GPT_REALTIME,
        "gpt-realtime-2": GPT_REALTIME_2,
        "gpt-realtime-2.1": GPT_REALTIME_2,
        "gpt-realtime-mini": GPT_REALTIME_MINI,
        "gpt-realtime-2.1-mini": GPT_REALTIME_MINI,
        "gpt-4o-realtime-preview-2024-12-17": GPT_4O_PREVIEW,
        "gpt-4o-mini-realtime-preview": GPT_4O_MINI_PREVIEW,
    }


def test_section_8_3_example_with_exact_cached_split() -> None:
    # text:  59 in x $4 + 0 cached + 41 out x $16          = 236 + 656 micro-dollars
    # audio: (73-64) in x $32 + 64 cached x $0.40 + 147 x $64 = 288 + 25.6 + 9408
    cost = estimate_cost(EXAMPLE, GPT_REALTIME, cached_text_tokens=0, cached_audio_tokens=64)
    assert _fields(cost) == _approx(
        Cost(
            text_input=0.000236,
            text_cached_input=0.0,
            text_output=0.000656,
            audio_input=0.000288,
            audio_cached_input=0.0000256,
            audio_output=0.009408,
            total=0.0106136,
        )
    )
    # Giving one modality is enough: the other is the remainder of input_cached_tokens.
    assert estimate_cost(EXAMPLE, GPT_REALTIME, cached_audio_tokens=64) == cost


def test_reported_split_from_the_wire_is_used() -> None:
    reported = dataclasses.replace(
        EXAMPLE, input_cached_text_tokens=0, input_cached_audio_tokens=64
    )
    exact = estimate_cost(EXAMPLE, GPT_REALTIME, cached_text_tokens=0, cached_audio_tokens=64)
    assert estimate_cost(reported, GPT_REALTIME) == exact
    assert exact.total == pytest.approx(0.0106136)


def test_section_8_3_example_assumes_text_first_without_a_split() -> None:
    # 64 cached: 59 text (all of them), then 5 audio.
    # text:  0 in + 59 x $0.40 + 41 x $16         = 23.6 + 656 micro-dollars
    # audio: 68 x $32 + 5 x $0.40 + 147 x $64      = 2176 + 2 + 9408
    cost = estimate_cost(EXAMPLE, GPT_REALTIME)
    assert _fields(cost) == _approx(
        Cost(
            text_input=0.0,
            text_cached_input=0.0000236,
            text_output=0.000656,
            audio_input=0.002176,
            audio_cached_input=0.000002,
            audio_output=0.009408,
            total=0.0122656,
        )
    )
    assert estimate_cost(EXAMPLE, GPT_REALTIME, cached_text_tokens=59) == cost


def test_mini_without_cache() -> None:
    usage = Usage(
        input_text_tokens=1000,
        input_audio_tokens=2000,
        output_text_tokens=100,
        output_audio_tokens=500,
    )
    # 1000 x 0.60 + 2000 x 10 + 100 x 2.40 + 500 x 20 = 600 + 20000 + 240 + 10000 micro-dollars
    cost = estimate_cost(usage, GPT_REALTIME_MINI)
    assert cost.total == pytest.approx(0.03084)
    assert cost.text_cached_input == 0.0
    assert cost.audio_cached_input == 0.0
    assert estimate_cost(Usage(), GPT_REALTIME_MINI) == Cost()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cached_text_tokens": 60, "cached_audio_tokens": 4}, "cached text tokens"),
        ({"cached_text_tokens": 0, "cached_audio_tokens": 74}, "cached audio tokens"),
        ({"cached_text_tokens": -1}, "must not be negative"),
    ],
)
def test_impossible_cached_split_is_rejected(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate_cost(EXAMPLE, GPT_REALTIME, **kwargs)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-realtime", GPT_REALTIME),
        ("gpt-realtime-2025-08-28", GPT_REALTIME),  # not gpt-realtime-2 (a string prefix)
        ("GPT-Realtime-2025-08-28", GPT_REALTIME),
        ("gpt-realtime-1.5", GPT_REALTIME),
        ("gpt-realtime-2", GPT_REALTIME_2),
        ("gpt-realtime-2-2026-03-01", GPT_REALTIME_2),
        ("gpt-realtime-mini-2025-10-06", GPT_REALTIME_MINI),
        ("gpt-realtime-2.1-mini-2026-06-01", GPT_REALTIME_MINI),
        ("gpt-4o-mini-realtime-preview-2024-12-17", GPT_4O_MINI_PREVIEW),
        ("gpt-4o-realtime-preview-2024-12-17", GPT_4O_PREVIEW),
        # Unknown: not priced rather than priced as a different model.
        ("gpt-realtime-3", None),
        ("gpt-realtime-latest", None),
        ("gpt-realtime-2025-08", None),
        ("gpt-4o-realtime-preview", None),  # §11 prices only the 2024-12-17 snapshot
        ("gemini-live-2.5-flash", None),
        ("", None),
    ],
)
def test_lookup_resolves_snapshots(model: str, expected: ModelPrice | None) -> None:
    assert DEFAULT_PRICES.lookup(model) == expected


def test_lookup_prefers_the_longest_family() -> None:
    cheap = dataclasses.replace(GPT_REALTIME_MINI)
    table = PriceTable({"m": GPT_REALTIME, "m-small": cheap}, as_of=date(2026, 1, 1))
    assert table.lookup("m-small-2026-01-02") is cheap
    assert table.lookup("m-2026-01-02") is GPT_REALTIME
    assert table.lookup("m-tiny-2026-01-02") is None


def test_price_table_is_an_immutable_mapping() -> None:
    assert len(DEFAULT_PRICES) == 8
    assert DEFAULT_PRICES["gpt-realtime"] == GPT_REALTIME
    assert "gpt-realtime" in DEFAULT_PRICES
    with pytest.raises(KeyError):
        DEFAULT_PRICES["gpt-realtime-2025-08-28"]  # indexing is exact; lookup() resolves
    with pytest.raises(TypeError):
        DEFAULT_PRICES["x"] = GPT_REALTIME  # type: ignore[index]
    with pytest.raises(AttributeError):
        DEFAULT_PRICES.as_of = date(2030, 1, 1)  # type: ignore[misc]
    with pytest.raises(AttributeError):
        DEFAULT_PRICES._prices = {}  # type: ignore[misc]
    with pytest.raises(ConfigError):
        PriceTable({"x": "cheap"}, as_of=date(2026, 1, 1))  # type: ignore[dict-item]
    with pytest.raises(ConfigError):
        PriceTable({" ": GPT_REALTIME}, as_of=date(2026, 1, 1))


def test_with_overrides() -> None:
    negotiated = dataclasses.replace(GPT_REALTIME, audio_output=50.0)
    custom = ModelPrice(
        text_input=1,
        text_cached_input=0,
        text_output=2,
        audio_input=3,
        audio_cached_input=0,
        audio_output=4,
    )
    table = DEFAULT_PRICES.with_overrides({"gpt-realtime": negotiated, "My-Model": custom})
    assert table.lookup("gpt-realtime-2025-08-28") == negotiated
    assert table.lookup("my-model-2026-01-01") == custom
    assert table.lookup("gpt-realtime-mini") == GPT_REALTIME_MINI  # the rest is kept
    assert table.as_of == DEFAULT_PRICES.as_of
    assert DEFAULT_PRICES.lookup("gpt-realtime") == GPT_REALTIME  # original untouched
    assert len(table) == len(DEFAULT_PRICES) + 1
    dated = DEFAULT_PRICES.with_overrides({}, as_of=date(2027, 1, 1))
    assert dated.as_of == date(2027, 1, 1)
    assert dated != DEFAULT_PRICES
    assert DEFAULT_PRICES.with_overrides({}) == DEFAULT_PRICES


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf")])
def test_model_price_rejects_bad_prices(bad: float) -> None:
    with pytest.raises(ConfigError, match="audio_output"):
        dataclasses.replace(GPT_REALTIME, audio_output=bad)
    with pytest.raises(ConfigError, match="image_input"):
        dataclasses.replace(GPT_REALTIME, image_input=bad)


def test_usage_tracker_totals_and_cost() -> None:
    tracker = UsageTracker()
    assert tracker.total == Usage()
    assert tracker.responses == 0
    assert tracker.cost(DEFAULT_PRICES, "gpt-realtime") == Cost()

    second = Usage(
        input_tokens=300,
        output_tokens=20,
        total_tokens=320,
        input_text_tokens=100,
        input_audio_tokens=200,
        input_cached_tokens=0,
        output_text_tokens=20,
    )
    tracker.add_response(EXAMPLE, cached_text_tokens=0, cached_audio_tokens=64)
    tracker.add_response(second)
    tracker.add_audio_in(1.5)
    tracker.add_audio_in(0.25)
    tracker.add_audio_out(2)

    assert tracker.responses == 2
    assert tracker.per_response == (EXAMPLE, second)
    assert tracker.total == Usage(
        input_tokens=432,
        output_tokens=208,
        total_tokens=640,
        input_text_tokens=159,
        input_audio_tokens=273,
        input_cached_tokens=64,
        output_text_tokens=61,
        output_audio_tokens=147,
    )
    assert tracker.audio_seconds_in == 1.75
    assert tracker.audio_seconds_out == 2.0

    # §8.3 example (0.0106136) + 100 x $4 + 200 x $32 + 20 x $16 = 400 + 6400 + 320 micro-dollars
    cost = tracker.cost(DEFAULT_PRICES, "gpt-realtime-2025-08-28")
    assert cost is not None
    assert cost.total == pytest.approx(0.0106136 + 0.00712)
    assert cost.audio_cached_input == pytest.approx(0.0000256)
    assert cost.text_input == pytest.approx(0.000236 + 0.0004)
    assert tracker.cost(DEFAULT_PRICES, "unknown-model") is None


def test_usage_tracker_rejects_bad_input() -> None:
    tracker = UsageTracker()
    with pytest.raises(ValueError, match="seconds"):
        tracker.add_audio_in(-1)
    with pytest.raises(ValueError, match="seconds"):
        tracker.add_audio_out(float("nan"))
    with pytest.raises(ValueError, match="cached audio tokens"):
        tracker.add_response(EXAMPLE, cached_audio_tokens=100)
    assert tracker.responses == 0
    assert tracker.audio_seconds_in == 0.0


def test_costs_add_up() -> None:
    a = Cost(text_input=1.0, audio_output=2.0, total=3.0)
    b = Cost(text_output=0.5, total=0.5)
    assert a + b == Cost(text_input=1.0, text_output=0.5, audio_output=2.0, total=3.5)
