"""Running one check: the live provider under test, the check's context and the check itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import (
    Callable,
    Coroutine,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from voxengine.audio.format import AudioFormat
from voxengine.config import SessionConfig
from voxengine.events import (
    BaseEvent,
    Event,
)
from voxengine.providers.base import BaseProvider, Capability
from voxengine.testing import synthesize_speech
from voxengine.testing.conformance.harness import FakeScript, HarnessLimitation, ProviderHarness
from voxengine.testing.conformance.report import (
    CheckFailed,
    CheckResult,
    CheckSkipped,
    Outcome,
    SkipKind,
)
from voxengine.testing.conformance.scripts import REPLY_TEXT, _replying

__all__ = ["CheckContext", "CheckFunction", "ConformanceCheck", "LiveProvider"]


_E = TypeVar("_E", bound=BaseEvent)


def _describe(events: Sequence[Event], limit: int = 40) -> str:
    """A compact list of event classes, runs collapsed: ``AudioDelta x12``."""
    names: list[str] = []
    counts: list[int] = []
    for event in events:
        name = type(event).__name__
        if names and names[-1] == name:
            counts[-1] += 1
        else:
            names.append(name)
            counts.append(1)
    parts = [n if c == 1 else f"{n} x{c}" for n, c in zip(names, counts, strict=True)]
    if len(parts) > limit:
        parts = [*parts[: limit // 2], "...", *parts[-limit // 2 :]]
    return "[" + ", ".join(parts) + "]"


class LiveProvider:
    """A provider under test plus every event it produced so far, in order.

    The suite reads :meth:`BaseProvider.events` in a background task from
    :meth:`connect` on; checks wait on :attr:`events` with :meth:`wait_for`.
    """

    def __init__(self, provider: BaseProvider, timeout: float) -> None:
        self.provider = provider
        self.timeout = timeout
        self.events: list[Event] = []
        self.ended = False
        self.stream_error: BaseException | None = None
        self._changed = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        """Connect (no retries) and start collecting events."""
        await self.provider.connect(retry_count=0)
        self._pump = asyncio.create_task(self._read(), name="voxengine-conformance-events")

    async def _read(self) -> None:
        try:
            async for event in self.provider.events():
                self.events.append(event)
                self._changed.set()
        except Exception as exc:  # reported by wait_for / the stream checks
            self.stream_error = exc
        finally:
            self.ended = True
            self._changed.set()

    async def wait_for(
        self,
        kind: type[_E],
        match: Callable[[_E], bool] = lambda _: True,
        *,
        start: int = 0,
        what: str | None = None,
        timeout: float | None = None,
    ) -> tuple[int, _E]:
        """The first event of class ``kind`` at index >= ``start`` satisfying ``match``.

        Raises:
            CheckFailed: none arrived within the timeout, or the stream ended first.
        """
        wanted = what or kind.__name__
        position = start
        try:
            async with asyncio.timeout(self.timeout if timeout is None else timeout):
                while True:
                    for index in range(position, len(self.events)):
                        event = self.events[index]
                        if isinstance(event, kind) and match(event):
                            return index, event
                    position = len(self.events)
                    if self.ended:
                        raise CheckFailed(
                            f"event stream ended without {wanted}; saw {_describe(self.events)}"
                            + (
                                f" (stream raised {self.stream_error!r})"
                                if self.stream_error
                                else ""
                            )
                        )
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise CheckFailed(
                f"no {wanted} within {self.timeout if timeout is None else timeout} s; "
                f"saw {_describe(self.events)}"
            ) from None

    async def wait_ended(self) -> None:
        """Wait until :meth:`BaseProvider.events` ends.

        Raises:
            CheckFailed: it did not end within the timeout.
        """
        try:
            async with asyncio.timeout(self.timeout):
                while not self.ended:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise CheckFailed(
                f"events() did not end within {self.timeout} s after disconnect(); "
                f"saw {_describe(self.events)}"
            ) from None

    async def settle(self, seconds: float = 0.2) -> None:
        """Let in-flight events arrive."""
        await asyncio.sleep(seconds)

    async def aclose(self) -> None:
        """Disconnect (bounded by the timeout) and stop collecting."""
        try:
            await asyncio.wait_for(self.provider.disconnect(), self.timeout)
        finally:
            if self._pump is not None and not self._pump.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._pump), 1.0)
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pump


class CheckContext:
    """What a check function gets: the harness, provider construction, bookkeeping.

    A check opens providers with :meth:`open`; everything opened is disconnected and
    torn down when the check ends, whatever the outcome.
    """

    def __init__(self, harness: ProviderHarness) -> None:
        self.harness = harness
        self.exercised: set[Capability] = set()
        self.undeclared: set[Capability] = set()
        self.notes: list[str] = []
        self._stack = contextlib.AsyncExitStack()
        self._capabilities: frozenset[Capability] | None = None

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Capabilities declared by the provider (known after the first :meth:`open`)."""
        if self._capabilities is None:
            raise RuntimeError("open() a provider first")
        return self._capabilities

    async def open(
        self,
        session: SessionConfig | None = None,
        script: FakeScript | None = None,
        *,
        connect: bool = True,
    ) -> LiveProvider:
        """Build a provider through the harness and, by default, connect it.

        Raises:
            CheckSkipped: the harness raised :class:`HarnessLimitation`.
        """
        session = session if session is not None else SessionConfig()
        script = script if script is not None else FakeScript(responder=_replying(REPLY_TEXT))
        try:
            provider = await self._stack.enter_async_context(
                self.harness.make_provider(session, script)
            )
        except HarnessLimitation as exc:
            raise CheckSkipped(f"harness: {exc}", SkipKind.HARNESS) from exc
        self._capabilities = frozenset(provider.capabilities)
        live = LiveProvider(provider, self.harness.timeout)
        self._stack.push_async_callback(live.aclose)
        if connect:
            await live.connect()
        return live

    async def capabilities_of_provider(self) -> frozenset[Capability]:
        """Declared capabilities, building (but not connecting) a provider if needed."""
        if self._capabilities is None:
            await self.open(connect=False)
        return self.capabilities

    def require(self, *capabilities: Capability) -> None:
        """Skip (kind CAPABILITY) unless the provider declares all ``capabilities``."""
        missing = [c.value for c in capabilities if c not in self.capabilities]
        if missing:
            raise CheckSkipped(
                f"provider does not declare {', '.join(missing)}", SkipKind.CAPABILITY
            )

    def prerequisite(self, *capabilities: Capability, purpose: str) -> None:
        """Skip (kind PREREQUISITE) unless the provider declares all ``capabilities``."""
        missing = [c.value for c in capabilities if c not in self.capabilities]
        if missing:
            raise CheckSkipped(
                f"needs {', '.join(missing)} {purpose}, which the provider does not declare",
                SkipKind.PREREQUISITE,
            )

    def exercise(self, *capabilities: Capability) -> None:
        """Record that ``capabilities`` were shown to work (undeclared ones are noted)."""
        for capability in capabilities:
            if capability in self.capabilities:
                self.exercised.add(capability)
            else:
                self.undeclared.add(capability)

    def speech(self, fmt: AudioFormat) -> bytes:
        """The harness speech, or synthesized speech-like audio in ``fmt``."""
        if self.harness.speech is not None:
            return self.harness.speech
        mono = synthesize_speech("conformance check one two three", sample_rate=fmt.sample_rate)
        if fmt.channels == 1:
            return mono
        return np.frombuffer(mono, dtype="<i2").repeat(fmt.channels).tobytes()

    async def aclose(self) -> None:
        """Tear down everything :meth:`open` built."""
        await self._stack.aclose()


