"""The suite: every check, the capability verdict, :func:`check_provider` and the pytest
adapter :func:`conformance_tests`."""

from __future__ import annotations

from collections.abc import (
    Callable,
    Collection,
    Coroutine,
    Iterable,
    Sequence,
)
from typing import Any, Final

from voxengine.providers.base import Capability
from voxengine.testing.conformance.checks_session import (
    check_context_injection,
    check_event_ordering,
    check_input_validation,
    check_item_deletion,
    check_recorded_audio,
    check_recoverable_error,
    check_session_update,
    check_tool_round_trip,
    check_usage,
)
from voxengine.testing.conformance.checks_turns import (
    check_audio_output,
    check_audio_turn,
    check_connect,
    check_disconnect,
    check_input_transcription,
    check_interruption,
    check_manual_turn,
    check_semantic_vad_turn,
    check_text_output,
    check_text_turn,
    check_truncation,
)
from voxengine.testing.conformance.harness import ProviderHarness
from voxengine.testing.conformance.report import (
    CheckFailed,
    CheckResult,
    CheckSkipped,
    ConformanceReport,
    Outcome,
)
from voxengine.testing.conformance.runner import CheckContext, ConformanceCheck

__all__ = ["CONFORMANCE_CHECKS", "check_capabilities", "check_provider", "conformance_tests"]


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
