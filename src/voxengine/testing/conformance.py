"""A conformance suite for providers: the behaviour every :class:`BaseProvider` promises.

Run it against your own provider to learn whether applications written for voxengine
will work with it. You describe how to build your provider, wired to a fake of its
service, in a :class:`ProviderHarness`; the suite then connects, talks, interrupts and
disconnects, and checks the events against the contract of
:class:`~voxengine.providers.BaseProvider` and :mod:`voxengine.events`::

    from voxengine.testing.conformance import check_provider, openai_harness

    report = await check_provider(openai_harness())
    print(report.summary())
    assert report.ok

Or, as one pytest test per check (``pytest-asyncio`` runs the coroutines)::

    from voxengine.testing.conformance import conformance_tests

    test_my_provider = conformance_tests(my_harness())

Each check is a :class:`ConformanceCheck` in :data:`CONFORMANCE_CHECKS`. A check
that needs a capability the provider does not declare is *skipped with a recorded
reason*, never silently passed; a check whose capability is declared but does not
work *fails*. What a provider supports is read from ``provider.capabilities``, never
from flags on the harness.

The fake behind the provider is scripted by the suite: the harness factory receives a
:class:`FakeScript` (a :data:`~voxengine.testing.Responder` and whether to stream the
reply in real time) and must build its fake from it. A harness that cannot honour a
script raises :class:`HarnessLimitation`, which skips the check with that reason.

``python -m voxengine.testing.conformance --matrix`` prints the provider x capability
table of ``docs/providers.md``; ``--run NAME`` runs the suite against a built-in
provider and prints the report.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import sys
import unittest
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Sequence,
)
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import numpy as np

from voxengine.audio.format import AudioFormat
from voxengine.config import Modality, SessionConfig, ToolSpec, TurnDetection, TurnDetectionConfig
from voxengine.errors import AudioError, ConfigError, InvalidState
from voxengine.events import (
    AudioDelta,
    AudioDone,
    BaseEvent,
    Event,
    Interrupted,
    ItemAdded,
    ItemDeleted,
    ItemTruncated,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SessionClosed,
    SessionReady,
    SessionUpdated,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallDelta,
    TranscriptDelta,
    TranscriptDone,
)
from voxengine.providers.base import BaseProvider, Capability
from voxengine.providers.openai import (
    AzureOpenAIConfig,
    AzureOpenAIProvider,
    OpenAIConfig,
    OpenAIProvider,
)
from voxengine.providers.registry import get_provider, list_providers
from voxengine.testing import synthesize_speech
from voxengine.testing._fake_openai import (
    FakeOpenAIConfig,
    FakeReply,
    FakeToolCall,
    FakeTurn,
    Responder,
)
from voxengine.testing._server import run_fake_openai_server
from voxengine.testing.mock import MockConfig, MockProvider

__all__ = [
    "CONFORMANCE_CHECKS",
    "CheckContext",
    "CheckFailed",
    "CheckFunction",
    "CheckResult",
    "CheckSkipped",
    "ConformanceCheck",
    "ConformanceReport",
    "ErrorTrigger",
    "FakeScript",
    "HarnessLimitation",
    "LiveProvider",
    "Outcome",
    "ProviderFactory",
    "ProviderHarness",
    "SkipKind",
    "azure_harness",
    "builtin_harnesses",
    "capability_matrix_markdown",
    "check_provider",
    "conformance_tests",
    "event_order_violations",
    "main",
    "mock_harness",
    "openai_harness",
]

# --- the harness -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class FakeScript:
    """What the fake behind the provider must do for one check.

    Attributes:
        responder: called once per response; its :class:`~voxengine.testing.FakeReply`
            is what the assistant says (text and/or tool calls). Every voxengine fake
            server accepts this type.
        paced: stream each reply in real time (one audio chunk per ``pace_seconds``)
            instead of in one burst, so the client can interrupt it mid-response.
        pace_seconds: delay between streamed steps when ``paced``.
    """

    responder: Responder
    paced: bool = False
    pace_seconds: float = 0.02


ProviderFactory = Callable[[SessionConfig, FakeScript], AbstractAsyncContextManager[BaseProvider]]
"""Builds one provider wired to a fresh fake; the context manager owns the fake's lifetime.

It yields a provider that is *not yet connected*, configured with the given
:class:`~voxengine.config.SessionConfig`, whose fake follows the :class:`FakeScript`.
The suite connects and disconnects the provider itself. A factory that cannot honour
the script raises :class:`HarnessLimitation`.
"""

ErrorTrigger = Callable[[BaseProvider], Awaitable[None]]
"""Makes a connected provider's service report a *recoverable* error (e.g. an invalid request)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProviderHarness:
    """How the suite obtains the provider under test.

    Attributes:
        name: label used in reports and test ids (e.g. ``"openai"``).
        make_provider: see :data:`ProviderFactory`.
        speech: sample user speech, PCM16 at the provider's ``input_format``, that the
            provider's (fake) voice activity detection recognises as speech. Default:
            :func:`voxengine.testing.synthesize_speech` at the input rate.
        trigger_error: see :data:`ErrorTrigger`; ``None`` skips the recoverable-error check.
        timeout: seconds any single expected event may take to arrive.
    """

    name: str
    make_provider: ProviderFactory
    speech: bytes | None = field(default=None, repr=False)
    trigger_error: ErrorTrigger | None = None
    timeout: float = 10.0


class HarnessLimitation(Exception):
    """Raised by a :data:`ProviderFactory` that cannot provide what a script asks for.

    The check is skipped with ``str(exc)`` as the reason (kind :attr:`SkipKind.HARNESS`).
    """


# --- outcomes --------------------------------------------------------------------------------


