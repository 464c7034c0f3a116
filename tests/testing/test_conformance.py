"""The provider conformance suite: built-in providers pass it, broken providers fail it."""

from __future__ import annotations

import contextlib
import dataclasses
import unittest
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import ClassVar

import pytest

from voxengine.audio.format import AudioFormat
from voxengine.config import Modality, SessionConfig
from voxengine.events import (
    AudioDelta,
    Event,
    Interrupted,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SessionClosed,
    SessionReady,
    TextDelta,
    TextDone,
    Usage,
)
from voxengine.providers import BaseProvider, Capability, OpenAIConfig, OpenAIProvider
from voxengine.providers.openai import OPENAI_CAPABILITIES
from voxengine.testing import FakeOpenAIConfig, run_fake_openai_server
from voxengine.testing.conformance import (
    CONFORMANCE_CHECKS,
    CheckFailed,
    CheckSkipped,
    ConformanceCheck,
    FakeScript,
    HarnessLimitation,
    Outcome,
    ProviderHarness,
    SkipKind,
    builtin_harnesses,
    capability_matrix_markdown,
    check_provider,
    conformance_tests,
    event_order_violations,
    main,
    mock_harness,
    openai_harness,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "providers.md"

# -- every check against every built-in provider (ids like ``openai-text_turn``) ---------------

test_builtin_provider_conforms = conformance_tests(*builtin_harnesses())


async def test_report_of_a_builtin_provider_verifies_every_declared_capability() -> None:
    report = await check_provider(openai_harness())
    assert report.ok, report.summary()
    assert [r.check for r in report.results] == [c.name for c in CONFORMANCE_CHECKS]
    verdict = report.result("capabilities")
    assert verdict.exercised == OPENAI_CAPABILITIES
    assert report.uncovered == frozenset()


async def test_a_harness_limitation_is_a_skip_with_its_reason() -> None:
    base = mock_harness()

    @contextlib.asynccontextmanager
    async def unpaced(session: SessionConfig, script: FakeScript) -> AsyncIterator[BaseProvider]:
        if script.paced:
            raise HarnessLimitation("this fake cannot stream in real time")
        async with base.make_provider(session, script) as provider:
            yield provider

    report = await check_provider(dataclasses.replace(base, make_provider=unpaced))
    assert report.ok, report.summary()
    skipped = report.result("interruption")
    assert skipped.outcome is Outcome.SKIPPED
    assert skipped.skip_kind is SkipKind.HARNESS
    assert skipped.detail == "harness: this fake cannot stream in real time"
    verdict = report.result("capabilities")
    assert "declared but not exercised: interruption" in verdict.detail
    assert Capability.INTERRUPTION not in verdict.exercised


# -- a delegating provider, and broken variants of it ------------------------------------------


class Delegating(BaseProvider):
    """Forwards everything to an OpenAIProvider; subclasses break one promise."""

    name: ClassVar[str] = "delegating"
    capabilities: ClassVar[frozenset[Capability]] = OPENAI_CAPABILITIES

    def __init__(self, inner: OpenAIProvider) -> None:
        super().__init__(inner.config)
        self.inner = inner

    @property
    def input_format(self) -> AudioFormat:
        return self.inner.input_format

    @property
    def output_format(self) -> AudioFormat:
        return self.inner.output_format

    @property
    def is_connected(self) -> bool:
        return self.inner.is_connected

    async def connect(self, retry_count: int = 3) -> None:
        await self.inner.connect(retry_count)

    async def disconnect(self) -> None:
        await self.inner.disconnect()

    async def send_audio(self, audio: bytes, *, sample_rate: int | None = None) -> None:
        await self.inner.send_audio(audio, sample_rate=sample_rate)

    async def commit_audio(self) -> None:
        await self.inner.commit_audio()

    async def clear_audio(self) -> None:
        await self.inner.clear_audio()

    async def send_text(self, text: str, *, respond: bool = True) -> None:
        await self.inner.send_text(text, respond=respond)

    async def create_response(
        self,
        *,
        instructions: str | None = None,
        modalities: tuple[Modality, ...] | None = None,
    ) -> None:
        await self.inner.create_response(instructions=instructions, modalities=modalities)

    async def cancel_response(self) -> None:
        await self.inner.cancel_response()

    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        return await self.inner.interrupt(played, item_id=item_id, cancel=cancel)

    async def send_tool_result(self, call_id: str, output: str, *, respond: bool = True) -> None:
        await self.inner.send_tool_result(call_id, output, respond=respond)

    async def update_session(self, session: SessionConfig) -> None:
        await self.inner.update_session(session)

    async def add_message(
        self, text: str, *, role: Role = Role.SYSTEM, item_id: str | None = None
    ) -> None:
        await self.inner.add_message(text, role=role, item_id=item_id)

    async def delete_item(self, item_id: str) -> None:
        await self.inner.delete_item(item_id)

    async def send_audio_message(self, audio: bytes) -> None:
        await self.inner.send_audio_message(audio)

    def events(self) -> AsyncIterator[Event]:
        return self.rewrite(self.inner.events())

    async def rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        async for event in events:
            yield event


class LateStart(Delegating):
    """Out of order: holds ResponseStarted back until after the response's first delta."""

    async def rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        held: ResponseStarted | None = None
        async for event in events:
            if isinstance(event, ResponseStarted):
                held = event
                continue
            yield event
            if held is not None and isinstance(event, AudioDelta | TextDelta):
                yield held
                held = None


class DeafToInterrupts(Delegating):
    """Lies about INTERRUPTION: reports Interrupted but lets the response run on."""

    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        return await self.inner.interrupt(played, item_id=item_id, cancel=False)


class NoUsage(Delegating):
    """Lies about USAGE: every ResponseDone comes without usage."""

    async def rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        async for event in events:
            yield (
                dataclasses.replace(event, usage=None) if isinstance(event, ResponseDone) else event
            )


class RaggedAudio(Delegating):
    """Breaks AUDIO_OUTPUT: drops the last byte of every audio chunk (half frames)."""

    async def rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        async for event in events:
            if isinstance(event, AudioDelta):
                event = dataclasses.replace(event, audio=event.audio[:-1])
            yield event


class Chatty(Delegating):
    """Keeps talking after SessionClosed."""

    async def rewrite(self, events: AsyncIterator[Event]) -> AsyncIterator[Event]:
        async for event in events:
            yield event
            if isinstance(event, SessionClosed):
                yield SessionReady(session_id="zombie", model="gpt-realtime")


class TextOnly(Delegating):
    """Declares only text in and audio out: the other checks must skip, not pass."""

    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.TEXT_INPUT, Capability.AUDIO_OUTPUT}
    )


