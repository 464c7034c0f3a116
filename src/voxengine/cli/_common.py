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
import os
import sys
import traceback
import wave
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from voxengine.engine import VoiceEngine, VoiceEngineConfig
from voxengine.errors import AudioError, ConfigError, VoxError
from voxengine.events import AudioDelta
from voxengine.providers.realtime import RealtimeProvider
from voxengine.providers.registry import get_provider
from voxengine.record.logs import configure_cli_logging, trace_connector
from voxengine.record.recording import Recorder, RecordingError, wrap_provider_connector

__all__ = [
    "HelpFormatter",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_CODES_HELP",
    "CliError",
    "add_common_options",
    "add_deprecated_alias",
    "add_out_option",
    "check_input_wav",
    "check_output_path",
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
    "exit codes: 0 success; 1 the session failed while running (connection, provider\n"
    "error, unfinished turn, replay divergence); 2 bad arguments or configuration,\n"
    "missing API key, unknown provider, missing audio device, unreadable file;\n"
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Description and examples as written (they keep their layout); each option's
    help ends with its default when it has a meaningful one (not None or False)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or default in (None, False, argparse.SUPPRESS)
            or action.option_strings == []
            or isinstance(default, list)
        ):
            return text
        return text + " (default: %(default)s)"


class _DeprecatedAlias(argparse.Action):
    """An old option spelling: hidden from help, still works, says what replaced it."""

    def __init__(self, option_strings: list[str], dest: str, *, new: str, **kwargs: Any) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        print(f"voxengine: {option_string} is deprecated; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, True if self.nargs == 0 else values)


def add_deprecated_alias(
    group: Any, old: str, new: str, *, flag: bool = False, dest: str | None = None
) -> None:
    """Accept ``old`` as a hidden spelling of option ``new`` (a flag when ``flag``)."""
    group.add_argument(
        old,
        dest=dest or new.lstrip("-").replace("-", "_"),
        action=_DeprecatedAlias,
        new=new,
        nargs=0 if flag else None,
        help=argparse.SUPPRESS,
        default=argparse.SUPPRESS,
    )


def add_out_option(group: Any, *, help: str, default: str | None = None) -> None:
    """``-o``/``--out FILE.wav``: the one name every command uses for its output file."""
    group.add_argument("-o", "--out", metavar="FILE.wav", default=default, help=help)


def check_output_path(path: str | None) -> None:
    """Fail before any session starts when ``path`` cannot be written as a file.

    Raises:
        CliError: the path is a directory, its folder does not exist or is not writable.
    """
    if not path:
        return
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise CliError(f"{path} is a directory; give a file name, e.g. {target / 'reply.wav'}")
    if not folder.is_dir():
        raise CliError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise CliError(f"cannot write {path}: permission denied")


def check_input_wav(path: str, option: str = "--input") -> None:
    """Fail before any session starts when ``path`` is not a readable 16-bit PCM WAV file.

    Raises:
        CliError: the file is missing, unreadable or not a WAV file of 16-bit PCM.
    """
    target = Path(path)
    if not target.exists():
        raise CliError(f"{option} {path}: no such file")
    if target.is_dir():
        raise CliError(f"{option} {path}: is a directory, not a WAV file")
    try:
        with target.open("rb") as file:
            head = file.read(12)
    except OSError as exc:
        raise CliError(f"{option} {path}: cannot read it ({exc.strerror})") from exc
    if not (head.startswith(b"RIFF") and head[8:12] == b"WAVE"):
        kind = "a recording (JSON lines)" if head.lstrip()[:1] == b"{" else "not a WAV file"
        raise CliError(f"{option} {path}: {kind}; expected a 16-bit PCM WAV file")
    try:
        with wave.open(str(target), "rb") as wav:
            if wav.getsampwidth() != 2:
                raise CliError(
                    f"{option} {path}: {8 * wav.getsampwidth()}-bit samples; "
                    "expected 16-bit PCM (e.g. sox in.wav -b 16 out.wav)"
                )
    except (wave.Error, EOFError) as exc:
        raise CliError(f"{option} {path}: unreadable WAV file ({exc})") from exc


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
    group.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the traceback of an error (for bug reports)",
    )


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
    group.add_argument(
        "--provider",
        help="provider name (see 'voxengine providers'); default: the offline speech stack "
        "'voxengine demo' uses (no key, no network), or openai with --fake",
    )
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
    add_deprecated_alias(group, "--fake-openai", "--fake", flag=True)
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
    if isinstance(exc, ConfigError | AudioError | RecordingError | OSError):
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
        return "use --input IN.wav --out OUT.wav to run with WAV files instead of devices"
    if isinstance(exc, AudioError) and "device" in text:
        return "run 'voxengine devices', or use --input IN.wav --out OUT.wav"
    return ""


def report(exc: BaseException, stream: IO[str] | None = None) -> int:
    """Print ``exc`` as ``error: ...`` (plus a hint) and return its exit code."""
    out = stream if stream is not None else sys.stderr
    if isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        message = f"{exc.filename}: {exc.strerror}"  # e.g. "out/reply.wav: No such file ..."
    else:
        name = "" if isinstance(exc, CliError) else f"{type(exc).__name__}: "
        message = f"{name}{exc}"
    print(f"error: {message}", file=out)
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


def wrap_errors(run: Callable[[], int], *, debug: bool = False) -> int:
    """Run a command body, turning every failure into one ``error:`` line and an exit code.

    Expected failures (:class:`VoxError`, :class:`CliError`, :class:`OSError` such as
    a file that cannot be written) print their message and a hint; anything else is
    reported as an internal error. No traceback is shown unless ``debug``.
    """
    try:
        return run()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (VoxError, CliError, OSError) as exc:
        if debug:
            traceback.print_exc()
        return report(exc)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        print(f"error: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if not debug:
            print("hint: run again with --debug to see where it happened", file=sys.stderr)
        return EXIT_FAILURE
