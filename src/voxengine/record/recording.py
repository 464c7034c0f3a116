"""Record a session's wire frames to a JSON-lines file, and load them back.

:class:`Recorder` wraps any :class:`~voxengine.transport.Connector`, so every
realtime provider can be recorded without changes: each connection it opens is
logged frame by frame, both directions, with timestamps relative to the first
connection. Text frames are stored as is, binary frames as base64. Decoded audio
(what the user said, what the assistant answered) can be added with
:meth:`Recorder.record_audio`. :func:`load_recording` reads a file back as a
:class:`Recording`, which :class:`voxengine.replay.ReplayConnector` serves without a
network.

File format, one JSON object per line (``t`` in seconds since the first connect,
``conn`` the 0-based connection number)::

    {"type": "header", "format": "voxengine-recording", "version": 1, "meta": {...}}
    {"type": "connect", "t": 0.0, "conn": 0, "url": "...", "headers": {...}}
    {"type": "connect_failed", "t": 0.0, "conn": 0, "error": "ConnectFailed", "message": "..."}
    {"type": "frame", "t": 0.01, "conn": 0, "dir": "send", "text": "{...}"}
    {"type": "frame", "t": 0.02, "conn": 0, "dir": "recv", "binary": "<base64>"}
    {"type": "close", "t": 1.5, "conn": 0, "dir": "send", "code": 1000, "reason": ""}
    {"type": "audio", "t": 0.5, "dir": "out", "sample_rate": 24000, "audio": "<base64>"}

Redaction: with ``redact_keys`` (the default) credential headers and secret query
parameters are stored as ``***`` and the secrets found there are also masked
wherever they appear in frames. With ``redact_audio`` the base64 audio fields of JSON
frames are stored as ``"<redacted audio: N bytes>"``, binary frames as their length
(``{"binary_redacted": N}``) and :meth:`Recorder.record_audio` stores nothing; a
replay substitutes silence of the same length.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol, Self, final

from voxengine.errors import ConnectionClosed, VoxError
from voxengine.record.logs import is_audio_field
from voxengine.redaction import redact, secrets_in
from voxengine.transport import Connection, Connector, FrameSink, PushConnection

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "RecordedAudio",
    "RecordedClose",
    "RecordedConnect",
    "RecordedConnection",
    "RecordedFrame",
    "Recorder",
    "Recording",
    "RecordingError",
    "load_recording",
    "redact_audio_fields",
    "restore_audio_fields",
    "wrap_provider_connector",
]

FORMAT_NAME = "voxengine-recording"
FORMAT_VERSION = 1

Direction = Literal["send", "recv"]

_REDACTED_AUDIO = re.compile(r"<redacted audio: (\d+) bytes>")


class RecordingError(VoxError):
    """A recording file is missing, malformed or of an unknown format version."""


# --------------------------------------------------------------------------- redaction


def _mask(text: str, secrets: set[str]) -> str:
    return redact(text, secrets)


def _walk_audio(node: Any, kind: str | None, replace: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        node_type = node.get("type")
        kind = node_type if isinstance(node_type, str) else kind
        return {
            key: (
                replace(value)
                if isinstance(value, str) and is_audio_field(key, kind)
                else _walk_audio(value, kind, replace)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_walk_audio(item, kind, replace) for item in node]
    return node


def _decoded_size(value: str) -> int:
    try:
        return len(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError):
        return len(value)


def redact_audio_fields(text: str) -> str:
    """JSON frame ``text`` with base64 audio values as ``"<redacted audio: N bytes>"``.

    Frames that are not JSON objects are returned unchanged.
    """
    try:
        message = json.loads(text)
    except ValueError:
        return text
    if not isinstance(message, dict):
        return text
    redacted = _walk_audio(message, None, lambda v: f"<redacted audio: {_decoded_size(v)} bytes>")
    return json.dumps(redacted, separators=(",", ":"), ensure_ascii=False)


def restore_audio_fields(text: str) -> str:
    """Replace ``"<redacted audio: N bytes>"`` markers with base64 of N zero bytes."""
    return _REDACTED_AUDIO.sub(
        lambda m: base64.b64encode(bytes(int(m.group(1)))).decode("ascii"), text
    )


# --------------------------------------------------------------------------- recording


class _Wrappable(Protocol):
    connector_wrappers: list[Callable[[Connector], Connector]]


def wrap_provider_connector(
    provider: _Wrappable, wrapper: Callable[[Connector], Connector]
) -> None:
    """Make ``provider`` open its connections through ``wrapper(connector)``.

    Works with every :class:`~voxengine.providers.realtime.RealtimeProvider` (its
    ``connector_wrappers``), before :meth:`connect`. Wrappers stack: the last one
    added sees the frames first on send and last on receive.
    """
    provider.connector_wrappers.append(wrapper)


@final
class Recorder:
    """Writes the frames of every connection opened through :meth:`wrap` to ``path``.

    Example::

        recorder = Recorder("session.jsonl", meta={"provider": "openai"})
        wrap_provider_connector(engine.provider, recorder.wrap)
        async with engine:
            ...
        recorder.close()

    Args:
        path: the JSON-lines file to write (replaced if it exists).
        redact_keys: store credentials as ``***`` (headers, query, and in frames).
        redact_audio: store audio payloads as their size only.
        meta: JSON-serialisable facts about the session (the CLI stores its options).
        clock: monotonic seconds; timestamps are relative to the first connect.

    Raises:
        RecordingError: if ``path`` cannot be opened for writing.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        redact_keys: bool = True,
        redact_audio: bool = False,
        meta: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.redact_keys = redact_keys
        self.redact_audio = redact_audio
        self._clock = clock
        self._origin: float | None = None
        self._connections = 0
        self._secrets: set[str] = set()
        try:
            self._file: IO[str] | None = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise RecordingError(f"cannot write recording {self.path}: {exc}") from exc
        header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "meta": dict(meta or {})}
        self._write("header", header, stamp=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._file is None

    def close(self) -> None:
        """Flush and close the file. Idempotent; later frames are not recorded."""
        file, self._file = self._file, None
        if file is not None:
            file.close()

    def _now(self) -> float:
        now = self._clock()
        if self._origin is None:
            self._origin = now
        return round(now - self._origin, 6)

    def _write(self, kind: str, entry: dict[str, Any], *, stamp: bool = True) -> None:
        if self._file is None:
            return
        line: dict[str, Any] = {"type": kind}
        if stamp:
            line["t"] = self._now()
        line.update(entry)
        self._file.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
        self._file.flush()

    def _text(self, text: str) -> str:
        if self.redact_keys:
            text = _mask(text, self._secrets)
        return redact_audio_fields(text) if self.redact_audio else text

    def _frame(self, conn: int, direction: Direction, data: str | bytes) -> None:
        entry: dict[str, Any] = {"conn": conn, "dir": direction}
        if isinstance(data, str):
            entry["text"] = self._text(data)
        elif self.redact_audio:
            entry["binary_redacted"] = len(data)
        else:
            entry["binary"] = base64.b64encode(data).decode("ascii")
        self._write("frame", entry)

    def _close(self, conn: int, direction: Direction, code: int | None, reason: str) -> None:
        self._write("close", {"conn": conn, "dir": direction, "code": code, "reason": reason})

    def record_audio(self, direction: Literal["in", "out"], pcm: bytes, sample_rate: int) -> None:
        """Add decoded PCM16 mono audio (``"in"``: the user's, ``"out"``: the assistant's).

        Stores nothing when the recorder redacts audio.
        """
        if self.redact_audio or not pcm:
            return
        audio = base64.b64encode(pcm).decode("ascii")
        self._write("audio", {"dir": direction, "sample_rate": sample_rate, "audio": audio})

    def wrap(self, connector: Connector) -> Connector:
        """A connector that records every connection ``connector`` opens."""

        async def connect(url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
            conn = self._connections
            self._connections += 1
            if self.redact_keys:
                self._secrets |= secrets_in(url, headers)
                shown_url = _mask(url, self._secrets)
                shown = {
                    k: _mask(f"{k}: {v}", self._secrets)[len(k) + 2 :] for k, v in headers.items()
                }
            else:
                shown_url, shown = url, dict(headers)
            try:
                inner = await connector(url, headers, timeout=timeout)
            except VoxError as exc:
                error = {"conn": conn, "error": type(exc).__name__, "message": self._text(str(exc))}
                self._write("connect_failed", error)
                raise
            self._write("connect", {"conn": conn, "url": shown_url, "headers": shown})
            return _RecordingConnection(inner, self, conn)

        return connect


@final
class _RecordingConnection:
    def __init__(self, inner: Connection, recorder: Recorder, conn: int) -> None:
        self._inner = inner
        self._recorder = recorder
        self._conn = conn

    async def send(self, data: str | bytes) -> None:
        await self._inner.send(data)
        self._recorder._frame(self._conn, "send", data)

    async def recv(self) -> str | bytes:
        try:
            data = await self._inner.recv()
        except ConnectionClosed as exc:
            self._recorder._close(self._conn, "recv", exc.code, exc.reason)
            raise
        self._recorder._frame(self._conn, "recv", data)
        return data

    def push_to(self, sink: FrameSink) -> bool:
        """Push as the inner connection does (if it can), recording each frame first."""
        if not isinstance(self._inner, PushConnection):
            return False

        def record(data: str | bytes) -> None:
            self._recorder._frame(self._conn, "recv", data)
            sink(data)

        return self._inner.push_to(record)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self._recorder._close(self._conn, "send", code, reason)
        await self._inner.close(code, reason)


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedFrame:
    """One frame; ``data`` is text, or bytes for binary frames (zeros if redacted)."""

    t: float
    conn: int
    direction: Direction
    data: str | bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedClose:
    """A close: ``direction="send"`` when the client closed, ``"recv"`` when it saw one."""

    t: float
    conn: int
    direction: Direction
    code: int | None
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedConnect:
    """A connection attempt; ``error`` names the exception class when it failed."""

    t: float
    conn: int
    url: str
    headers: Mapping[str, str]
    error: str | None = None
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedAudio:
    """Decoded audio added with :meth:`Recorder.record_audio`."""

    t: float
    direction: Literal["in", "out"]
    sample_rate: int
    audio: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedConnection:
    """One connection attempt and its frames and closes, in recorded order."""

    connect: RecordedConnect
    events: tuple[RecordedFrame | RecordedClose, ...]

    def frames(self, direction: Direction | None = None) -> list[RecordedFrame]:
        """The frames, optionally of one direction only."""
        return [
            e
            for e in self.events
            if isinstance(e, RecordedFrame) and (direction is None or e.direction == direction)
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class Recording:
    """A loaded recording (see :func:`load_recording`)."""

    meta: Mapping[str, Any]
    connections: tuple[RecordedConnection, ...]
    audio_entries: tuple[RecordedAudio, ...] = ()

    def audio(self, direction: Literal["in", "out"]) -> bytes:
        """All decoded audio of ``direction``, back to back."""
        return b"".join(a.audio for a in self.audio_entries if a.direction == direction)

    def frames(self, direction: Direction | None = None) -> list[RecordedFrame]:
        """Frames of every connection, in order."""
        return [f for c in self.connections for f in c.frames(direction)]


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecordingError(f"cannot read recording {path}: {exc}") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            raise RecordingError(f"{path}:{number}: not JSON: {exc}") from exc
        if not isinstance(entry, dict):
            raise RecordingError(f"{path}:{number}: expected a JSON object")
        yield number, entry


def _frame_data(entry: Mapping[str, Any]) -> str | bytes:
    if "text" in entry:
        return restore_audio_fields(str(entry["text"]))
    if "binary_redacted" in entry:
        return bytes(int(entry["binary_redacted"]))
    return base64.b64decode(str(entry["binary"]))


def load_recording(path: str | Path) -> Recording:
    """Read a recording written by :class:`Recorder`.

    Redacted audio comes back as silence of the recorded length.

    Raises:
        RecordingError: the file is missing, not a recording, or malformed.
    """
    path = Path(path)
    meta: Mapping[str, Any] | None = None
    connects: dict[int, RecordedConnect] = {}
    events: dict[int, list[RecordedFrame | RecordedClose]] = {}
    audio: list[RecordedAudio] = []
    for number, entry in _lines(path):
        kind = entry.get("type")
        try:
            if kind == "header":
                if entry.get("format") != FORMAT_NAME or entry.get("version") != FORMAT_VERSION:
                    raise RecordingError(
                        f"{path}: not a {FORMAT_NAME} version {FORMAT_VERSION} file"
                    )
                meta = dict(entry.get("meta") or {})
                continue
            if meta is None:
                raise RecordingError(f"{path}: missing header line")
            t, conn = float(entry.get("t", 0.0)), int(entry.get("conn", 0))
            if kind in ("connect", "connect_failed"):
                connects[conn] = RecordedConnect(
                    t=t,
                    conn=conn,
                    url=str(entry.get("url", "")),
                    headers=dict(entry.get("headers") or {}),
                    error=entry.get("error"),
                    message=str(entry.get("message", "")),
                )
                events.setdefault(conn, [])
            elif kind == "frame":
                direction = entry["dir"]
                data = _frame_data(entry)
                events[conn].append(RecordedFrame(t=t, conn=conn, direction=direction, data=data))
            elif kind == "close":
                code = entry.get("code")
                close = RecordedClose(
                    t=t,
                    conn=conn,
                    direction=entry["dir"],
                    code=int(code) if code is not None else None,
                    reason=str(entry.get("reason", "")),
                )
                events[conn].append(close)
            elif kind == "audio":
                pcm = base64.b64decode(str(entry["audio"]))
                rate = int(entry["sample_rate"])
                audio.append(
                    RecordedAudio(t=t, direction=entry["dir"], sample_rate=rate, audio=pcm)
                )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise RecordingError(f"{path}:{number}: malformed {kind} entry: {exc!r}") from exc
    if meta is None:
        raise RecordingError(f"{path}: empty, or not a {FORMAT_NAME} file")
    connections = tuple(
        RecordedConnection(connect=connects[n], events=tuple(events[n])) for n in sorted(connects)
    )
    return Recording(meta=meta, connections=connections, audio_entries=tuple(audio))
