"""Replay a recorded session without a network, checking what the client sends.

:class:`ReplayConnector` is a :class:`~voxengine.transport.Connector` that serves the
server frames of a :class:`~voxengine.recording.Recording` to the client protocol, in
recorded order, and compares every frame the client sends with the recorded one
(:class:`FrameMatch` decides what "the same" means). Deterministic: a server frame
recorded after the client's *n*-th frame is delivered only once the client has sent
*n* frames (``strict=True``), either as fast as possible or at the recorded pace.

A difference is reported as a :class:`ReplayDivergence` raised from the client's
``send`` (so from the engine call that caused it), kept in
:attr:`ReplayConnector.divergences` and raised again by
:meth:`ReplayConnector.check`; in strict mode it also ends the replayed connection
with close code 4000. A non-strict replay only records divergences.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, final

from voxengine.errors import (
    AuthenticationFailed,
    ConnectFailed,
    ConnectionClosedError,
    ConnectionClosedOK,
    VoxError,
)
from voxengine.record.logs import is_audio_field
from voxengine.record.recording import (
    RecordedClose,
    RecordedConnection,
    RecordedFrame,
    Recording,
    load_recording,
)
from voxengine.transport import Connection

__all__ = [
    "DEFAULT_MATCH",
    "DIVERGENCE_CLOSE_CODE",
    "FrameMatch",
    "ReplayConnection",
    "ReplayConnector",
    "ReplayDivergence",
]

#: Close code of a replayed connection ended by a divergence (private-use range).
DIVERGENCE_CLOSE_CODE = 4000


class ReplayDivergence(VoxError):
    """The client did something other than what the recording says.

    Attributes:
        connection: 0-based connection number.
        index: 0-based number of the client frame (among compared frames).
        expected: the recorded frame (``None``: the recording has no more).
        actual: the frame the client sent (``None``: it sent nothing).
        detail: what differs, e.g. ``session.instructions: 'a' != 'b'``.
    """

    def __init__(
        self,
        message: str,
        *,
        connection: int,
        index: int,
        expected: str | bytes | None = None,
        actual: str | bytes | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(message)
        self.connection = connection
        self.index = index
        self.expected = expected
        self.actual = actual
        self.detail = detail


_MISSING = object()


def _diff(expected: Any, actual: Any, path: str = "") -> str | None:
    """The first difference between two JSON values, as ``path: expected != actual``."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual), key=str):
            found = _diff(expected.get(key, _MISSING), actual.get(key, _MISSING), f"{path}.{key}")
            if found is not None:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path or '.'}: {len(expected)} items != {len(actual)} items"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found = _diff(e, a, f"{path}[{i}]")
            if found is not None:
                return found
        return None
    if expected == actual:
        return None

    def show(value: Any) -> str:
        return "(missing)" if value is _MISSING else _short(repr(value))

    return f"{path.lstrip('.') or '.'}: recorded {show(expected)}, sent {show(actual)}"


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True, kw_only=True)
class FrameMatch:
    """Which parts of the client's frames a replay compares.

    Attributes:
        ignore_fields: JSON keys left out of the comparison, at any depth
            (default ``event_id``).
        ignore_audio: compare audio fields by presence only, not content (audio
            redacted in the recording is always compared this way).
        ignore_types: JSON ``type`` values of client frames that are neither compared
            nor counted (e.g. ``{"input_audio_buffer.append"}`` when audio chunking
            may differ between runs).
    """

    ignore_fields: frozenset[str] = frozenset({"event_id"})
    ignore_audio: bool = False
    ignore_types: frozenset[str] = frozenset()

    def counts(self, data: str | bytes) -> bool:
        """Whether the client frame ``data`` takes part in the replay."""
        if not self.ignore_types or not isinstance(data, str):
            return True
        return _type_of(data) not in self.ignore_types

    def _normalise(self, node: Any, kind: str | None, blank_audio: bool) -> Any:
        if isinstance(node, dict):
            node_type = node.get("type")
            kind = node_type if isinstance(node_type, str) else kind
            return {
                key: (
                    "<audio>"
                    if blank_audio and isinstance(value, str) and is_audio_field(key, kind)
                    else self._normalise(value, kind, blank_audio)
                )
                for key, value in node.items()
                if key not in self.ignore_fields
            }
        if isinstance(node, list):
            return [self._normalise(item, kind, blank_audio) for item in node]
        return node

    def difference(self, expected: str | bytes, actual: str | bytes) -> str | None:
        """What differs between a recorded and a sent frame, or ``None`` if they match."""
        if isinstance(expected, bytes) or isinstance(actual, bytes):
            if type(expected) is not type(actual):
                return "frame kind: recorded text/binary differs from sent"
            if self.ignore_audio or expected == actual:
                return None
            return f"binary frame: recorded {len(expected)} bytes, sent {len(actual)} bytes"
        try:
            recorded, sent = json.loads(expected), json.loads(actual)
        except ValueError:
            return None if expected == actual else f"text: recorded {_short(expected)!r}"
        blank = self.ignore_audio or "<redacted audio:" in expected or _silent_audio(recorded)
        return _diff(self._normalise(recorded, None, blank), self._normalise(sent, None, blank))


