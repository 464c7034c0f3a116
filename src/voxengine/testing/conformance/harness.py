"""The harness: how the suite builds a provider wired to a scripted fake of its service."""

from __future__ import annotations

from collections.abc import (
    Awaitable,
    Callable,
)
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

from voxengine.config import SessionConfig
from voxengine.providers.base import BaseProvider
from voxengine.testing.fakes.openai import (
    Responder,
)

__all__ = ["ErrorTrigger", "FakeScript", "HarnessLimitation", "ProviderFactory", "ProviderHarness"]


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
