"""A lean load generator for the scale test: the fake's wire behaviour, little of its CPU.

The scale test asks what one voxengine process can carry, so the server side must not be
the bottleneck. :class:`voxengine.testing.FakeOpenAIServer` checks every client event
against the protocol and builds each reply frame from a dict; at 400 sessions that is
20,000 audio deltas a second built, and 20,000 audio appends a second parsed and
decoded, in Python. This server speaks the same subset of the OpenAI Realtime protocol
the scale test uses, doing as little per frame as it can:

* two WebSocket front ends (``ServerSettings.lean_engine``), both without a connection
  object, reader task or queue per connection: ``"picows"`` (the default,
  :mod:`benchmarks.leanpicows`), where ``picows``' Cython server does the upgrade, the
  framing and the pongs; and ``"protocol"`` (:class:`_Session`), where ``websockets``'
  sans-I/O ``ServerProtocol`` answers the upgrade on a bare ``asyncio.Protocol`` and
  client frames are then parsed here: the header read, the first bytes of a text frame
  unmasked (``websockets``' C ``apply_mask``), pings answered, a close echoed before
  the socket closes. Either way an ``input_audio_buffer.append`` is told by its first
  bytes and dropped unread (where the fake decodes and buffers it), and any other event
  is parsed and answered;
* every reply audio delta is one pre-encoded JSON text (built once per process), the
  ``bench_sent`` stamp appended (``perf_counter`` read right before the write, taken
  as ``perf_counter_ns`` and written as seconds.nanoseconds, logged in seconds) and,
  on the ``protocol`` front end, the frame header put in front; each session's audio
  delta also logs how late it left against its deadline (``pacing``); transcript
  deltas come every 0.3 s of audio, as the fake sends them;
* each session is paced by its own timer on absolute 20 ms deadlines (``call_later``),
  so sessions keep their phases, as with the fake;
* the handshake and the response lifecycle events are the fake's shapes:
  ``session.created``, ``session.updated`` (answering ``session.update``),
  ``conversation.item.added`` for a user message, ``response.created``, the audio and
  transcript deltas, ``response.output_audio.done``, ``response.done``.

Selected with ``ServerSettings(lean=True)`` (the scale test's default); the control
interface (ready, logs, health, cpu, stop) is :mod:`benchmarks.fakeserver`'s.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any, cast

import orjson
from websockets.frames import apply_mask  # the C speedup when built
from websockets.http11 import Request
from websockets.server import ServerProtocol

from benchmarks.fakeserver import AUDIO, TRANSCRIPT, ServerSettings, SessionLog, _Health, _model_of
from benchmarks.stats import percentile

__all__ = ["serve_lean"]

_APPEND = b'{"type":"input_audio_buffer.append"'
perf_counter, perf_counter_ns = time.perf_counter, time.perf_counter_ns
_APPEND_SIZE = len(_APPEND)
_SAMPLE_RATE = 24_000


def _frames(chunk_seconds: float) -> tuple[bytes, bytes]:
    """The reply's audio and transcript deltas, JSON without the closing brace."""
    pcm = bytes(int(_SAMPLE_RATE * chunk_seconds) * 2)
    audio = {
        "type": "response.output_audio.delta",
        "event_id": "event_lean",
        "response_id": "resp_lean",
        "item_id": "item_lean",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(pcm).decode("ascii"),
    }
    transcript = {
        "type": "response.output_audio_transcript.delta",
        "event_id": "event_lean_t",
        "response_id": "resp_lean",
        "item_id": "item_lean",
        "output_index": 0,
        "content_index": 0,
        "delta": "word ",
    }
    return orjson.dumps(audio)[:-1], orjson.dumps(transcript)[:-1]


def _text_frame(payload: bytes) -> bytes:
    """An unmasked server-to-client text frame (RFC 6455 §5.2)."""
    size = len(payload)
    if size < 126:
        return b"\x81" + bytes((size,)) + payload
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + payload
    return b"\x81\x7f" + size.to_bytes(8, "big") + payload