class Outcome(enum.Enum):
    """How a check ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"


class SkipKind(enum.Enum):
    """Why a check was skipped."""

    #: The provider does not declare the capability the check is about.
    CAPABILITY = "capability"
    #: The check needs another capability to drive the feature (e.g. text input to
    #: start a response), which the provider does not declare.
    PREREQUISITE = "prerequisite"
    #: The harness cannot provide what the check needs (no error trigger, no pacing).
    HARNESS = "harness"


class CheckFailed(AssertionError):
    """The provider broke a promise; the message says which and what was seen."""


class CheckSkipped(unittest.SkipTest):
    """The check does not apply; pytest and unittest report it as a skip.

    Attributes:
        reason: why, in words.
        kind: the category of reason.
    """

    def __init__(self, reason: str, kind: SkipKind) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """The result of one check against one harness.

    Attributes:
        check: the check's name.
        outcome: passed, failed or skipped.
        detail: the failure message, the skip reason, or notes on a pass.
        skip_kind: for skips, why.
        exercised: declared capabilities the check showed to work (empty unless passed).
        undeclared: capabilities the provider showed but does not declare.
    """

    check: str
    outcome: Outcome
    detail: str = ""
    skip_kind: SkipKind | None = None
    exercised: frozenset[Capability] = frozenset()
    undeclared: frozenset[Capability] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConformanceReport:
    """Every check's result for one harness (from :func:`check_provider`).

    Attributes:
        harness: the harness name.
        capabilities: what the provider declares.
        results: one result per check, in :data:`CONFORMANCE_CHECKS` order.
    """

    harness: str
    capabilities: frozenset[Capability]
    results: tuple[CheckResult, ...]

    @property
    def ok(self) -> bool:
        """True when no check failed."""
        return not self.failed

    @property
    def passed(self) -> tuple[CheckResult, ...]:
        """Results of checks that passed."""
        return tuple(r for r in self.results if r.outcome is Outcome.PASSED)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        """Results of checks that failed."""
        return tuple(r for r in self.results if r.outcome is Outcome.FAILED)

    @property
    def skipped(self) -> tuple[CheckResult, ...]:
        """Results of checks that were skipped."""
        return tuple(r for r in self.results if r.outcome is Outcome.SKIPPED)

    @property
    def uncovered(self) -> frozenset[Capability]:
        """Declared capabilities that no check in the suite exercises."""
        return _uncovered(self.capabilities)

    def result(self, check: str) -> CheckResult:
        """The result of the check named ``check``.

        Raises:
            KeyError: no such check in this report.
        """
        for result in self.results:
            if result.check == check:
                return result
        raise KeyError(check)

    def summary(self) -> str:
        """A plain-text table of the results, one line per check."""
        lines = [f"conformance of {self.harness!r}: {'OK' if self.ok else 'FAILED'}"]
        for r in self.results:
            detail = f"  {r.detail}" if r.detail else ""
            lines.append(f"  {r.outcome.value.upper():8} {r.check}{detail}")
        return "\n".join(lines)


# --- running a check -------------------------------------------------------------------------


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


# --- scripts ---------------------------------------------------------------------------------

#: What the fake says in ordinary turns.
REPLY_TEXT: Final = "Conformance reply: the quick brown fox jumps over the lazy dog."
#: A reply long enough to interrupt while it streams (about 12 s of audio).
LONG_REPLY: Final = " ".join(["Once upon a time the sea was calm and the sky was wide."] * 4)
_TOOL_NAME: Final = "get_weather"
_TOOL_ARGUMENTS: Final = '{"city": "Paris"}'
_TOOL_OUTPUT: Final = '{"temp_c": 18}'
_TOOL_REPLY: Final = "It is 18 degrees in Paris."
_TOOL_LOST: Final = "The tool output did not arrive."
_TOOL = ToolSpec(
    name=_TOOL_NAME,
    description="Current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


def _replying(text: str) -> Responder:
    def respond(turn: FakeTurn) -> FakeReply:
        return FakeReply(text=text)

    return respond


def _tool_responder(turn: FakeTurn) -> FakeReply:
    if turn.kind == "tool_output":
        return FakeReply(text=_TOOL_REPLY if "18" in turn.text else _TOOL_LOST)
    return FakeReply(tool_calls=(FakeToolCall(name=_TOOL_NAME, arguments=_TOOL_ARGUMENTS),))


# --- shared assertions -----------------------------------------------------------------------


def _fail_unless(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass(frozen=True, slots=True)
class _Response:
    """One finished response: its id, final event and the events from start to done."""

    response_id: str
    done: ResponseDone
    events: tuple[Event, ...]
    done_index: int


def _response_of(event: Event) -> str | None:
    """The response an output event belongs to (``None`` for other events)."""
    match event:
        case (
            TextDelta(response_id=r)
            | TextDone(response_id=r)
            | AudioDelta(response_id=r)
            | AudioDone(response_id=r)
            | ToolCallDelta(response_id=r)
        ):
            return r
        case (
            TranscriptDelta(role=Role.ASSISTANT, response_id=r)
            | TranscriptDone(role=Role.ASSISTANT, response_id=r)
        ):
            return r
        case ToolCall(response_id=r) if r:
            return r
        case _:
            return None


async def _finish_response(
    live: LiveProvider, start: int, *, status: ResponseStatus | None = ResponseStatus.COMPLETED
) -> _Response:
    """Wait for the next ResponseDone after ``start``; check its ResponseStarted came first."""
    done_index, done = await live.wait_for(ResponseDone, start=start)
    rid = done.response_id
    starts = [
        i
        for i, e in enumerate(live.events[:done_index])
        if isinstance(e, ResponseStarted) and e.response_id == rid
    ]
    _fail_unless(
        bool(starts),
        f"ResponseDone({rid!r}) without a preceding ResponseStarted; saw {_describe(live.events)}",
    )
    early = [e for e in live.events[: starts[0]] if _response_of(e) == rid]
    _fail_unless(
        not early,
        f"{_describe(early)} of response {rid!r} arrived before its ResponseStarted",
    )
    if status is not None:
        _fail_unless(
            done.status is status,
            f"response {rid!r} ended {done.status.value} (reason {done.reason!r}), "
            f"expected {status.value}",
        )
    return _Response(rid, done, tuple(live.events[starts[0] : done_index + 1]), done_index)


def _check_text(ctx: CheckContext, response: _Response, *, require: bool = True) -> str:
    """Deltas of each text/transcript item concatenate to its final text; returns all finals."""
    rid = response.response_id
    pieces: dict[tuple[str, str], list[str]] = {}
    finals: dict[tuple[str, str], str] = {}
    for event in response.events:
        match event:
            case TextDelta(response_id=r, item_id=item, delta=delta) if r == rid:
                pieces.setdefault(("text", item), []).append(delta)
            case TextDone(response_id=r, item_id=item, text=text) if r == rid:
                finals[("text", item)] = text
            case TranscriptDelta(role=Role.ASSISTANT, item_id=item, delta=delta):
                pieces.setdefault(("transcript", item), []).append(delta)
            case TranscriptDone(role=Role.ASSISTANT, item_id=item, transcript=text):
                finals[("transcript", item)] = text
            case _:
                pass
    for key in pieces.keys() | finals.keys():
        kind, item = key
        _fail_unless(key in finals, f"{kind} deltas of item {item!r} never got a final Done event")
        joined = "".join(pieces.get(key, []))
        _fail_unless(
            joined == finals[key],
            f"{kind} deltas of item {item!r} concatenate to {joined!r}, "
            f"but the final text is {finals[key]!r}",
        )
    if require:
        _fail_unless(
            any(finals.values()),
            f"response {rid!r} carried no text or transcript; saw {_describe(response.events)}",
        )
    if any(k == "text" and v for (k, _), v in finals.items()):
        ctx.exercise(Capability.TEXT_OUTPUT)
    if any(k == "transcript" and v for (k, _), v in finals.items()):
        ctx.exercise(Capability.OUTPUT_TRANSCRIPTION)
    return " ".join(v for v in finals.values() if v)


def _check_audio(ctx: CheckContext, response: _Response, fmt: AudioFormat) -> dict[str, int]:
    """Every AudioDelta holds whole, non-empty PCM16 frames; returns bytes per item."""
    per_item: dict[str, int] = {}
    for event in response.events:
        if isinstance(event, AudioDelta) and event.response_id == response.response_id:
            _fail_unless(
                isinstance(event.audio, bytes),
                f"AudioDelta.audio is {type(event.audio).__name__}, not bytes",
            )
            _fail_unless(len(event.audio) > 0, "an AudioDelta carried no audio")
            _fail_unless(
                len(event.audio) % fmt.frame_bytes == 0,
                f"an AudioDelta of {len(event.audio)} bytes is not whole PCM16 frames of "
                f"{fmt.frame_bytes} bytes ({fmt})",
            )
            per_item[event.item_id] = per_item.get(event.item_id, 0) + len(event.audio)
    if per_item:
        ctx.exercise(Capability.AUDIO_OUTPUT)
    return per_item


async def _stream_speech(ctx: CheckContext, live: LiveProvider, *, trailing_silence: float) -> None:
    """Send the harness speech then silence in 20 ms chunks, as a microphone would."""
    fmt = live.provider.input_format
    audio = ctx.speech(fmt) + bytes(fmt.bytes_for(trailing_silence))
    chunk = fmt.bytes_for(0.02)
    for offset in range(0, len(audio), chunk):
        await live.provider.send_audio(audio[offset : offset + chunk], sample_rate=fmt.sample_rate)


# --- the checks ------------------------------------------------------------------------------


async def check_connect(ctx: CheckContext) -> None:
    """connect() opens the session: is_connected turns True and SessionReady is the first event.

    Before connect() the provider reports ``is_connected`` False.
    """
    live = await ctx.open(connect=False)
    _fail_unless(not live.provider.is_connected, "is_connected is True before connect()")
    await live.connect()
    _fail_unless(live.provider.is_connected, "is_connected is False after connect() returned")
    await live.wait_for(SessionReady)
    _fail_unless(
        isinstance(live.events[0], SessionReady),
        f"first event is {type(live.events[0]).__name__}, not SessionReady",
    )


async def check_disconnect(ctx: CheckContext) -> None:
    """disconnect() ends the session cleanly and for good.

    SessionClosed is the last event, ``events()`` ends, ``is_connected`` is False,
    sending afterwards raises InvalidState, and a second disconnect() is harmless.
    """
    live = await ctx.open()
    provider = live.provider
    await live.wait_for(SessionReady)
    await provider.disconnect()
    await live.wait_ended()
    _fail_unless(
        bool(live.events) and isinstance(live.events[-1], SessionClosed),
        f"the last event is not SessionClosed; saw {_describe(live.events)}",
    )
    _fail_unless(not provider.is_connected, "is_connected is True after disconnect()")
    sends: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("create_response()", provider.create_response)
    ]
    if Capability.TEXT_INPUT in ctx.capabilities:
        sends.append(("send_text()", lambda: provider.send_text("hello?")))
    if Capability.AUDIO_INPUT in ctx.capabilities:
        frame = bytes(provider.input_format.bytes_for(0.02))
        sends.append(("send_audio()", lambda: provider.send_audio(frame)))
    for label, send in sends:
        try:
            await send()
        except InvalidState:
            continue
        except Exception as exc:
            raise CheckFailed(
                f"{label} after disconnect raised {type(exc).__name__}, not InvalidState"
            ) from exc
        raise CheckFailed(f"{label} after disconnect did not raise InvalidState")
    await provider.disconnect()  # idempotent


async def check_text_turn(ctx: CheckContext) -> None:
    """A user text message gets a completed response with consistent text.

    send_text() leads to ResponseStarted ... ResponseDone(COMPLETED); the text or
    transcript deltas of each item concatenate to that item's TextDone/TranscriptDone.
    """
    live = await ctx.open()
    ctx.require(Capability.TEXT_INPUT)
    await live.provider.send_text("Hello from the conformance suite.")
    response = await _finish_response(live, 0)
    text = _check_text(ctx, response)
    _fail_unless(REPLY_TEXT in text, f"the reply {text!r} is not the scripted {REPLY_TEXT!r}")
    ctx.exercise(Capability.TEXT_INPUT)


async def check_text_output(ctx: CheckContext) -> None:
    """With text-only output the response is TextDelta ... TextDone and carries no audio."""
    await ctx.capabilities_of_provider()
    ctx.require(Capability.TEXT_OUTPUT)  # before a provider that would refuse the mode
    live = await ctx.open(SessionConfig(modalities=(Modality.TEXT,)))
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("Please answer in text.")
    response = await _finish_response(live, 0)
    _check_text(ctx, response)
    _fail_unless(
        any(isinstance(e, TextDone) and e.text for e in response.events),
        f"no TextDone in a text-only response; saw {_describe(response.events)}",
    )
    _fail_unless(
        not any(isinstance(e, AudioDelta) for e in response.events),
        "a text-only response carried AudioDelta events",
    )


async def check_audio_output(ctx: CheckContext) -> None:
    """Response audio is non-empty whole PCM16 frames at ``output_format``.

    With OUTPUT_TRANSCRIPTION declared, each audio item also has a consistent
    assistant transcript.
    """
    live = await ctx.open()
    ctx.require(Capability.AUDIO_OUTPUT)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("Please answer aloud.")
    response = await _finish_response(live, 0)
    per_item = _check_audio(ctx, response, live.provider.output_format)
    _fail_unless(bool(per_item), f"no AudioDelta in the response; saw {_describe(response.events)}")
    seconds = live.provider.output_format.duration(sum(per_item.values()))
    ctx.notes.append(f"{seconds:.2f} s of audio")
    if Capability.OUTPUT_TRANSCRIPTION in ctx.capabilities:
        _check_text(ctx, response)
        transcribed = {
            e.item_id
            for e in response.events
            if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT and e.transcript
        }
        _fail_unless(
            set(per_item) <= transcribed,
            f"audio items {sorted(set(per_item) - transcribed)} have no assistant transcript",
        )


async def _vad_turn(ctx: CheckContext, mode: TurnDetection, capability: Capability) -> None:
    await ctx.capabilities_of_provider()
    ctx.require(Capability.AUDIO_INPUT, capability)  # before a provider the mode would refuse
    session = SessionConfig(turn_detection=TurnDetectionConfig(mode=mode))
    live = await ctx.open(session)
    await live.wait_for(SessionReady)
    await _stream_speech(ctx, live, trailing_silence=2.0)
    if Capability.SPEECH_EVENTS in ctx.capabilities:
        started, _ = await live.wait_for(SpeechStarted)
        stopped, _ = await live.wait_for(SpeechStopped, start=started + 1)
        response = await _finish_response(live, stopped + 1)
        first = next(i for i, e in enumerate(live.events) if isinstance(e, ResponseStarted))
        _fail_unless(
            started < stopped < first,
            "expected SpeechStarted < SpeechStopped < ResponseStarted; "
            f"saw {_describe(live.events)}",
        )
        ctx.exercise(Capability.SPEECH_EVENTS)
    else:  # the provider's VAD is silent about speech; the turn must still be answered
        response = await _finish_response(live, 0)
    _check_audio(ctx, response, live.provider.output_format)
    _check_text(ctx, response, require=False)
    ctx.exercise(Capability.AUDIO_INPUT, capability)


async def check_audio_turn(ctx: CheckContext) -> None:
    """Spoken input with server VAD: SpeechStarted, SpeechStopped, then a completed response."""
    await _vad_turn(ctx, TurnDetection.SERVER_VAD, Capability.SERVER_VAD)


async def check_semantic_vad_turn(ctx: CheckContext) -> None:
    """Spoken input with semantic VAD: SpeechStarted, SpeechStopped, then a completed response."""
    await _vad_turn(ctx, TurnDetection.SEMANTIC_VAD, Capability.SEMANTIC_VAD)


async def check_manual_turn(ctx: CheckContext) -> None:
    """Push-to-talk: send_audio, commit_audio and create_response produce a response.

    With turn detection MANUAL the provider reports no SpeechStarted.
    """
    session = SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL))
    live = await ctx.open(session)
    ctx.require(Capability.MANUAL_TURNS, Capability.AUDIO_INPUT)
    await live.wait_for(SessionReady)
    await _stream_speech(ctx, live, trailing_silence=0.2)
    await live.provider.commit_audio()
    await live.provider.create_response()
    response = await _finish_response(live, 0)
    _fail_unless(
        not any(isinstance(e, SpeechStarted) for e in live.events),
        "SpeechStarted was reported although turn detection is MANUAL",
    )
    _check_audio(ctx, response, live.provider.output_format)
    _check_text(ctx, response, require=False)
    ctx.exercise(Capability.MANUAL_TURNS, Capability.AUDIO_INPUT)


async def check_input_transcription(ctx: CheckContext) -> None:
    """With an input transcription model, the user's committed audio gets a user transcript."""
    session = SessionConfig(
        turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL),
        input_transcription_model="gpt-4o-transcribe",
    )
    live = await ctx.open(session)
    ctx.require(Capability.INPUT_TRANSCRIPTION)
    ctx.prerequisite(Capability.AUDIO_INPUT, Capability.MANUAL_TURNS, purpose="to commit speech")
    await live.wait_for(SessionReady)
    await _stream_speech(ctx, live, trailing_silence=0.2)
    await live.provider.commit_audio()
    _, done = await live.wait_for(
        TranscriptDone, lambda e: e.role is Role.USER, what="a user TranscriptDone"
    )
    _fail_unless(bool(done.transcript), "the user transcript is empty")
    ctx.exercise(Capability.INPUT_TRANSCRIPTION)


