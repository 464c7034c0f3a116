"""Options, engine set-up and error reporting shared by the subcommands.

Exit codes (also in ``voxengine --help``):

* 0: success.
* 1: the session failed while running (connection refused or lost, a provider
  error, a turn that did not complete, a replay divergence).
* 2: nothing was attempted: bad arguments or configuration, a missing API key, an
  unknown provider, a missing audio device or PortAudio, an unreadable file.
* 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from voxengine.engine import VoiceEngine, VoiceEngineConfig
from voxengine.errors import AudioError, ConfigError, VoxError
from voxengine.events import AudioDelta
from voxengine.logs import configure_cli_logging, trace_connector
from voxengine.providers.realtime import RealtimeProvider
from voxengine.providers.registry import get_provider
from voxengine.recording import Recorder, RecordingError, wrap_provider_connector

__all__ = [
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_CODES_HELP",
    "CliError",
    "add_common_options",
    "add_logging_options",
    "add_record_options",
    "exit_code_for",
    "open_engine",
    "setup_logging",
]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = (
    "exit codes: 0 success; 1 the session failed while running (connection, provider "
    "error, unfinished turn, replay divergence); 2 bad arguments or configuration, "
    "missing API key, unknown provider, missing audio device, unreadable file; "
    "130 interrupted"
)

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


class CliError(Exception):
    """A problem the CLI reports as one line, with an exit code and an optional hint."""

    def __init__(self, message: str, code: int = EXIT_USAGE, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


def add_logging_options(parser: argparse.ArgumentParser) -> None:
    """``-v``/``-vv`` and ``--log-file``."""
    group = parser.add_argument_group("logging")
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: INFO logs; -vv: DEBUG with protocol traces (keys and audio redacted)",
    )
    group.add_argument("--log-file", help="write logs to this file instead of stderr")


def add_record_options(parser: argparse.ArgumentParser) -> None:
    """``--record`` and its redaction switches."""
    group = parser.add_argument_group("recording")
    group.add_argument("--record", metavar="FILE.jsonl", help="record the session's wire frames")
    group.add_argument(
        "--record-audio", action="store_true", help="also store the decoded audio of both sides"
    )
    group.add_argument(
        "--redact-audio", action="store_true", help="store audio payloads as their size only"
    )


def add_common_options(parser: argparse.ArgumentParser, *, default_mode: str = "provider") -> None:
    """Provider and session options, plus logging and recording."""
    group = parser.add_argument_group("provider and session")
    group.add_argument("--provider", default="openai", help="provider name (see 'providers')")
    group.add_argument("--model", help="model (Azure: deployment name)")
    group.add_argument("--voice", help="assistant voice, e.g. marin")
    group.add_argument("--instructions", help="system instructions for the assistant")
    group.add_argument(
        "--mode", choices=["fast", "provider", "big"], default=default_mode, help="engine mode"
    )
    group.add_argument("--base-url", help="service endpoint override (proxy, local server)")
    group.add_argument(
        "--fake",
        action="store_true",
        help="talk to the bundled fake OpenAI server on 127.0.0.1 (scripted replies, no key)",
    )
    group.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for each reply")
    add_record_options(parser)
    add_logging_options(parser)


def setup_logging(args: argparse.Namespace) -> IO[str] | None:
    """Configure logging from ``-v``/``--log-file``; returns the log file to close."""
    stream: IO[str] | None = None
    if getattr(args, "log_file", None):
        try:
            stream = Path(args.log_file).open("a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise CliError(f"cannot open log file {args.log_file}: {exc}") from exc
    configure_cli_logging(getattr(args, "verbose", 0), stream)
    return stream


def exit_code_for(exc: BaseException) -> int:
    """The exit code for an exception that ended a command."""
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, ConfigError | AudioError | RecordingError):
        return EXIT_USAGE
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_FAILURE


def hint_for(exc: BaseException) -> str:
    """A suggestion printed under the error message, if one helps."""
    if isinstance(exc, CliError):
        return exc.hint
    text = str(exc)
    if isinstance(exc, ConfigError) and "API key" in text:
        return "export the key in the environment, or add --fake to use the bundled fake server"
    if isinstance(exc, ConfigError) and "unknown provider" in text:
        return "run 'voxengine providers' to list them"
    if isinstance(exc, ConfigError) and ("sounddevice" in text or "PortAudio" in text):
        return "use --input-file/--output-file to run with WAV files instead of devices"
    if isinstance(exc, AudioError) and "device" in text:
        return "run 'voxengine devices', or use --input-file/--output-file"
    return ""


def report(exc: BaseException, stream: IO[str] | None = None) -> int:
    """Print ``exc`` as ``error: ...`` (plus a hint) and return its exit code."""
    out = stream if stream is not None else sys.stderr
    name = "" if isinstance(exc, CliError) else f"{type(exc).__name__}: "
    print(f"error: {name}{exc}", file=out)
    hint = hint_for(exc)
    if hint:
        print(f"hint: {hint}", file=out)
    return exit_code_for(exc)


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
        provider=args.provider,
        mode=args.mode,
        model=args.model,
        base_url=base_url,
        api_key=api_key,
        voice=args.voice,
        instructions=args.instructions,
        **settings,
    )


@contextlib.asynccontextmanager
async def _endpoint(
    args: argparse.Namespace, fake_paced: bool
) -> AsyncIterator[tuple[str | None, str | None, str]]:
    """(base_url, api_key, description) of the service the options select."""
    get_provider(args.provider)  # an unknown name fails first, listing the known ones
    if not args.fake:
        where = args.base_url or f"the {args.provider} service"
        yield args.base_url, None, where
        return
    if args.provider not in ("openai", "mock"):
        raise CliError(
            f"--fake serves the OpenAI protocol; it cannot stand in for --provider {args.provider}",
            hint="drop --provider, or use --provider openai",
        )
    if args.base_url:
        raise CliError("--fake and --base-url exclude each other")
    from voxengine.testing import FakeOpenAIConfig, run_fake_openai_server

    config = FakeOpenAIConfig(paced=fake_paced)
    async with run_fake_openai_server(config, pace_seconds=0.1 if fake_paced else 0.0) as server:
        yield server.url, FAKE_KEY, f"the bundled fake OpenAI server at {server.url}"


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

    The fake server (``--fake``) runs until the context exits; the recording is
    closed then too.

    Raises:
        ConfigError: invalid settings, unknown provider or missing key (exit code 2).
    """
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
        raise CliError(f"provider {provider.name!r} cannot be recorded or traced")
    return provider


def _record_output_audio(engine: VoiceEngine, recorder: Recorder) -> None:
    rate = engine.provider.output_format.sample_rate
    engine.events.on(AudioDelta, lambda e: recorder.record_audio("out", e.audio, rate))


def wrap_errors(run: Callable[[], int]) -> int:
    """Run a command body, turning expected failures into messages and exit codes."""
    try:
        return run()
    except (VoxError, CliError, KeyboardInterrupt) as exc:
        if isinstance(exc, KeyboardInterrupt):
            print("\ninterrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        return report(exc)
