"""Harnesses for the built-in providers, each wired to its fake server."""

from __future__ import annotations

import contextlib
from collections.abc import (
    AsyncIterator,
)
from typing import Final

from voxengine.config import SessionConfig
from voxengine.providers.base import BaseProvider
from voxengine.providers.openai import (
    AzureOpenAIConfig,
    AzureOpenAIProvider,
    OpenAIConfig,
    OpenAIProvider,
)
from voxengine.testing.conformance.harness import FakeScript, ProviderHarness
from voxengine.testing.fakes.openai import (
    FakeOpenAIConfig,
    run_fake_openai_server,
)
from voxengine.testing.mock import MockConfig, MockProvider

__all__ = [
    "azure_harness",
    "builtin_harnesses",
    "gemini_harness",
    "mock_harness",
    "openai_harness",
    "pipeline_harness",
]


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
    from voxengine.testing.fakes.gemini import FakeGeminiConfig, run_fake_gemini_server

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