async def check_interruption(ctx: CheckContext) -> None:
    """interrupt() during a streaming response stops it.

    interrupt() returns Interrupted, the same event appears in the stream, and the
    response ends CANCELLED (a provider that never ends it must at least send no
    further AudioDelta for the item).
    """
    script = FakeScript(responder=_replying(LONG_REPLY), paced=True)
    live = await ctx.open(script=script)
    ctx.require(Capability.INTERRUPTION)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("Tell me a long story.")
    _, started = await live.wait_for(ResponseStarted)
    rid = started.response_id

    def streaming(e: BaseEvent) -> bool:
        return isinstance(e, AudioDelta | TextDelta | TranscriptDelta) and e.response_id == rid

    _, first = await live.wait_for(BaseEvent, streaming, what=f"a delta of response {rid!r}")
    assert isinstance(first, AudioDelta | TextDelta | TranscriptDelta)
    item_id = first.item_id
    interrupted = await live.provider.interrupt()
    _fail_unless(
        isinstance(interrupted, Interrupted),
        f"interrupt() returned {interrupted!r}, not an Interrupted event",
    )
    await live.wait_for(Interrupted, what="the Interrupted event in events()")

    def audio_of_item() -> int:
        return sum(1 for e in live.events if isinstance(e, AudioDelta) and e.item_id == item_id)

    try:
        _, done = await live.wait_for(ResponseDone, lambda e: e.response_id == rid)
    except CheckFailed:  # never ended: acceptable only if the item's audio stopped
        before = audio_of_item()
        await live.settle(0.5)
        _fail_unless(
            audio_of_item() == before,
            "after interrupt() the response neither ended nor stopped streaming audio",
        )
    else:
        _fail_unless(
            done.status is ResponseStatus.CANCELLED,
            f"after interrupt() the response ended {done.status.value}, not cancelled",
        )
    ctx.exercise(Capability.INTERRUPTION)


