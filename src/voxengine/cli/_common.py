"""Engine set-up shared by the subcommands: the config the options describe, the
endpoint (a service, the bundled fake server, or the offline stack), tracing and
recording.

The options live in :mod:`._options` and failure reporting in :mod:`._errors`.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from voxengine.cli._errors import CliError
from voxengine.engine import VoiceEngine, VoiceEngineConfig
from voxengine.events import AudioDelta
from voxengine.providers.realtime import RealtimeProvider
from voxengine.providers.registry import get_provider
from voxengine.record.logs import trace_connector
from voxengine.record.recording import Recorder, wrap_provider_connector

__all__ = [
    "FAKE_KEY",
    "EngineSession",
    "build_config",
    "open_engine",
    "realtime_provider",
    "replayable_settings",
    "uses_default_provider",
]

#: The key the CLI gives the bundled fake server (it accepts any key).
FAKE_KEY = "sk-local-fake-server"


#: Settings recorded in a recording's header so that ``voxengine replay`` rebuilds
#: the same session (everything but credentials, endpoints and devices).
_REPLAYABLE = frozenset(
    {
        "provider",
        "mode",
        "model",
        "voice",
        "instructions",
        "temperature",
        "max_output_tokens",
        "output_modality",
        "input_transcription_model",
        "auto_respond",
        "barge_in",
        "vad_enabled",
        "vad_type",
        "vad_threshold",
        "vad_speech_start_ms",
        "vad_speech_end_ms",
        "vad_prefix_padding_ms",
        "vad_eagerness",
        "vad_engine",
    }
)


@dataclass(slots=True)
class EngineSession:
    """What :func:`open_engine` yields: the engine, its endpoint, and the recorder."""

    engine: VoiceEngine
    where: str
    recorder: Recorder | None


def replayable_settings(config: VoiceEngineConfig) -> dict[str, Any]:
    """The settings of ``config`` a replay needs to rebuild the same session."""
    return {f.name: getattr(config, f.name) for f in fields(config) if f.name in _REPLAYABLE}


def build_config(
    args: argparse.Namespace,
    *,
    base_url: str | None,
    api_key: str | None,
    settings: Mapping[str, Any],
) -> VoiceEngineConfig:
    """A :class:`VoiceEngineConfig` from the common options plus ``settings``."""
    return VoiceEngineConfig(
        provider=args.provider or "openai",
        mode=args.mode,
        model=args.model,
        base_url=base_url,
        api_key=api_key,
        voice=args.voice,
        instructions=args.instructions,
        **settings,
    )


def uses_default_provider(args: argparse.Namespace) -> bool:
    """True when the options name no provider, fake server or endpoint: the offline stack."""
    return args.provider is None and not args.fake and not args.base_url


@contextlib.asynccontextmanager
async def _endpoint(
    args: argparse.Namespace, fake_paced: bool
) -> AsyncIterator[tuple[str | None, str | None, str]]:
    """(base_url, api_key, description) of the service the options select."""
    provider = args.provider or "openai"
    get_provider(provider)  # an unknown name fails first, suggesting the closest
    if not args.fake:
        where = args.base_url or f"the {provider} service"
        yield args.base_url, None, where
        return
    if provider not in ("openai", "mock"):
        raise CliError(
            f"--fake serves the OpenAI protocol; it cannot stand in for --provider {provider}",
            hint="drop --provider, or use --provider openai",
        )
    if args.base_url:
        raise CliError("--fake and --base-url exclude each other")
    from voxengine.testing import FakeOpenAIConfig, run_fake_openai_server

    config = FakeOpenAIConfig(paced=fake_paced)
    async with run_fake_openai_server(config, pace_seconds=0.1 if fake_paced else 0.0) as server:
        yield server.url, FAKE_KEY, f"the bundled fake OpenAI server at {server.url}"


def _offline_engine(args: argparse.Namespace, settings: Mapping[str, Any]) -> EngineSession:
    """An engine on the default provider (the one ``demo`` uses), built by its one function."""
    from voxengine.cli._default import DEFAULT_PROVIDER_NAME, default_provider

    if getattr(args, "record", None):
        raise CliError(
            "--record needs a WebSocket provider: the offline stack sends no wire frames",
            hint="add --fake (or --provider openai with OPENAI_API_KEY) to record a session",
        )
    config = VoiceEngineConfig(
        provider=DEFAULT_PROVIDER_NAME,
        mode=args.mode,
        model=args.model,
        instructions=args.instructions,
        **settings,
    )
    chosen = default_provider(config.session_config(), voice=args.voice)
    engine = VoiceEngine(config, provider=chosen.provider)
    return EngineSession(engine=engine, where=chosen.banner, recorder=None)


@contextlib.asynccontextmanager
async def open_engine(
    args: argparse.Namespace,
    *,
    command: str,
    fake_paced: bool = False,
    extra_meta: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any],
) -> AsyncIterator[EngineSession]:
    """An unconnected engine for the common options, recorded and traced as asked.

    With no ``--provider``, ``--fake`` or ``--base-url`` the engine runs on the
    default provider (:func:`voxengine.cli._default.default_provider`, the same as
    ``demo``'s). The fake server (``--fake``) runs until the context exits; the
    recording is closed then too.

    Raises:
        ConfigError: invalid settings, unknown provider or missing key (exit code 2).
        CliError: ``--record`` with a provider that has no wire frames (exit code 2).
    """
    if uses_default_provider(args):
        yield _offline_engine(args, settings)
        return
    async with _endpoint(args, fake_paced) as (base_url, api_key, where):
        config = build_config(args, base_url=base_url, api_key=api_key, settings=settings)
        if args.provider == "pipeline" and not (base_url or args.model):
            from voxengine.cli._offline import offline_provider  # imports this module

            stack = offline_provider(config.session_config(), voice=args.voice)
            engine = VoiceEngine(config, provider=stack.provider)
            where = f"the offline pipeline ({stack.banner()}) {stack.note()}"
        else:
            engine = VoiceEngine(config)
        recorder: Recorder | None = None
        if getattr(args, "verbose", 0) >= 2:
            wrap_provider_connector(realtime_provider(engine), trace_connector)
        if getattr(args, "record", None):
            meta = {"command": command, "engine": replayable_settings(config), **(extra_meta or {})}
            recorder = Recorder(args.record, redact_audio=args.redact_audio, meta=meta)
            wrap_provider_connector(realtime_provider(engine), recorder.wrap)
            if args.record_audio:
                _record_output_audio(engine, recorder)
        try:
            yield EngineSession(engine=engine, where=where, recorder=recorder)
        finally:
            if recorder is not None:
                recorder.close()


def realtime_provider(engine: VoiceEngine) -> RealtimeProvider:
    """The engine's provider, which recording and tracing need to be a realtime one.

    Raises:
        CliError: the provider does not open transport connections.
    """
    provider = engine.provider
    if not isinstance(provider, RealtimeProvider):
        raise CliError(
            f"provider {provider.name!r} cannot be recorded or traced: it sends no wire frames",
            hint="add --fake (or a WebSocket provider such as --provider openai) to record",
        )
    return provider


def _record_output_audio(engine: VoiceEngine, recorder: Recorder) -> None:
    rate = engine.provider.output_format.sample_rate
    engine.events.on(AudioDelta, lambda e: recorder.record_audio("out", e.audio, rate))
