"""Token usage bookkeeping and cost estimates from published prices.

Prices are USD per 1M tokens. :data:`DEFAULT_PRICES` holds the OpenAI Realtime table
of §11 of the shared protocol notes (as of 2026-11); costs follow §8.3:

    cost = sum over modality of (uncached input * input price
                                 + cached input * cached input price
                                 + output * output price)

where cached tokens are a subset of the input tokens. Estimates only: the provider's
invoice is authoritative, prices change, and input transcription, image tokens and
Azure deployments are billed differently (not covered here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from datetime import date
from types import MappingProxyType
from typing import Any, final

from voxengine.errors import ConfigError
from voxengine.events import Usage

__all__ = [
    "DEFAULT_PRICES",
    "Cost",
    "ModelPrice",
    "PriceTable",
    "UsageTracker",
    "estimate_cost",
]

_PER_TOKEN = 1_000_000


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPrice:
    """Prices of one model in USD per 1M tokens.

    ``image_input`` is ``None`` when the model takes no image input.

    Raises:
        ConfigError: a price is negative or not finite.
    """

    text_input: float
    text_cached_input: float
    text_output: float
    audio_input: float
    audio_cached_input: float
    audio_output: float
    image_input: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.name == "image_input":
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigError(f"{f.name} must be a finite, non-negative price, got {value!r}")


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class Cost:
    """An estimated cost in USD, per modality and direction; ``total`` is their sum."""

    text_input: float = 0.0
    text_cached_input: float = 0.0
    text_output: float = 0.0
    audio_input: float = 0.0
    audio_cached_input: float = 0.0
    audio_output: float = 0.0
    total: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        """The sum of two costs, field by field."""
        return Cost(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(Cost)}
        )


# A dated snapshot of a model family, e.g. "-2025-08-28" in "gpt-realtime-2025-08-28".
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}")


@final
class PriceTable(Mapping[str, ModelPrice]):
    """An immutable mapping of model name to :class:`ModelPrice`, dated ``as_of``.

    Indexing (``table[name]``) is exact; :meth:`lookup` also resolves dated snapshots.
    Model names are case-insensitive (stored lower-case).

    Raises:
        ConfigError: (constructor) a value is not a :class:`ModelPrice` or a name is empty.
    """

    __slots__ = ("_as_of", "_prices")

    _prices: Mapping[str, ModelPrice]
    _as_of: date

    def __init__(self, prices: Mapping[str, ModelPrice], *, as_of: date) -> None:
        table: dict[str, ModelPrice] = {}
        for name, price in prices.items():
            if not isinstance(name, str) or not name.strip():
                raise ConfigError(f"model names must be non-empty strings, got {name!r}")
            if not isinstance(price, ModelPrice):
                raise ConfigError(f"price of {name!r} must be a ModelPrice, got {price!r}")
            table[name.strip().lower()] = price
        object.__setattr__(self, "_prices", MappingProxyType(table))
        object.__setattr__(self, "_as_of", as_of)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    @property
    def as_of(self) -> date:
        """When the prices were taken from the provider's price list."""
        return self._as_of

    def __getitem__(self, model: str) -> ModelPrice:
        return self._prices[model.strip().lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PriceTable):
            return NotImplemented
        return self._as_of == other._as_of and dict(self._prices) == dict(other._prices)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PriceTable({dict(self._prices)!r}, as_of={self._as_of!r})"

    def lookup(self, model: str) -> ModelPrice | None:
        """The price of ``model``, resolving dated snapshots to their family.

        An exact name wins. Otherwise the longest table name ``family`` such that
        ``model`` is ``family`` followed by a ``-YYYY-MM-DD`` snapshot date (and
        nothing else) is used, so ``gpt-realtime-2025-08-28`` resolves to
        ``gpt-realtime`` and ``gpt-realtime-mini-2025-10-06`` to ``gpt-realtime-mini``.
        Other suffixes are not matched: ``gpt-realtime-3`` is a different model,
        not ``gpt-realtime``, and gets ``None`` rather than a wrong price.

        Returns:
            The price, or ``None`` for an unknown model.
        """
        name = model.strip().lower()
        exact = self._prices.get(name)
        if exact is not None:
            return exact
        best: str | None = None
        for family in self._prices:
            if (
                name.startswith(family)
                and _SNAPSHOT.fullmatch(name, len(family))
                and (best is None or len(family) > len(best))
            ):
                best = family
        return None if best is None else self._prices[best]

    def with_overrides(
        self, overrides: Mapping[str, ModelPrice], *, as_of: date | None = None
    ) -> PriceTable:
        """A new table with ``overrides`` added or replacing entries of the same name.

        Args:
            overrides: model name to price (e.g. a negotiated rate or a new model).
            as_of: date of the new table; defaults to this table's date.

        Raises:
            ConfigError: as the constructor.
        """
        return PriceTable(
            {**self._prices, **{k.strip().lower(): v for k, v in overrides.items()}},
            as_of=self._as_of if as_of is None else as_of,
        )