#: The default comparison: everything but ``event_id``.
DEFAULT_MATCH = FrameMatch()


def _silent_audio(message: Any) -> bool:
    """True if every audio field is all-zero base64 ("A" runs): redacted in the file."""
    found: list[str] = []

    def collect(node: Any, kind: str | None) -> None:
        if isinstance(node, dict):
            node_type = node.get("type")
            kind = node_type if isinstance(node_type, str) else kind
            for key, value in node.items():
                if isinstance(value, str) and is_audio_field(key, kind):
                    found.append(value)
                else:
                    collect(value, kind)
        elif isinstance(node, list):
            for item in node:
                collect(item, kind)

    collect(message, None)
    return bool(found) and all(len(v) > 8 and not v.rstrip("=").strip("A") for v in found)


def _type_of(text: str) -> str | None:
    try:
        message = json.loads(text)
    except ValueError:
        return None
    kind = message.get("type") if isinstance(message, dict) else None
    return kind if isinstance(kind, str) else None


@dataclass(slots=True)
class _ServerStep:
    after: int  # client frames (counted) that preceded it in the recording
    t: float
    item: RecordedFrame | RecordedClose


@final
class ReplayConnector:
    """Serves recorded connections, one per ``connect``, in order.

    Args:
        recording: a :class:`~voxengine.recording.Recording` or the path of one.
        match: how client frames are compared; ``None`` compares nothing.
        strict: deliver each server frame only after the client frames recorded
            before it (deterministic). ``False`` serves server frames regardless of
            what the client sends (``voxengine replay`` uses this).
        timing: ``"fast"`` (no waiting) or ``"recorded"`` (the recorded pace).
        speed: with recorded timing, 2.0 replays twice as fast.
        stall_timeout: seconds to wait for a client frame the recording expects
            before reporting a divergence (``None``: wait forever).
    """

    def __init__(
        self,
        recording: Recording | str | Path,
        *,
        match: FrameMatch | None = DEFAULT_MATCH,
        strict: bool = True,
        timing: Literal["fast", "recorded"] = "fast",
        speed: float = 1.0,
        stall_timeout: float | None = 10.0,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.recording = (
            recording if isinstance(recording, Recording) else load_recording(recording)
        )
        self.match = match
        self.strict = strict
        self.timing = timing
        self.speed = speed
        self.stall_timeout = stall_timeout
        self.divergences: list[ReplayDivergence] = []
        self.connections: list[ReplayConnection] = []
        self._changed = asyncio.Event()

    async def wait_served(self) -> None:
        """Wait until every recorded connection was opened and all its server frames
        (and closes) were delivered."""
        while not (
            len(self.connections) >= len(self.recording.connections)
            and all(c.drained.is_set() for c in self.connections)
        ):
            self._changed.clear()
            await self._changed.wait()

    async def __call__(self, url: str, headers: Mapping[str, str], *, timeout: float) -> Connection:
        """Open the next recorded connection (or fail as the recorded attempt did)."""
        number = len(self.connections)
        if number >= len(self.recording.connections):
            exc = ReplayDivergence(
                f"the client opened connection #{number + 1}; the recording has "
                f"{len(self.recording.connections)}",
                connection=number,
                index=0,
            )
            self.divergences.append(exc)
            raise exc
        recorded = self.recording.connections[number]
        conn = ReplayConnection(self, number, recorded)
        self.connections.append(conn)
        self._changed.set()
        if recorded.connect.error is not None:
            message = f"replayed: {recorded.connect.message}"
            if recorded.connect.error == "AuthenticationFailed":
                raise AuthenticationFailed(message)
            raise ConnectFailed(message)
        return conn

    def check(self, *, complete: bool = True) -> None:
        """Raise the first divergence; with ``complete``, also unsent recorded frames.

        Raises:
            ReplayDivergence: the client diverged, or (``complete``) did not open every
                recorded connection or send every recorded frame.
        """
        if self.divergences:
            raise self.divergences[0]
        if not complete:
            return
        recorded = self.recording.connections
        if len(self.connections) < len(recorded):
            raise ReplayDivergence(
                f"the client opened {len(self.connections)} of {len(recorded)} recorded "
                "connections",
                connection=len(self.connections),
                index=0,
            )
        for conn in self.connections:
            conn.check_complete()


@final
class ReplayConnection:
    """One replayed connection (see :class:`ReplayConnector`)."""

    def __init__(self, owner: ReplayConnector, number: int, recorded: RecordedConnection) -> None:
        self._owner = owner
        self.number = number
        match = owner.match
        self.expected: list[str | bytes] = []
        self._steps: list[_ServerStep] = []
        for item in recorded.events:
            if isinstance(item, RecordedClose) and item.direction == "send":
                break  # what the server sent after the client closed follows that close
            if isinstance(item, RecordedFrame) and item.direction == "send":
                if match is None or match.counts(item.data):
                    self.expected.append(item.data)
            else:
                self._steps.append(_ServerStep(len(self.expected), item.t, item))
        self._base = recorded.connect.t
        self._origin = asyncio.get_running_loop().time()
        self._next = 0
        #: Client frames sent (and counted) so far.
        self.sent = 0
        self._progress = asyncio.Event()
        self._closed: tuple[int, str] | None = None
        #: Set once every recorded server frame and close has been delivered.
        self.drained = asyncio.Event()
        if not self._steps:
            self._set_drained()

    def _set_drained(self) -> None:
        self.drained.set()
        self._owner._changed.set()

    def check_complete(self) -> None:
        """Raise :class:`ReplayDivergence` if recorded client frames were not sent."""
        if self._owner.match is not None and self.sent < len(self.expected):
            missing = len(self.expected) - self.sent
            first = self.expected[self.sent]
            raise ReplayDivergence(
                f"connection {self.number}: the client did not send {missing} recorded "
                f"frame(s); next expected: {_short(str(first))}",
                connection=self.number,
                index=self.sent,
                expected=first,
            )

    def _diverge(self, exc: ReplayDivergence) -> ReplayDivergence:
        """Record ``exc``; in strict mode also end the connection."""
        self._owner.divergences.append(exc)
        if self._owner.strict:
            self._closed = self._closed or (DIVERGENCE_CLOSE_CODE, "replay divergence")
            self._progress.set()
        return exc

    async def send(self, data: str | bytes) -> None:
        """Compare ``data`` with the next recorded client frame.

        Raises:
            ReplayDivergence: it differs, or the recording has no more client frames.
            ConnectionClosedError: the connection is closed.
        """
        if self._closed is not None:
            raise ConnectionClosedError(*self._closed)
        match = self._owner.match
        if match is None or not match.counts(data):
            return
        index = self.sent
        self.sent += 1
        if index >= len(self.expected):
            self._fail(
                ReplayDivergence(
                    f"connection {self.number}: client frame #{index + 1} was not in the "
                    f"recording: {_short(str(data))}",
                    connection=self.number,
                    index=index,
                    actual=data,
                )
            )
            return
        detail = match.difference(self.expected[index], data)
        if detail is not None:
            self._fail(
                ReplayDivergence(
                    f"connection {self.number}: client frame #{index + 1} differs from the "
                    f"recording: {detail}",
                    connection=self.number,
                    index=index,
                    expected=self.expected[index],
                    actual=data,
                    detail=detail,
                )
            )
        self._progress.set()

    def _fail(self, exc: ReplayDivergence) -> None:
        """Record ``exc``; raise it in strict mode (non-strict replays only report)."""
        self._diverge(exc)
        if self._owner.strict:
            raise exc

    async def _wait_for_client(self, step: _ServerStep) -> None:
        loop = asyncio.get_running_loop()
        timeout = self._owner.stall_timeout
        deadline = None if timeout is None else loop.time() + timeout
        while self._closed is None and self.sent < step.after:
            self._progress.clear()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                expected = self.expected[self.sent]
                self._diverge(
                    ReplayDivergence(
                        f"connection {self.number}: replay stalled: the client has not sent "
                        f"recorded frame #{self.sent + 1} within {timeout} s: "
                        f"{_short(str(expected))}",
                        connection=self.number,
                        index=self.sent,
                        expected=expected,
                    )
                )
                return
            try:
                await asyncio.wait_for(self._progress.wait(), remaining)
            except TimeoutError:
                continue

    async def recv(self) -> str | bytes:
        """The next recorded server frame; raises ConnectionClosed at a recorded close."""
        while True:
            if self._closed is not None:
                code, reason = self._closed
                cls = ConnectionClosedOK if code in (1000, 1001) else ConnectionClosedError
                raise cls(code, reason)
            if self._next >= len(self._steps):
                self._progress.clear()
                await self._progress.wait()  # the recording is over: wait for the client
                continue
            step = self._steps[self._next]
            if self._owner.strict and self._owner.match is not None:
                await self._wait_for_client(step)
                if self._closed is not None:
                    continue
            if self._owner.timing == "recorded":
                due = self._origin + (step.t - self._base) / self._owner.speed
                delay = due - asyncio.get_running_loop().time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self._next += 1
            if self._next >= len(self._steps):
                self._set_drained()
            item = step.item
            if isinstance(item, RecordedClose):
                self._closed = (item.code if item.code is not None else 1006, item.reason)
                continue
            return item.data

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection; a waiting ``recv`` raises ConnectionClosed."""
        if self._closed is None:
            self._closed = (code, reason)
        self._progress.set()