async def check_truncation(ctx: CheckContext) -> None:
    """interrupt(played, item_id=..., cancel=False) cuts the assistant item where asked.

    The provider reports ItemTruncated for that item at the requested position.
    """
    live = await ctx.open()
    ctx.require(Capability.TRUNCATION)
    ctx.prerequisite(
        Capability.AUDIO_OUTPUT, Capability.TEXT_INPUT, purpose="to produce assistant audio"
    )
    await live.provider.send_text("Say something I can cut short.")
    response = await _finish_response(live, 0)
    per_item = _check_audio(ctx, response, live.provider.output_format)
    _fail_unless(bool(per_item), "no assistant audio to truncate")
    item_id, size = next(iter(per_item.items()))
    played = round(live.provider.output_format.duration(size) / 2, 2)
    interrupted = await live.provider.interrupt(played, item_id=item_id, cancel=False)
    _fail_unless(
        interrupted.item_id == item_id and interrupted.played == played,
        f"interrupt({played}, item_id={item_id!r}) returned {interrupted!r}",
    )
    _, truncated = await live.wait_for(
        ItemTruncated, lambda e: e.item_id == item_id, start=response.done_index
    )
    _fail_unless(
        abs(truncated.audio_end - played) <= 0.002,
        f"ItemTruncated at {truncated.audio_end} s, requested {played} s",
    )
    ctx.exercise(Capability.TRUNCATION)