CheckFunction = Callable[[CheckContext], Coroutine[Any, Any, None]]


@dataclass(frozen=True, slots=True)
class ConformanceCheck:
    """One named check of the suite.

    Attributes:
        name: short identifier, used in test ids (``openai-text_turn``).
        function: the check; raises :class:`CheckFailed` or :class:`CheckSkipped`.
        covers: capabilities this check can show to work.
    """

    name: str
    function: CheckFunction
    covers: frozenset[Capability] = frozenset()

    @property
    def description(self) -> str:
        """The first line of the check function's docstring."""
        return (self.function.__doc__ or "").strip().splitlines()[0]

    async def evaluate(self, harness: ProviderHarness) -> CheckResult:
        """Run the check; never raises for a provider's misbehaviour.

        Any exception other than :class:`CheckFailed`/:class:`CheckSkipped` escaping
        the check (a provider method raising, a hang past the overall time limit)
        counts as a failure; so does an error while tearing the provider down.
        """
        ctx = CheckContext(harness)
        outcome, detail, kind = Outcome.PASSED, "", None
        try:
            async with asyncio.timeout(harness.timeout * 6):
                await self.function(ctx)
        except CheckSkipped as exc:
            outcome, detail, kind = Outcome.SKIPPED, exc.reason, exc.kind
        except CheckFailed as exc:
            outcome, detail = Outcome.FAILED, str(exc)
        except TimeoutError:
            outcome, detail = Outcome.FAILED, f"check did not finish within {harness.timeout * 6} s"
        except Exception as exc:
            outcome, detail = Outcome.FAILED, f"raised {type(exc).__name__}: {exc}"
        try:
            await ctx.aclose()
        except Exception as exc:
            if outcome is not Outcome.FAILED:
                outcome, kind = Outcome.FAILED, None
                detail = f"teardown (disconnect) raised {type(exc).__name__}: {exc}"
        if outcome is Outcome.PASSED:
            detail = "; ".join(ctx.notes)
        return CheckResult(
            check=self.name,
            outcome=outcome,
            detail=detail,
            skip_kind=kind,
            exercised=frozenset(ctx.exercised) if outcome is Outcome.PASSED else frozenset(),
            undeclared=frozenset(ctx.undeclared),
        )

    async def run(self, harness: ProviderHarness) -> CheckResult:
        """Run the check as a test: returns the result if it passed.

        Raises:
            CheckFailed: the check failed (an ``AssertionError``: a test failure).
            CheckSkipped: the check was skipped (a ``unittest.SkipTest``: pytest and
                unittest report a skip with the reason).
        """
        result = await self.evaluate(harness)
        if result.outcome is Outcome.FAILED:
            raise CheckFailed(f"{harness.name}/{self.name}: {result.detail}")
        if result.outcome is Outcome.SKIPPED:
            assert result.skip_kind is not None
            raise CheckSkipped(result.detail, result.skip_kind)
        return result