def harness_for(
    cls: Callable[[OpenAIProvider], Delegating], *, trigger: bool = True
) -> ProviderHarness:
    @contextlib.asynccontextmanager
    async def make(session: SessionConfig, script: FakeScript) -> AsyncIterator[BaseProvider]:
        fake = FakeOpenAIConfig(responder=script.responder, paced=script.paced)
        async with run_fake_openai_server(fake, pace_seconds=script.pace_seconds) as server:
            config = OpenAIConfig(api_key="sk-test", base_url=server.url, session=session)
            yield cls(OpenAIProvider(config))

    async def commit_empty(provider: BaseProvider) -> None:
        await provider.commit_audio()

    return ProviderHarness(
        name=getattr(cls, "__name__", "broken"),
        make_provider=make,
        trigger_error=commit_empty if trigger else None,
        timeout=3.0,
    )


def checks(*names: str) -> list[ConformanceCheck]:
    selected = [c for c in CONFORMANCE_CHECKS if c.name in names]
    assert len(selected) == len(names)
    return selected


async def test_an_honest_wrapper_passes() -> None:
    report = await check_provider(harness_for(Delegating))
    assert report.ok, report.summary()


@pytest.mark.parametrize(
    ("cls", "selected", "failing"),
    [
        pytest.param(
            LateStart,
            ("text_turn", "event_ordering", "connect", "capabilities"),
            {"text_turn", "event_ordering", "capabilities"},
            id="out_of_order",
        ),
        pytest.param(
            DeafToInterrupts,
            ("interruption", "text_turn", "capabilities"),
            {"interruption", "capabilities"},
            id="lies_about_interruption",
        ),
        pytest.param(NoUsage, ("usage", "capabilities"), {"usage", "capabilities"}, id="no_usage"),
        pytest.param(
            RaggedAudio,
            ("audio_output", "truncation", "capabilities"),
            {"audio_output", "truncation", "capabilities"},
            id="half_frames",
        ),
        pytest.param(
            Chatty,
            ("disconnect", "event_ordering", "connect"),
            {"disconnect", "event_ordering"},
            id="events_after_close",
        ),
    ],
)
async def test_a_broken_provider_fails_the_relevant_checks(
    cls: type[Delegating], selected: tuple[str, ...], failing: set[str]
) -> None:
    report = await check_provider(harness_for(cls), checks(*selected))
    assert {r.check for r in report.failed} == failing, report.summary()
    assert not report.ok
    for result in report.failed:
        assert result.detail  # says what went wrong