async def check_tool_round_trip(ctx: CheckContext) -> None:
    """A function call round trip completes.

    The model's ToolCall has JSON-object arguments; send_tool_result(respond=False)
    then create_response() gives a completed response built on the tool output.
    """
    live = await ctx.open(SessionConfig(tools=(_TOOL,)), FakeScript(responder=_tool_responder))
    ctx.require(Capability.FUNCTION_CALLING)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("What is the weather in Paris?")
    first = await _finish_response(live, 0)
    calls = [e for e in first.events if isinstance(e, ToolCall)]
    _fail_unless(len(calls) == 1, f"expected one ToolCall; saw {_describe(first.events)}")
    call = calls[0]
    _fail_unless(call.name == _TOOL_NAME, f"ToolCall.name is {call.name!r}, not {_TOOL_NAME!r}")
    try:
        arguments = json.loads(call.arguments)
    except ValueError as exc:
        raise CheckFailed(f"ToolCall.arguments is not JSON: {call.arguments!r}") from exc
    _fail_unless(
        arguments == json.loads(_TOOL_ARGUMENTS),
        f"ToolCall.arguments is {call.arguments!r}, expected {_TOOL_ARGUMENTS!r}",
    )
    _fail_unless(bool(call.call_id), "ToolCall.call_id is empty")
    await live.provider.send_tool_result(call.call_id, _TOOL_OUTPUT, respond=False)
    await live.provider.create_response()
    second = await _finish_response(live, first.done_index + 1)
    text = _check_text(ctx, second)
    _fail_unless(_TOOL_REPLY in text, f"the follow-up {text!r} does not use the tool output")
    ctx.exercise(Capability.FUNCTION_CALLING)


async def check_usage(ctx: CheckContext) -> None:
    """ResponseDone.usage reports positive input, output and total token counts."""
    live = await ctx.open()
    ctx.require(Capability.USAGE)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("How much does this cost?")
    response = await _finish_response(live, 0)
    usage = response.done.usage
    _fail_unless(usage is not None, "ResponseDone.usage is None")
    assert usage is not None
    _fail_unless(
        usage.total_tokens > 0 and usage.input_tokens > 0 and usage.output_tokens > 0,
        f"usage has non-positive totals: {usage}",
    )
    ctx.exercise(Capability.USAGE)


async def _expect_raise(
    label: str, error: type[Exception], action: Callable[[], Awaitable[None]]
) -> None:
    try:
        await action()
    except error:
        return
    except Exception as exc:
        raise CheckFailed(
            f"{label} raised {type(exc).__name__}: {exc}, not {error.__name__}"
        ) from exc
    raise CheckFailed(f"{label} did not raise {error.__name__}")


async def check_input_validation(ctx: CheckContext) -> None:
    """Invalid input raises typed errors before any I/O, and the session stays usable.

    Odd-length audio, non-bytes audio and a wrong ``sample_rate`` raise AudioError;
    empty text raises ConfigError. None of them makes the provider report an error.
    """
    live = await ctx.open()
    provider = live.provider
    await live.wait_for(SessionReady)
    audio_in, text_in = Capability.AUDIO_INPUT, Capability.TEXT_INPUT
    if audio_in not in ctx.capabilities and text_in not in ctx.capabilities:
        raise CheckSkipped(
            "provider declares neither audio_input nor text_input", SkipKind.CAPABILITY
        )
    if audio_in in ctx.capabilities:
        fmt = provider.input_format
        frame = bytes(fmt.bytes_for(0.02))
        wrong = 16_000 if fmt.sample_rate != 16_000 else 24_000
        await _expect_raise(
            "send_audio(3 bytes)", AudioError, lambda: provider.send_audio(b"\0\0\0")
        )
        await _expect_raise(
            "send_audio(str)",
            AudioError,
            lambda: provider.send_audio("audio"),  # type: ignore[arg-type]
        )
        await _expect_raise(
            f"send_audio(sample_rate={wrong})",
            AudioError,
            lambda: provider.send_audio(frame, sample_rate=wrong),
        )
    if text_in in ctx.capabilities:
        await _expect_raise("send_text('')", ConfigError, lambda: provider.send_text(""))
    await live.settle()
    errors = [e for e in live.events if isinstance(e, ProviderErrorEvent | SessionClosed)]
    _fail_unless(
        not errors and provider.is_connected,
        f"invalid input reached the service: {errors!r}",
    )


async def check_recoverable_error(ctx: CheckContext) -> None:
    """A recoverable service error arrives as ProviderErrorEvent and the session stays open.

    The harness's ``trigger_error`` provokes the error; afterwards the provider is
    still connected, reports no SessionClosed and (with TEXT_INPUT) still answers.
    """
    trigger = ctx.harness.trigger_error
    if trigger is None:
        raise CheckSkipped(
            "harness gives no trigger_error to provoke a recoverable error", SkipKind.HARNESS
        )
    live = await ctx.open()
    await live.wait_for(SessionReady)
    await trigger(live.provider)
    index, _ = await live.wait_for(ProviderErrorEvent)
    await live.settle()
    _fail_unless(live.provider.is_connected, "the provider disconnected after a recoverable error")
    _fail_unless(
        not any(isinstance(e, SessionClosed) for e in live.events),
        "SessionClosed after a recoverable error",
    )
    if Capability.TEXT_INPUT in ctx.capabilities:
        await live.provider.send_text("Are you still there?")
        await _finish_response(live, index + 1)


def event_order_violations(events: Sequence[Event]) -> list[str]:
    """Check the ordering invariants every provider's event stream must satisfy.

    * the first event is SessionReady; SessionClosed, if present, occurs once and last;
    * each response id is started once by ResponseStarted and done at most once by
      ResponseDone, after its start;
    * every event that names a response (text/audio/transcript deltas and dones,
      tool calls) comes between that response's ResponseStarted and ResponseDone.

    Returns:
        One message per violation (empty when the stream is well ordered).
    """
    problems: list[str] = []
    if not events:
        return ["no events at all"]
    if not isinstance(events[0], SessionReady):
        problems.append(f"first event is {type(events[0]).__name__}, not SessionReady")
    closed = [i for i, e in enumerate(events) if isinstance(e, SessionClosed)]
    if len(closed) > 1:
        problems.append(f"{len(closed)} SessionClosed events")
    if closed and closed[0] != len(events) - 1:
        after = _describe(events[closed[0] + 1 :])
        problems.append(f"events after SessionClosed: {after}")
    open_ids: set[str] = set()
    finished: set[str] = set()
    for index, event in enumerate(events):
        if isinstance(event, ResponseStarted):
            r = event.response_id
            if r in open_ids or r in finished:
                problems.append(f"#{index}: response {r!r} started twice")
            open_ids.add(r)
        elif isinstance(event, ResponseDone):
            r = event.response_id
            if r not in open_ids:
                state = "done twice" if r in finished else "done before it started"
                problems.append(f"#{index}: response {r!r} {state}")
            open_ids.discard(r)
            finished.add(r)
        else:
            rid = _response_of(event)
            if rid is not None and rid not in open_ids:
                where = (
                    "after its ResponseDone" if rid in finished else "outside any ResponseStarted"
                )
                problems.append(f"#{index}: {type(event).__name__} of response {rid!r} {where}")
    return problems


