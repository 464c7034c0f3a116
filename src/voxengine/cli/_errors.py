"""How the CLI fails: exit codes, :class:`CliError`, and one ``error:`` line per failure.

Exit codes (also in ``voxengine --help``):

* 0: success.
* 1: the session failed while running (connection refused or lost, a provider
  error, a turn that did not complete, a replay divergence).
* 2: nothing was attempted: bad arguments or configuration, a missing API key, an
  unknown provider, a missing audio device or PortAudio, an unreadable file.
* 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable
from typing import IO

from voxengine.errors import AudioError, ConfigError, VoxError
from voxengine.record.recording import RecordingError

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "exit_code_for",
    "hint_for",
    "report",
    "wrap_errors",
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


class CliError(Exception):
    """A problem the CLI reports as one line, with an exit code and an optional hint."""

    def __init__(self, message: str, code: int = EXIT_USAGE, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


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