class _Replies:
    """The protocol subset and the paced reply of one connection, for either front end.

    A front end supplies :meth:`send_text` (one text frame, pre-encoded payload) and
    :meth:`close`, stops the timer when the connection is lost, and calls
    :meth:`opened` once the upgrade is done and :meth:`on_message` for every client
    event other than an audio append.
    """

    def __init__(self, server: _LeanServer) -> None:
        self.server = server
        self.log: SessionLog | None = None
        self.words = 1
        self.timer: asyncio.TimerHandle | None = None
        self.left = 0  # audio deltas still to send in the running response
        self.sent_in_response = 0
        self.deadline = 0.0

    def send_text(self, payload: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def opened(self, path: str) -> None:
        """The upgrade is done: log under the ``model`` query value, send ``session.created``."""
        model = _model_of(path)
        self.log = self.server.logs.setdefault(model, SessionLog())
        self.send(
            {
                "type": "session.created",
                "event_id": "event_created",
                "session": {"id": "sess_lean", "model": model, "type": "realtime"},
            }
        )

    # -- the protocol subset ---------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        """Send a lifecycle event (rare: built with orjson)."""
        self.send_text(orjson.dumps(message))
        assert self.log is not None
        self.log.frames += 1

    def on_message(self, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "session.update":
            session = message.get("session") or {}
            self.send({"type": "session.updated", "event_id": "event_up", "session": session})
        elif kind == "conversation.item.create":
            item = message.get("item") or {}
            texts = [part.get("text", "") for part in item.get("content") or ()]
            self.words = max(1, len(" ".join(texts).split()))
            self.send(
                {
                    "type": "conversation.item.added",
                    "event_id": "event_item",
                    "item": {**item, "id": item.get("id") or "item_user", "status": "completed"},
                }
            )
        elif kind == "response.create":
            self.start_response()
        elif kind == "response.cancel" and self.left:
            self.end_response("cancelled")

    def start_response(self) -> None:
        settings = self.server.settings
        self.left = max(1, round(self.words * settings.seconds_per_word / settings.chunk_seconds))
        self.sent_in_response = 0
        self.send(
            {
                "type": "response.created",
                "event_id": "event_rc",
                "response": {"id": "resp_lean", "status": "in_progress", "output": []},
            }
        )
        loop = asyncio.get_running_loop()
        self.deadline = time.perf_counter()
        self.timer = loop.call_later(settings.pace_seconds, self.step)

    def step(self) -> None:
        """Send the next audio delta (and a transcript delta per word); re-arm the timer."""
        self.timer = None
        if self.left <= 0:  # (a closed connection has stopped the timer)
            return
        server = self.server
        log = self.log
        assert log is not None
        send_text = self.send_text
        if self.sent_in_response % server.frames_per_word == 0:
            send_text(server.stamped(server.transcript, log.sent[TRANSCRIPT]))
            log.frames += 1
        # server.stamped(server.audio, ...), inlined: the hottest line of the server
        if server.stamping:
            ns = perf_counter_ns()
            payload = server.audio + b',"bench_sent":%d.%09d}' % divmod(ns, 1_000_000_000)
            now = ns / 1e9
        else:
            now = perf_counter()
            payload = server.audio + b"}"
        log.sent[AUDIO].append(now)
        send_text(payload)
        log.frames += 1
        server.sent_at.append(now)  # how late against this step's deadline: health()
        server.lateness.append(now - self.deadline)
        self.sent_in_response += 1
        self.left -= 1
        if self.left == 0:
            self.end_response("completed")
        else:
            self.deadline += server.settings.pace_seconds
            delay = self.deadline - perf_counter()
            loop = server.loop
            self.timer = loop.call_later(delay, self.step) if delay > 0 else None
            if self.timer is None:
                loop.call_soon(self.step)

    def end_response(self, status: str) -> None:
        self.left = 0
        self.stop_timer()
        self.send(
            {
                "type": "response.output_audio.done",
                "event_id": "event_ad",
                "response_id": "resp_lean",
                "item_id": "item_lean",
                "output_index": 0,
                "content_index": 0,
            }
        )
        self.send(
            {
                "type": "response.done",
                "event_id": "event_rd",
                "response": {"id": "resp_lean", "status": status, "output": []},
            }
        )


class _Session(_Replies, asyncio.Protocol):
    """One client connection on a bare ``asyncio.Protocol`` (``engine="protocol"``).

    ``websockets``' ``ServerProtocol`` answers the upgrade; from then on the frames
    are read and written here directly: a client frame's header is parsed, the first
    bytes of a text frame unmasked to tell an audio append (dropped) from an event
    (unmasked whole and parsed), pings answered, a close echoed before the socket is
    closed. Reply frames are written pre-framed.
    """

    def __init__(self, server: _LeanServer) -> None:
        super().__init__(server)
        self.ws = ServerProtocol(max_size=2**25)
        self.transport: asyncio.Transport | None = None
        self.raw = False  # the upgrade is done: frames are handled here
        self.buffer = bytearray()

    # -- transport callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a stream transport (uvloop's TCPTransport is one without subclassing asyncio's)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.raw:
            self.frames_received(data)
            return
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                self.accept(event)
                return
        self.flush()

    def frames_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        size = len(buffer)
        position = 0
        while size - position >= 6:
            first, second = buffer[position], buffer[position + 1]
            length = second & 0x7F
            head = position + 2
            if length == 126:
                if size - position < 8:
                    break
                length = int.from_bytes(buffer[head : head + 2], "big")
                head += 2
            elif length == 127:
                if size - position < 14:
                    break
                length = int.from_bytes(buffer[head : head + 8], "big")
                head += 8
            start = head + 4
            end = start + length
            if end > size:
                break
            if not second & 0x80:  # client frames are masked (§5.3): hostile peer
                self.close()
                return
            mask = bytes(buffer[head:start])
            opcode = first & 0x0F
            if opcode == 0x1:
                if length < _APPEND_SIZE or (
                    apply_mask(bytes(buffer[start : start + _APPEND_SIZE]), mask) != _APPEND
                ):
                    self.on_message(orjson.loads(apply_mask(bytes(buffer[start:end]), mask)))
            elif opcode == 0x8:  # close: echo it, then close the socket (§5.5.1)
                payload = apply_mask(bytes(buffer[start:end]), mask)
                self.write(b"\x88" + bytes((len(payload),)) + payload)
                self.close()
                return
            elif opcode == 0x9:  # ping: pong with its payload
                payload = apply_mask(bytes(buffer[start:end]), mask)
                self.write(b"\x8a" + bytes((len(payload),)) + payload)
            position = end
        del buffer[:position]

    def eof_received(self) -> bool | None:
        if not self.raw:
            self.ws.receive_eof()
            self.flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_timer()

    def flush(self) -> None:
        """Write what the handshake protocol has to send (empty chunk: close the socket)."""
        transport = self.transport
        assert transport is not None
        for data in self.ws.data_to_send():
            if data:
                transport.write(data)
            else:
                transport.write_eof()

    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    def close(self) -> None:
        self.stop_timer()
        if self.transport is not None:
            self.transport.close()

    def accept(self, request: Request) -> None:
        response = self.ws.accept(request)
        self.ws.send_response(response)
        self.flush()
        if response.status_code != 101:
            return
        self.raw = True
        self.opened(request.path)

    def send_text(self, payload: bytes) -> None:
        self.write(_text_frame(payload))


class _LeanServer:
    """What every session of one server process shares."""

    def __init__(self, settings: ServerSettings, loop: asyncio.AbstractEventLoop) -> None:
        self.settings = settings
        self.loop = loop
        self.logs: dict[str, SessionLog] = {}
        self.audio, self.transcript = _frames(settings.chunk_seconds)
        self.frames_per_word = max(1, round(settings.seconds_per_word / settings.chunk_seconds))
        self.stamping = settings.stamp_frames
        #: every audio delta's send time and lateness against its 20 ms deadline
        self.sent_at: deque[float] = deque(maxlen=1_000_000)
        self.lateness: deque[float] = deque(maxlen=1_000_000)

    def pacing(self, start: float, end: float) -> dict[str, float]:
        """How late the audio deltas sent in ``[start, end)`` left against their deadlines.

        The schedule the clients see: a lagging server sends late, in bursts (the stamp
        is taken at the write, so the lateness is not in the event delay, but the bursts
        queue in the client). p99 and max in ms; uvloop's timers round to 1 ms.
        """
        late = sorted(
            x for at, x in zip(self.sent_at, self.lateness, strict=True) if start <= at < end
        )
        return {
            "pace_lateness_p99_ms": 1e3 * percentile(late, 99) if late else 0.0,
            "pace_lateness_max_ms": 1e3 * late[-1] if late else 0.0,
        }

    def stamped(self, head: bytes, sent: list[float]) -> bytes:
        """``head`` closed, with its ``bench_sent`` stamp when stamping; the stamp logged.

        The stamp is ``perf_counter`` (``CLOCK_MONOTONIC``) read right before the frame
        is written, taken in integer nanoseconds (``perf_counter_ns``, the same clock) so
        that it is written as ``seconds.nanoseconds`` without a float repr; the log keeps
        it in seconds, as ``perf_counter`` gives them.
        """
        if not self.stamping:
            sent.append(perf_counter())
            return head + b"}"
        ns = perf_counter_ns()
        sent.append(ns / 1e9)
        return head + b',"bench_sent":%d.%09d}' % divmod(ns, 1_000_000_000)


async def serve_lean(control: Connection, settings: ServerSettings) -> None:
    """Serve until the parent says stop; answer its control commands meanwhile."""
    loop = asyncio.get_running_loop()
    lean = _LeanServer(settings, loop)
    health = _Health()
    watcher = asyncio.create_task(health.watch() if settings.watch_health else asyncio.sleep(0))
    if settings.lean_engine == "picows":
        from benchmarks.leanpicows import picows_server

        server = await picows_server(lean)
    else:
        server = await loop.create_server(lambda: _Session(lean), "127.0.0.1", 0)
    try:
        port = next(iter(server.sockets)).getsockname()[1]
        control.send(("ready", port))
        while True:
            command, argument = await loop.run_in_executor(None, control.recv)
            if command == "logs":
                control.send({key: lean.logs.pop(key, SessionLog()) for key in argument})
            elif command == "cpu":
                control.send(time.process_time())
            elif command == "health":
                control.send({**health.between(*argument), **lean.pacing(*argument)})
            else:
                break
    finally:
        watcher.cancel()
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
