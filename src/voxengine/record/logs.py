"""Quiet, redacted logging: frame traces without keys or kilobytes of base64 audio.

The library never configures logging. It logs under ``voxengine.*`` and these tools
keep what it logs safe to share:

* :func:`shorten_audio` replaces base64 audio in a JSON frame (or a truncated trace
  of one) with its size: ``"audio":"<9600 bytes>"``.
* :class:`TraceFilter` is a :class:`logging.Filter` applying that and credential
  redaction (:func:`voxengine.redaction.redact`) to every record it sees.
  Attach it to a handler (covers every logger) or to a logger.
* :func:`trace_connector` wraps a :class:`~voxengine.transport.Connector` so that
  every frame sent and received is logged at DEBUG level on ``voxengine.wire``
  (a logger that carries a :class:`TraceFilter`).
* :func:`configure_cli_logging` is what the command line uses: WARNING by default,
  INFO with ``-v``, DEBUG protocol traces with ``-vv``; never called by the library.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import IO, final

from voxengine.redaction import redact
from voxengine.transport import Connection, Connector, FrameSink, PushConnection

__all__ = [
    "AUDIO_FIELDS",
    "TraceFilter",
    "configure_cli_logging",
    "is_audio_field",
    "shorten_audio",
    "trace_connector",
    "wire_logger",
]

#: JSON keys whose string values carry base64 audio (OpenAI ``audio``/audio ``delta``,
#: Gemini ``data``).
AUDIO_FIELDS = frozenset({"audio", "delta", "data"})

_B64_RUN = r"[A-Za-z0-9+/]{16,}={0,2}"
# "audio": "<base64>"  — the closing quote is missing when a trace was truncated.
_AUDIO_VALUE = re.compile(r'("(?:audio|data)"\s*:\s*")(' + _B64_RUN + r')("?)')
_DELTA_VALUE = re.compile(r'("delta"\s*:\s*")(' + _B64_RUN + r')("?)')
_AUDIO_DELTA_TYPE = re.compile(r'"type"\s*:\s*"[^"]*audio\.delta"')


def is_audio_field(key: str, message_type: str | None) -> bool:
    """Whether JSON field ``key`` of a message of type ``message_type`` holds audio.

    ``delta`` is audio only in audio delta messages (``response.output_audio.delta``),
    never in text or transcript deltas.
    """
    if key == "delta":
        return message_type is not None and message_type.endswith("audio.delta")
    return key in AUDIO_FIELDS


def _size(match: re.Match[str]) -> str:
    value, closed = match.group(2), match.group(3)
    if not closed:
        return f"{match.group(1)}<base64 audio…>"
    return f'{match.group(1)}<{len(value) * 3 // 4 - value.count("=")} bytes>"'


def shorten_audio(text: str) -> str:
    """``text`` with base64 audio values replaced by their decoded size.

    Works on whole JSON frames and on truncated traces of them. Text and transcript
    deltas are left alone.
    """
    text = _AUDIO_VALUE.sub(_size, text)
    if _AUDIO_DELTA_TYPE.search(text):
        text = _DELTA_VALUE.sub(_size, text)
    return text


@final
class TraceFilter(logging.Filter):
    """Rewrites each record so that neither credentials nor base64 audio reach handlers."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Clean ``record`` in place; never drops it."""
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed record: leave it to the handler
            return True
        cleaned = shorten_audio(redact(message))
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def wire_logger() -> logging.Logger:
    """The ``voxengine.wire`` logger (frame traces), with a :class:`TraceFilter`."""
    log = logging.getLogger("voxengine.wire")
    if not any(isinstance(f, TraceFilter) for f in log.filters):
        log.addFilter(TraceFilter())
    return log


def _frame_text(data: str | bytes) -> str:
    if isinstance(data, str):
        return data
    return f"<binary frame, {len(data)} bytes>"


@final
class _TracedConnection:
    def __init__(self, inner: Connection, log: logging.Logger) -> None:
        self._inner = inner
        self._log = log

    async def send(self, data: str | bytes) -> None:
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("> %s", _frame_text(data))
        await self._inner.send(data)

    async def recv(self) -> str | bytes:
        data = await self._inner.recv()
        self._trace(data)
        return data

    def _trace(self, data: str | bytes) -> None:
        if self._log.isEnabledFor(logging.DEBUG):
            self._log.debug("< %s", _frame_text(data))

    def push_to(self, sink: FrameSink) -> bool:
        """Push as the inner connection does (if it can), logging each frame first."""
        if not isinstance(self._inner, PushConnection):
            return False

        def trace(data: str | bytes) -> None:
            self._trace(data)
            sink(data)

        return self._inner.push_to(trace)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._log.debug("> close %d %s", code, reason)
        await self._inner.close(code, reason)


def trace_connector(connector: Connector, log: logging.Logger | None = None) -> Connector:
    """``connector`` whose connections log every frame at DEBUG level.

    Sent frames are logged as ``> {frame}``, received ones as ``< {frame}`` on ``log``
    (default :func:`wire_logger`), after redaction by its :class:`TraceFilter`.
    """
    target = log if log is not None else wire_logger()

    async def connect(url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        return _TracedConnection(await connector(url, headers, timeout=timeout), target)

    return connect


class _CliHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler :func:`configure_cli_logging` installs (replaced on a second call)."""


def configure_cli_logging(verbosity: int, stream: IO[str] | None = None) -> logging.Handler:
    """Configure the root logger for the command line; returns the handler installed.

    ``verbosity`` 0 logs warnings and errors, 1 adds INFO, 2 or more DEBUG, including
    frame traces. Every record passes a :class:`TraceFilter`. Only applications (the
    CLI) call this; the library never configures logging.
    """
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = _CliHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(TraceFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CliHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    if verbosity < 3:  # asyncio's debug chatter is rarely what a -vv user wants
        logging.getLogger("asyncio").setLevel(max(level, logging.INFO))
    return handler