async def check_event_ordering(ctx: CheckContext) -> None:
    """The whole session's event stream obeys :func:`event_order_violations`.

    The session covers connect, a text turn (and a tool round trip with
    FUNCTION_CALLING) and disconnect.
    """
    calling = FakeScript(responder=_tool_responder)
    live = await ctx.open(SessionConfig(tools=(_TOOL,)), calling)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    provider = live.provider
    await provider.send_text("What is the weather in Paris?")
    done_index, _ = await live.wait_for(ResponseDone)
    if Capability.FUNCTION_CALLING in ctx.capabilities:
        _, call = await live.wait_for(ToolCall)
        await provider.send_tool_result(call.call_id, _TOOL_OUTPUT)
        await live.wait_for(ResponseDone, start=done_index + 1)
    await provider.disconnect()
    await live.wait_ended()
    problems = event_order_violations(live.events)
    _fail_unless(not problems, "; ".join(problems[:10]))


async def check_session_update(ctx: CheckContext) -> None:
    """update_session() mid-session is acknowledged with SessionUpdated and no error."""
    live = await ctx.open()
    ctx.require(Capability.SESSION_UPDATE)
    ready, _ = await live.wait_for(SessionReady)
    await live.provider.update_session(SessionConfig(instructions="Answer in one sentence."))
    index, _ = await live.wait_for(SessionUpdated, start=ready + 1)
    errors = [e for e in live.events[: index + 1] if isinstance(e, ProviderErrorEvent)]
    _fail_unless(not errors, f"update_session() caused errors: {errors!r}")
    ctx.exercise(Capability.SESSION_UPDATE)


async def check_item_deletion(ctx: CheckContext) -> None:
    """delete_item() removes a conversation item and the provider reports ItemDeleted."""
    live = await ctx.open()
    ctx.require(Capability.ITEM_DELETION)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to create an item")
    await live.provider.send_text("Forget this message.", respond=False)
    _, added = await live.wait_for(ItemAdded, lambda e: e.item.role is Role.USER)
    await live.provider.delete_item(added.item.item_id)
    await live.wait_for(ItemDeleted, lambda e: e.item_id == added.item.item_id)
    ctx.exercise(Capability.ITEM_DELETION)


_NOTE: Final = "The user's name is Ada Lovelace."


def _context_responder(turn: FakeTurn) -> FakeReply:
    seen = "Ada Lovelace" in json.dumps(turn.history)
    return FakeReply(text="Hello Ada." if seen else "I do not know your name.")


async def check_context_injection(ctx: CheckContext) -> None:
    """add_message() adds context without starting a response, and the model sees it.

    No ResponseStarted or ProviderErrorEvent follows add_message(); with TEXT_INPUT, the
    next response's input (as the fake receives it) contains the injected text.
    """
    live = await ctx.open(script=FakeScript(responder=_context_responder))
    ctx.require(Capability.CONTEXT_INJECTION)
    ready, _ = await live.wait_for(SessionReady)
    await live.provider.add_message(_NOTE, role=Role.SYSTEM)
    await live.settle()
    unexpected = [
        e
        for e in live.events
        if isinstance(e, ResponseStarted | ProviderErrorEvent | SessionClosed)
    ]
    _fail_unless(not unexpected, f"add_message() was followed by {unexpected!r}")
    if Capability.TEXT_INPUT in ctx.capabilities:
        await live.provider.send_text("What is my name?")
        text = _check_text(ctx, await _finish_response(live, ready + 1))
        _fail_unless(
            "Hello Ada." in text, f"the injected context did not reach the model: {text!r}"
        )
    ctx.exercise(Capability.CONTEXT_INJECTION)


async def check_recorded_audio(ctx: CheckContext) -> None:
    """send_audio_message() adds a whole utterance; create_response() then answers it."""
    session = SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL))
    live = await ctx.open(session)
    ctx.require(Capability.RECORDED_AUDIO)
    await live.wait_for(SessionReady)
    await live.provider.send_audio_message(ctx.speech(live.provider.input_format))
    await live.provider.create_response()
    response = await _finish_response(live, 0)
    _check_audio(ctx, response, live.provider.output_format)
    _check_text(ctx, response, require=False)
    ctx.exercise(Capability.RECORDED_AUDIO)


_BASE_CHECKS: Final = (
    ConformanceCheck("connect", check_connect),
    ConformanceCheck("disconnect", check_disconnect),
    ConformanceCheck(
        "text_turn",
        check_text_turn,
        frozenset({Capability.TEXT_INPUT, Capability.OUTPUT_TRANSCRIPTION}),
    ),
    ConformanceCheck("text_output", check_text_output, frozenset({Capability.TEXT_OUTPUT})),
    ConformanceCheck(
        "audio_output",
        check_audio_output,
        frozenset({Capability.AUDIO_OUTPUT, Capability.OUTPUT_TRANSCRIPTION}),
    ),
    ConformanceCheck(
        "audio_turn",
        check_audio_turn,
        frozenset({Capability.AUDIO_INPUT, Capability.SERVER_VAD, Capability.SPEECH_EVENTS}),
    ),
    ConformanceCheck(
        "semantic_vad_turn",
        check_semantic_vad_turn,
        frozenset({Capability.AUDIO_INPUT, Capability.SEMANTIC_VAD}),
    ),
    ConformanceCheck(
        "manual_turn",
        check_manual_turn,
        frozenset({Capability.AUDIO_INPUT, Capability.MANUAL_TURNS}),
    ),
    ConformanceCheck(
        "input_transcription",
        check_input_transcription,
        frozenset({Capability.INPUT_TRANSCRIPTION}),
    ),
    ConformanceCheck("interruption", check_interruption, frozenset({Capability.INTERRUPTION})),
    ConformanceCheck("truncation", check_truncation, frozenset({Capability.TRUNCATION})),
    ConformanceCheck(
        "tool_round_trip", check_tool_round_trip, frozenset({Capability.FUNCTION_CALLING})
    ),
    ConformanceCheck("usage", check_usage, frozenset({Capability.USAGE})),
    ConformanceCheck("input_validation", check_input_validation),
    ConformanceCheck("recoverable_error", check_recoverable_error),
    ConformanceCheck("event_ordering", check_event_ordering),
    ConformanceCheck(
        "session_update", check_session_update, frozenset({Capability.SESSION_UPDATE})
    ),
    ConformanceCheck("item_deletion", check_item_deletion, frozenset({Capability.ITEM_DELETION})),
    ConformanceCheck(
        "context_injection", check_context_injection, frozenset({Capability.CONTEXT_INJECTION})
    ),
    ConformanceCheck(
        "recorded_audio", check_recorded_audio, frozenset({Capability.RECORDED_AUDIO})
    ),
)

