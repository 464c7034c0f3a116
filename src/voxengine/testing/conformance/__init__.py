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

The package, one module per concern: :mod:`.harness` (what a harness gives the suite),
:mod:`.report` (outcomes), :mod:`.runner` (running one check), :mod:`.scripts` (what the
fake is scripted to say), :mod:`.checks_turns` and :mod:`.checks_session` (the checks),
:mod:`.suite` (all checks, the capability verdict, the pytest adapter),
:mod:`.harnesses` (the built-in providers'), :mod:`.matrix` (the docs table) and
:mod:`.cli`.
"""

from __future__ import annotations

from voxengine.testing.conformance.checks_session import event_order_violations
from voxengine.testing.conformance.cli import main
from voxengine.testing.conformance.harness import (
    ErrorTrigger,
    FakeScript,
    HarnessLimitation,
    ProviderFactory,
    ProviderHarness,
)
from voxengine.testing.conformance.harnesses import (
    azure_harness,
    builtin_harnesses,
    mock_harness,
    openai_harness,
)
from voxengine.testing.conformance.matrix import capability_matrix_markdown
from voxengine.testing.conformance.report import (
    CheckFailed,
    CheckResult,
    CheckSkipped,
    ConformanceReport,
    Outcome,
    SkipKind,
)
from voxengine.testing.conformance.runner import (
    CheckContext,
    CheckFunction,
    ConformanceCheck,
    LiveProvider,
)
from voxengine.testing.conformance.suite import (
    CONFORMANCE_CHECKS,
    check_provider,
    conformance_tests,
)

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