async def test_a_lie_fails_the_check_when_run_as_a_test() -> None:
    (check,) = checks("interruption")
    with pytest.raises(CheckFailed, match=r"after interrupt\(\) the response") as info:
        await check.run(harness_for(DeafToInterrupts))
    assert isinstance(info.value, AssertionError)


async def test_undeclared_capabilities_are_skipped_with_reasons_never_passed() -> None:
    report = await check_provider(harness_for(TextOnly))
    assert report.ok, report.summary()
    for name in ("audio_turn", "manual_turn", "interruption", "tool_round_trip", "usage"):
        result = report.result(name)
        assert result.outcome is Outcome.SKIPPED, name
        assert result.skip_kind is SkipKind.CAPABILITY
        assert "does not declare" in result.detail
    assert report.result("text_output").outcome is Outcome.SKIPPED
    assert report.result("audio_output").outcome is Outcome.PASSED
    verdict = report.result("capabilities")
    assert verdict.exercised == TextOnly.capabilities
    assert "works but undeclared: output_transcription" in verdict.detail
    with pytest.raises(unittest.SkipTest):  # pytest and unittest report it as a skip
        await checks("usage")[0].run(harness_for(TextOnly))


async def test_a_harness_without_an_error_trigger_skips_that_check() -> None:
    (check,) = checks("recoverable_error")
    result = await check.evaluate(harness_for(Delegating, trigger=False))
    assert result.outcome is Outcome.SKIPPED
    assert result.skip_kind is SkipKind.HARNESS
    with pytest.raises(CheckSkipped, match="trigger_error"):
        await check.run(harness_for(Delegating, trigger=False))


async def test_a_provider_method_that_raises_is_a_failure_not_a_crash() -> None:
    class Broken(Delegating):
        async def send_text(self, text: str, *, respond: bool = True) -> None:
            raise RuntimeError("boom")

    result = await checks("text_turn")[0].evaluate(harness_for(Broken))
    assert result.outcome is Outcome.FAILED
    assert result.detail == "raised RuntimeError: boom"


# -- event ordering invariants -------------------------------------------------------------------


def _audio(rid: str) -> AudioDelta:
    return AudioDelta(response_id=rid, item_id="i1", audio=b"\0\0")


def test_event_order_of_a_well_formed_session() -> None:
    events: list[Event] = [
        SessionReady(session_id="s", model="m"),
        ResponseStarted(response_id="r1"),
        _audio("r1"),
        TextDone(response_id="r1", item_id="i1", text="hi"),
        ResponseDone(response_id="r1", status=ResponseStatus.COMPLETED, usage=Usage()),
        SessionClosed(code=1000),
    ]
    assert event_order_violations(events) == []


@pytest.mark.parametrize(
    ("events", "problem"),
    [
        ([], "no events"),
        ([SessionClosed(code=1000)], "not SessionReady"),
        (
            [SessionReady(session_id="s", model="m"), _audio("r1")],
            "outside any ResponseStarted",
        ),
        (
            [
                SessionReady(session_id="s", model="m"),
                ResponseStarted(response_id="r1"),
                ResponseDone(response_id="r1", status=ResponseStatus.CANCELLED),
                _audio("r1"),
            ],
            "after its ResponseDone",
        ),
        (
            [
                SessionReady(session_id="s", model="m"),
                ResponseStarted(response_id="r1"),
                _audio("r2"),
            ],
            "response 'r2' outside",
        ),
        (
            [
                SessionReady(session_id="s", model="m"),
                ResponseDone(response_id="r1", status=ResponseStatus.COMPLETED),
            ],
            "done before it started",
        ),
        (
            [
                SessionReady(session_id="s", model="m"),
                SessionClosed(code=1000),
                ResponseStarted(response_id="r1"),
            ],
            "events after SessionClosed",
        ),
    ],
    ids=["empty", "first", "delta_first", "delta_after_done", "wrong_id", "done_first", "closed"],
)
def test_event_order_violations(events: list[Event], problem: str) -> None:
    assert any(problem in p for p in event_order_violations(events)), event_order_violations(events)


# -- docs/providers.md -------------------------------------------------------------------------


def test_providers_doc_is_generated_from_the_registry() -> None:
    assert DOCS.read_text(encoding="utf-8") == capability_matrix_markdown(), (
        "docs/providers.md is stale: run "
        "python -m voxengine.testing.conformance --matrix docs/providers.md"
    )


def test_matrix_lists_declared_capabilities(tmp_path: Path) -> None:
    text = capability_matrix_markdown(["mock", "openai"])
    assert "| capability | `mock` | `openai` |" in text
    assert "| `usage` | yes | yes |" in text
    assert "| `temperature` | — | — |" in text
    out = tmp_path / "providers.md"
    assert main(["--matrix", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == capability_matrix_markdown()