def _family(*names: str, price: ModelPrice) -> dict[str, ModelPrice]:
    return dict.fromkeys(names, price)


#: OpenAI Realtime prices from §11 of the protocol notes, USD per 1M tokens (2026-11).
DEFAULT_PRICES = PriceTable(
    {
        **_family(
            "gpt-realtime",
            "gpt-realtime-1.5",
            price=ModelPrice(
                text_input=4.00,
                text_cached_input=0.40,
                text_output=16.00,
                audio_input=32.00,
                audio_cached_input=0.40,
                audio_output=64.00,
                image_input=5.00,
            ),
        ),
        **_family(
            "gpt-realtime-2",
            "gpt-realtime-2.1",
            price=ModelPrice(
                text_input=4.00,
                text_cached_input=0.40,
                text_output=24.00,
                audio_input=32.00,
                audio_cached_input=0.40,
                audio_output=64.00,
                image_input=5.00,
            ),
        ),
        **_family(
            "gpt-realtime-mini",
            "gpt-realtime-2.1-mini",
            price=ModelPrice(
                text_input=0.60,
                text_cached_input=0.06,
                text_output=2.40,
                audio_input=10.00,
                audio_cached_input=0.30,
                audio_output=20.00,
                image_input=0.80,
            ),
        ),
        # The notes price this snapshot only (the model is shut down).
        "gpt-4o-realtime-preview-2024-12-17": ModelPrice(
            text_input=5.00,
            text_cached_input=2.50,
            text_output=20.00,
            audio_input=40.00,
            audio_cached_input=2.50,
            audio_output=80.00,
        ),
        "gpt-4o-mini-realtime-preview": ModelPrice(
            text_input=0.60,
            text_cached_input=0.30,
            text_output=2.40,
            audio_input=10.00,
            audio_cached_input=0.30,
            audio_output=20.00,
        ),
    },
    as_of=date(2026, 11, 1),
)


def _split_cached(
    usage: Usage, cached_text_tokens: int | None, cached_audio_tokens: int | None
) -> tuple[int, int]:
    """Cached input tokens per modality (text, audio); see :func:`estimate_cost`."""
    for label, value in (
        ("cached_text_tokens", cached_text_tokens),
        ("cached_audio_tokens", cached_audio_tokens),
    ):
        if value is not None and value < 0:
            raise ValueError(f"{label} must not be negative, got {value}")
    total = max(usage.input_cached_tokens, 0)
    reported = usage.input_cached_text_tokens + usage.input_cached_audio_tokens
    if cached_text_tokens is None and cached_audio_tokens is None and reported == total > 0:
        # the provider reported the split (OpenAI's cached_tokens_details)
        cached_text_tokens = usage.input_cached_text_tokens
        cached_audio_tokens = usage.input_cached_audio_tokens
    if cached_text_tokens is not None and cached_audio_tokens is not None:
        text, audio = cached_text_tokens, cached_audio_tokens
    elif cached_text_tokens is not None:
        text = cached_text_tokens
        audio = min(max(total - text, 0), usage.input_audio_tokens)
    elif cached_audio_tokens is not None:
        audio = cached_audio_tokens
        text = min(max(total - audio, 0), usage.input_text_tokens)
    else:  # the documented assumption: text first
        text = min(total, usage.input_text_tokens)
        audio = min(total - text, usage.input_audio_tokens)
    if text > usage.input_text_tokens:
        raise ValueError(
            f"cached text tokens ({text}) exceed input text tokens ({usage.input_text_tokens})"
        )
    if audio > usage.input_audio_tokens:
        raise ValueError(
            f"cached audio tokens ({audio}) exceed input audio tokens ({usage.input_audio_tokens})"
        )
    return text, audio