_COVERED: Final = frozenset().union(*(check.covers for check in _BASE_CHECKS))


def _uncovered(declared: Collection[Capability]) -> frozenset[Capability]:
    return frozenset(declared) - _COVERED


def _capability_verdict(
    declared: frozenset[Capability], results: Sequence[CheckResult]
) -> CheckResult:
    """Turn the other checks' results into the capabilities-truthfulness result."""
    verified = frozenset().union(*(r.exercised for r in results))
    undeclared = frozenset().union(*(r.undeclared for r in results))
    by_name = {r.check: r for r in results}
    contradicted: list[str] = []
    unverified: list[str] = []
    for capability in sorted(declared & _COVERED - verified, key=lambda c: c.value):
        covering = [c.name for c in _BASE_CHECKS if capability in c.covers and c.name in by_name]
        failed = [n for n in covering if by_name[n].outcome is Outcome.FAILED]
        if failed:
            contradicted.append(f"{capability.value} ({', '.join(failed)} failed)")
        elif covering:
            why = "; ".join(
                f"{n}: {by_name[n].detail or by_name[n].outcome.value}" for n in covering
            )
            unverified.append(f"{capability.value} ({why})")
        else:
            unverified.append(f"{capability.value} (not checked in this run)")
    notes = [f"verified: {', '.join(sorted(c.value for c in verified)) or 'none'}"]
    if unverified:
        notes.append(f"declared but not exercised: {', '.join(unverified)}")
    uncovered = _uncovered(declared)
    if uncovered:
        notes.append(f"no check covers: {', '.join(sorted(c.value for c in uncovered))}")
    if undeclared:
        notes.append(f"works but undeclared: {', '.join(sorted(c.value for c in undeclared))}")
    if contradicted:
        return CheckResult(
            check="capabilities",
            outcome=Outcome.FAILED,
            detail=f"declared but shown not to work: {', '.join(contradicted)}; "
            + "; ".join(notes),
            undeclared=undeclared,
        )
    return CheckResult(
        check="capabilities",
        outcome=Outcome.PASSED,
        detail="; ".join(notes),
        exercised=verified & declared,
        undeclared=undeclared,
    )


async def check_capabilities(ctx: CheckContext) -> None:
    """Declared capabilities are truthful: none is contradicted by a failing check.

    Runs every other check; a declared capability whose checks failed fails this one.
    Capabilities that were declared but not exercised (checks skipped), that no check
    covers, or that worked without being declared are reported in the detail.
    """
    declared = await ctx.capabilities_of_provider()
    results = [await check.evaluate(ctx.harness) for check in _BASE_CHECKS]
    verdict = _capability_verdict(declared, results)
    if verdict.outcome is Outcome.FAILED:
        raise CheckFailed(verdict.detail)
    ctx.notes.append(verdict.detail)


CONFORMANCE_CHECKS: Final[tuple[ConformanceCheck, ...]] = (
    *_BASE_CHECKS,
    ConformanceCheck("capabilities", check_capabilities),
)
"""Every check of the suite, in the order :func:`check_provider` runs them."""


async def check_provider(
    harness: ProviderHarness, checks: Iterable[ConformanceCheck] = CONFORMANCE_CHECKS
) -> ConformanceReport:
    """Run ``checks`` (default: all) against ``harness``, one after another.

    The ``capabilities`` check is computed from the other results rather than by
    running them again. Never raises for a provider's misbehaviour: read the report.

    Raises:
        CheckFailed: only if the harness cannot build a provider even to read its
            declared capabilities.
    """
    selected = list(checks)
    results: list[CheckResult] = []
    for check in selected:
        if check.function is check_capabilities:
            continue
        results.append(await check.evaluate(harness))
    probe = CheckContext(harness)
    try:
        declared = await probe.capabilities_of_provider()
    except CheckSkipped as exc:
        raise CheckFailed(f"harness {harness.name!r} cannot build a provider: {exc}") from exc
    finally:
        await probe.aclose()
    verdict = _capability_verdict(declared, results)
    ordered = iter(results)
    final = [
        verdict if check.function is check_capabilities else next(ordered) for check in selected
    ]
    return ConformanceReport(harness=harness.name, capabilities=declared, results=tuple(final))


def conformance_tests(
    *harnesses: ProviderHarness,
) -> Callable[[ProviderHarness, ConformanceCheck], Coroutine[Any, Any, None]]:
    """A pytest test function running every check against every harness.

    Assign it to a ``test_*`` name in a test module::

        test_my_provider = conformance_tests(my_harness())

    Test ids are ``<harness>-<check>``. Needs pytest and pytest-asyncio. The
    equivalent explicit pattern is
    ``@pytest.mark.parametrize("check", CONFORMANCE_CHECKS, ids=lambda c: c.name)``
    with ``await check.run(harness)`` as the body.
    """
    import pytest

    cases = [
        pytest.param(harness, check, id=f"{harness.name}-{check.name}")
        for harness in harnesses
        for check in CONFORMANCE_CHECKS
    ]

    @pytest.mark.asyncio
    @pytest.mark.parametrize(("harness", "check"), cases)
    async def test_provider_conformance(harness: ProviderHarness, check: ConformanceCheck) -> None:
        await check.run(harness)

    return test_provider_conformance


# --- built-in harnesses ----------------------------------------------------------------------

_FAKE_KEY: Final = "sk-conformance-fake-key"


async def _commit_empty_buffer(provider: BaseProvider) -> None:
    """OpenAI family: committing an empty input buffer is a recoverable error."""
    await provider.commit_audio()


def _fake_openai_config(script: FakeScript) -> FakeOpenAIConfig:
    return FakeOpenAIConfig(responder=script.responder, paced=script.paced)


def openai_harness(*, timeout: float = 10.0) -> ProviderHarness:
    """:class:`~voxengine.providers.OpenAIProvider` against the fake over real sockets."""

    @contextlib.asynccontextmanager
    async def make(session: SessionConfig, script: FakeScript) -> AsyncIterator[BaseProvider]:
        config = _fake_openai_config(script)
        async with run_fake_openai_server(config, pace_seconds=script.pace_seconds) as server:
            yield OpenAIProvider(
                OpenAIConfig(api_key=_FAKE_KEY, base_url=server.url, session=session)
            )

    return ProviderHarness(
        name="openai", make_provider=make, trigger_error=_commit_empty_buffer, timeout=timeout
    )


