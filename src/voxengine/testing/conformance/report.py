"""Outcomes of the checks: pass, fail or a skip with its reason, and the report over a run."""

from __future__ import annotations

import enum
import unittest
from dataclasses import dataclass

from voxengine.providers.base import Capability

__all__ = ["CheckFailed", "CheckResult", "CheckSkipped", "ConformanceReport", "Outcome", "SkipKind"]


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
        from voxengine.testing.conformance.suite import _uncovered  # the suite imports us

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
