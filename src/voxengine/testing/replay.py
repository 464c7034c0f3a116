"""Turn a recorded session into a test: providers that replay a recording.

Record a session (``voxengine chat --record bug.jsonl`` or
:class:`voxengine.recording.Recorder`), commit the file, and drive your application
against it with no network and no key::

    from voxengine.testing.replay import ReplayFactory

    @pytest.fixture
    def replay():
        with ReplayFactory() as factory:   # checks every replay when the test ends
            yield factory

    async def test_the_field_bug(replay):
        provider = replay("tests/recordings/bug.jsonl", session=my_config.session_config())
        engine = VoiceEngine(my_config, provider=provider)
        async with engine:
            await engine.send_text("book a table for two")
            await engine.events.wait_for(ResponseDone, timeout=5)

The replayed server frames reach the real client protocol; every frame your code
sends is compared with the recording and a difference raises
:class:`~voxengine.replay.ReplayDivergence`.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, final

from voxengine.config import SessionConfig
from voxengine.providers.openai import OpenAIConfig, OpenAIProvider
from voxengine.providers.realtime import RealtimeProvider
from voxengine.record.recording import Recording, wrap_provider_connector
from voxengine.record.replay import DEFAULT_MATCH, FrameMatch, ReplayConnector
from voxengine.transport import Connector

__all__ = [
    "REPLAY_KEY",
    "ReplayFactory",
    "check_replay",
    "replay_connector",
    "replay_provider",
]

_CONNECTORS: weakref.WeakKeyDictionary[RealtimeProvider, ReplayConnector] = (
    weakref.WeakKeyDictionary()
)

#: The key replayed providers are built with; it is never sent anywhere.
REPLAY_KEY = "sk-replay-no-network"


def replay_provider(
    recording: Recording | str | Path,
    *,
    session: SessionConfig | None = None,
    model: str | None = None,
    match: FrameMatch | None = DEFAULT_MATCH,
    strict: bool = True,
    timing: Literal["fast", "recorded"] = "fast",
    provider: RealtimeProvider | None = None,
) -> RealtimeProvider:
    """A provider whose connections replay ``recording``.

    Args:
        recording: a recording or the path of a ``.jsonl`` file.
        session: the session settings the recorded client used (they are part of the
            handshake the client sends, which is compared).
        model: the model the recorded client asked for.
        match: how client frames are compared (``None``: not at all).
        strict: deliver server frames only after the recorded client frames before
            them (deterministic).
        timing: ``"fast"`` or ``"recorded"`` pace.
        provider: replay through this (unconnected) realtime provider instead of a
            new :class:`~voxengine.providers.OpenAIProvider`, e.g. an Azure one.

    Raises:
        RecordingError: the file is missing or malformed.
    """
    connector = ReplayConnector(recording, match=match, strict=strict, timing=timing)
    if provider is None:
        config = OpenAIConfig(api_key=REPLAY_KEY, model=model, session=session or SessionConfig())
        provider = OpenAIProvider(config)
    wrap_provider_connector(provider, _serving(connector))
    _CONNECTORS[provider] = connector
    return provider


def _serving(connector: ReplayConnector) -> Callable[[Connector], Connector]:
    def wrap(_network: Connector) -> Connector:
        return connector

    return wrap


def replay_connector(provider: RealtimeProvider) -> ReplayConnector:
    """The :class:`ReplayConnector` behind a provider from :func:`replay_provider`.

    Raises:
        KeyError: ``provider`` does not replay a recording.
    """
    return _CONNECTORS[provider]


def check_replay(provider: RealtimeProvider, *, complete: bool = True) -> None:
    """Raise the replay's first divergence (see :meth:`ReplayConnector.check`)."""
    replay_connector(provider).check(complete=complete)


@final
class ReplayFactory:
    """Makes replaying providers and checks them all on exit (a fixture's body).

    Calling the factory takes the arguments of :func:`replay_provider`. On leaving
    the ``with`` block without an exception, every replay is checked with
    ``complete`` (default True): a divergence, or a recorded client frame that was
    never sent, raises :class:`~voxengine.replay.ReplayDivergence`.
    """

    def __init__(self, *, complete: bool = True) -> None:
        self.complete = complete
        self.providers: list[RealtimeProvider] = []

    def __call__(
        self,
        recording: Recording | str | Path,
        *,
        session: SessionConfig | None = None,
        model: str | None = None,
        match: FrameMatch | None = DEFAULT_MATCH,
        strict: bool = True,
        timing: Literal["fast", "recorded"] = "fast",
    ) -> RealtimeProvider:
        """A replaying provider, checked when the factory closes."""
        provider = replay_provider(
            recording, session=session, model=model, match=match, strict=strict, timing=timing
        )
        self.providers.append(provider)
        return provider

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            for provider in self.providers:
                check_replay(provider, complete=self.complete)