def estimate_cost(
    usage: Usage,
    price: ModelPrice,
    *,
    cached_text_tokens: int | None = None,
    cached_audio_tokens: int | None = None,
) -> Cost:
    """The cost of ``usage`` at ``price`` (§8.3).

    Cached tokens are a subset of the input tokens of their modality and are billed
    at the cached rate instead of the input rate. When the usage carries the
    per-modality split (``input_cached_text_tokens``/``input_cached_audio_tokens``,
    decoded from OpenAI's ``cached_tokens_details``) it is used; explicit
    ``cached_text_tokens``/``cached_audio_tokens`` override it. Without either the
    cached tokens are assumed to be **text first**: up to
    ``input_text_tokens`` are text, the rest audio (capped at ``input_audio_tokens``).
    With only one of the two given, the other is the remainder of
    ``input_cached_tokens``, capped likewise. Image tokens are not priced.

    Args:
        usage: token counts of one response (or a sum).
        price: the model's prices.
        cached_text_tokens: cached text input tokens, when known.
        cached_audio_tokens: cached audio input tokens, when known.

    Returns:
        The cost in USD per modality and direction, with the total.

    Raises:
        ValueError: a cached count is negative or larger than its modality's input.
    """
    cached_text, cached_audio = _split_cached(usage, cached_text_tokens, cached_audio_tokens)
    parts = {
        "text_input": (usage.input_text_tokens - cached_text) * price.text_input,
        "text_cached_input": cached_text * price.text_cached_input,
        "text_output": usage.output_text_tokens * price.text_output,
        "audio_input": (usage.input_audio_tokens - cached_audio) * price.audio_input,
        "audio_cached_input": cached_audio * price.audio_cached_input,
        "audio_output": usage.output_audio_tokens * price.audio_output,
    }
    dollars = {name: value / _PER_TOKEN for name, value in parts.items()}
    return Cost(**dollars, total=math.fsum(dollars.values()))


@final
class UsageTracker:
    """Accumulates the token usage of a session's responses and its audio durations.

    Pure bookkeeping: feed it ``ResponseDone.usage`` and the seconds of audio sent and
    received. Not thread-safe; use it from one thread (the event loop).
    """

    def __init__(self) -> None:
        self._responses: list[tuple[Usage, int | None, int | None]] = []
        self._total = Usage()
        self._audio_in = 0.0
        self._audio_out = 0.0

    def add_response(
        self,
        usage: Usage,
        *,
        cached_text_tokens: int | None = None,
        cached_audio_tokens: int | None = None,
    ) -> None:
        """Record the usage of one response.

        Args:
            usage: the response's token usage.
            cached_text_tokens: cached text input tokens when known (see :func:`estimate_cost`).
            cached_audio_tokens: cached audio input tokens when known.

        Raises:
            ValueError: a cached count is negative or larger than its modality's input.
        """
        _split_cached(usage, cached_text_tokens, cached_audio_tokens)  # validate now
        self._responses.append((usage, cached_text_tokens, cached_audio_tokens))
        self._total = self._total + usage

    def add_audio_in(self, seconds: float) -> None:
        """Count ``seconds`` of audio sent to the provider.

        Raises:
            ValueError: ``seconds`` is negative or not finite.
        """
        self._audio_in += _seconds(seconds)

    def add_audio_out(self, seconds: float) -> None:
        """Count ``seconds`` of audio received from the provider.

        Raises:
            ValueError: ``seconds`` is negative or not finite.
        """
        self._audio_out += _seconds(seconds)

    @property
    def total(self) -> Usage:
        """The sum of the usage of every recorded response."""
        return self._total

    @property
    def responses(self) -> int:
        """How many responses were recorded."""
        return len(self._responses)

    @property
    def per_response(self) -> tuple[Usage, ...]:
        """The usage of each recorded response, in order."""
        return tuple(usage for usage, _, _ in self._responses)

    @property
    def audio_seconds_in(self) -> float:
        """Seconds of audio sent to the provider."""
        return self._audio_in

    @property
    def audio_seconds_out(self) -> float:
        """Seconds of audio received from the provider."""
        return self._audio_out

    def cost(self, price_table: PriceTable, model: str) -> Cost | None:
        """The estimated cost of all recorded responses for ``model``.

        Each response is priced on its own (so the cached-token split of
        :func:`estimate_cost` applies per response) and the costs are summed.

        Returns:
            The cost, or ``None`` when ``price_table`` has no price for ``model``.
        """
        price = price_table.lookup(model)
        if price is None:
            return None
        total = Cost()
        for usage, cached_text, cached_audio in self._responses:
            total = total + estimate_cost(
                usage, price, cached_text_tokens=cached_text, cached_audio_tokens=cached_audio
            )
        return total


def _seconds(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"seconds must be finite and non-negative, got {seconds!r}")
    return float(seconds)