def azure_harness(*, timeout: float = 10.0) -> ProviderHarness:
    """:class:`~voxengine.providers.AzureOpenAIProvider` (GA ``/openai/v1/realtime`` URL,
    ``api-key`` header) against the fake over real sockets."""

    @contextlib.asynccontextmanager
    async def make(session: SessionConfig, script: FakeScript) -> AsyncIterator[BaseProvider]:
        config = _fake_openai_config(script)
        async with run_fake_openai_server(config, pace_seconds=script.pace_seconds) as server:
            endpoint = server.url.removesuffix("/v1").replace("ws://", "http://")
            yield AzureOpenAIProvider(
                AzureOpenAIConfig(
                    api_key=_FAKE_KEY, base_url=endpoint, model="gpt-realtime", session=session
                )
            )

    return ProviderHarness(
        name="azure", make_provider=make, trigger_error=_commit_empty_buffer, timeout=timeout
    )


def mock_harness(*, timeout: float = 10.0) -> ProviderHarness:
    """:class:`~voxengine.providers.MockProvider` with its in-memory fake.

    Paced scripts use ``MockConfig.paced_seconds``, so replies can be interrupted.
    """

    @contextlib.asynccontextmanager
    async def make(session: SessionConfig, script: FakeScript) -> AsyncIterator[BaseProvider]:
        yield MockProvider(
            MockConfig(
                api_key=_FAKE_KEY,
                responder=script.responder,
                session=session,
                paced_seconds=script.pace_seconds if script.paced else None,
            )
        )

    return ProviderHarness(
        name="mock", make_provider=make, trigger_error=_commit_empty_buffer, timeout=timeout
    )


def gemini_harness(*, timeout: float = 10.0) -> ProviderHarness:
    """:class:`~voxengine.providers.GeminiProvider` against the fake Gemini Live server over
    real sockets. Gemini has no recoverable in-band error to provoke, so that check skips."""
    from voxengine.providers.gemini import GeminiConfig, GeminiProvider
    from voxengine.testing._fake_gemini import FakeGeminiConfig
    from voxengine.testing._gemini_server import run_fake_gemini_server

    @contextlib.asynccontextmanager
    async def make(session: SessionConfig, script: FakeScript) -> AsyncIterator[BaseProvider]:
        config = FakeGeminiConfig(responder=script.responder, paced=script.paced)
        async with run_fake_gemini_server(config, pace_seconds=script.pace_seconds) as server:
            yield GeminiProvider(
                GeminiConfig(api_key=_FAKE_KEY, base_url=server.url, session=session)
            )

    return ProviderHarness(name="gemini", make_provider=make, timeout=timeout)


def pipeline_harness(*, timeout: float = 10.0) -> ProviderHarness:
    """:class:`~voxengine.providers.PipelineProvider` with scripted speech recognition and
    language model (:mod:`voxengine.testing._scripted_stages`) and the real offline
    espeak-ng voice, so the checks exercise the pipeline itself deterministically."""
    from voxengine.providers.pipeline import EspeakTTS, PipelineConfig, PipelineProvider
    from voxengine.testing._scripted_stages import ScriptedLLM, ScriptedSTT

    @contextlib.asynccontextmanager
    async def make(session: SessionConfig, script: FakeScript) -> AsyncIterator[BaseProvider]:
        delay = script.pace_seconds if script.paced else 0.0
        yield PipelineProvider(
            PipelineConfig(
                session=session,
                stt=ScriptedSTT(),
                llm=ScriptedLLM(script.responder, delay=delay),
                tts=EspeakTTS(),
                vad_engine="energy",  # the suite's speech-like audio is not speech
            )
        )

    return ProviderHarness(name="pipeline", make_provider=make, timeout=timeout)


def builtin_harnesses() -> tuple[ProviderHarness, ...]:
    """Harnesses for every built-in provider that has a fake."""
    return (
        openai_harness(),
        azure_harness(),
        gemini_harness(),
        mock_harness(),
        pipeline_harness(),
    )


# --- docs: the capability matrix -------------------------------------------------------------

_MATRIX_HEADER: Final = """\
# Providers and their capabilities

<!-- Generated by `python -m voxengine.testing.conformance --matrix docs/providers.md`
     from the capabilities each registered provider declares. Do not edit by hand. -->

A capability is a promise: the conformance suite (`voxengine.testing.conformance`)
checks that every declared capability works against the provider's fake server, and a
mode a provider lacks is refused with `ConfigError` before any I/O.

Setup, keys and limits of the built-in providers: [OpenAI](providers/openai.md),
[Azure OpenAI](providers/azure.md), [Gemini Live](providers/gemini.md), the
[pipeline](providers/pipeline.md), [Anthropic Claude](providers/anthropic.md) and the
[mock](providers/mock.md). `voxengine providers` prints what each needs.
"""


def capability_matrix_markdown(names: Sequence[str] | None = None) -> str:
    """The provider x capability table, as a Markdown document.

    Rows are capabilities (in :class:`~voxengine.providers.Capability` order),
    columns providers (``names``, default: every registered provider, sorted).
    """
    providers = list(names) if names is not None else list_providers()
    classes = [get_provider(name) for name in providers]
    header = "| capability | " + " | ".join(f"`{n}`" for n in providers) + " |"
    rule = "|---|" + "|".join(":-:" for _ in providers) + "|"
    rows = [
        f"| `{cap.value}` | "
        + " | ".join("yes" if cap in cls.capabilities else "—" for cls in classes)
        + " |"
        for cap in Capability
    ]
    return "\n".join([_MATRIX_HEADER, header, rule, *rows]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m voxengine.testing.conformance``: print the matrix or run the suite.

    Returns the exit status: 0 on success, 1 if a conformance run failed.
    """
    parser = argparse.ArgumentParser(
        prog="python -m voxengine.testing.conformance",
        description="Provider conformance suite and capability matrix.",
    )
    parser.add_argument(
        "--matrix",
        nargs="?",
        const="-",
        metavar="PATH",
        help="write the provider x capability Markdown table to PATH (default: stdout)",
    )
    builtins = {h.name: h for h in builtin_harnesses()}
    parser.add_argument(
        "--run", choices=sorted(builtins), action="append", help="run the suite on a provider"
    )
    args = parser.parse_args(argv)
    if args.matrix is None and not args.run:
        parser.error("give --matrix and/or --run NAME")
    if args.matrix == "-":
        sys.stdout.write(capability_matrix_markdown())
    elif args.matrix is not None:
        with open(args.matrix, "w", encoding="utf-8") as out:
            out.write(capability_matrix_markdown())
    status = 0
    for name in args.run or ():
        report = asyncio.run(check_provider(builtins[name]))
        print(report.summary())
        status = status or (0 if report.ok else 1)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
