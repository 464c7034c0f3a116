"""The ``voxengine`` command line.

Subcommands: ``demo`` (a short voice conversation: offline through the cascaded
pipeline by default, or a local LLM, Claude, OpenAI, or the bundled fake),
``console`` (voice chat in the terminal), ``chat`` (text chat over stdin/stdout),
``run`` (turns from WAV files, for scripts), ``replay`` (a recorded session, no
network), ``serve`` (the voice server for browsers), ``providers`` and ``devices``.
``--record FILE.jsonl`` records a session's wire frames for ``replay`` and for tests
(:mod:`voxengine.testing.replay`).

Logging is configured here, never by the library: warnings by default, ``-v`` INFO,
``-vv`` DEBUG protocol traces, always with keys and audio payloads redacted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence

from voxengine import __version__
from voxengine.cli import _console, _demo, _info, _replay, _serve, _turns
from voxengine.cli._errors import EXIT_CODES_HELP, EXIT_OK, wrap_errors
from voxengine.cli._options import HelpFormatter, setup_logging

__all__ = ["build_parser", "main"]


_EPILOG = f"""\
examples:
  voxengine demo                            a spoken turn through the offline stack (no key)
  echo hello | voxengine chat               text chat, offline
  voxengine run --fake --input q.wav -o a.wav   one turn from a WAV file, fake OpenAI server
  voxengine providers                       providers, what they need and support
  voxengine COMMAND --help                  a command's options and examples

{EXIT_CODES_HELP}.

API keys come from the environment (OPENAI_API_KEY, GEMINI_API_KEY, ANTHROPIC_API_KEY,
...), never from the command line; --fake needs none."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="voxengine",
        description="The voxengine command line: realtime voice AI in the terminal.\n"
        "With no provider named, every command runs on the offline speech stack.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"voxengine {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (for bug reports)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _demo.add_parser(sub)
    _console.add_parser(sub)
    _turns.add_parsers(sub)
    _replay.add_parser(sub)
    _info.add_parsers(sub)
    _serve.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (see ``voxengine --help``).

    With no command it prints the help and returns 0. Errors are one ``error:`` line
    (plus a ``hint:``), never a traceback unless ``--debug``.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK

    def run() -> int:
        log_file = setup_logging(args)
        try:
            code: int = args.run(args)
        finally:
            if log_file is not None:
                log_file.close()
        return code

    with contextlib.suppress(BrokenPipeError):
        return wrap_errors(run, debug=bool(getattr(args, "debug", False)))
    sys.stderr.close()  # the reader went away (e.g. piped into head)
    return 1
