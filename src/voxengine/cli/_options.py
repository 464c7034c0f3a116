"""The subcommands' shared options: help layout, deprecated aliases, file checks,
logging, recording, and the provider and session options.
"""

from __future__ import annotations

import argparse
import os
import sys
import wave
from pathlib import Path
from typing import IO, Any

from voxengine.cli._errors import CliError
from voxengine.record.logs import configure_cli_logging

__all__ = [
    "HelpFormatter",
    "add_common_options",
    "add_deprecated_alias",
    "add_logging_options",
    "add_out_option",
    "add_record_options",
    "check_input_wav",
    "check_output_path",
    "setup_logging",
]


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
