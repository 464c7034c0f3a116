"""One caller talking to one :class:`~voxengine.VoiceEngine`: :class:`Call`.

An endpoint (browser WebSocket, WebRTC, Twilio Media Streams, ...) is a thin adapter:
it implements :class:`CallerPort` (how to reach the caller) and feeds the caller's
messages into :class:`Call`:

* ``await call.receive_audio(pcm16, sample_rate)``: microphone audio (any rate;
  the engine resamples to the provider's);
* ``await call.receive_text(text)``: a typed message;
* ``call.report_played(seconds, epoch)``: how much assistant audio the caller has
  actually played since the last clear (see :mod:`voxengine.serve.output`);
* ``await call.interrupt()``: the caller asks the assistant to stop;
* ``await call.close(reason)``: hang-up (``CloseReason.NORMAL``) or any other end.

In the other direction the call sends, in order, through the port: assistant audio
(``send_audio``, in the port's ``output_format``), ``clear_playback(epoch)`` on
barge-in, and control messages (``send_event``: transcripts, turn events, latency,
errors; see docs/serving-design.md for the message list), then ``close(reason)``.

Resampling between the caller's rates and the provider's uses
:class:`~voxengine.audio.lowdelay.LowDelayResampler` (nothing held back, a few ms of
filter delay) instead of the engine's default soxr resampler.

Barge-in: the engine's own :class:`~voxengine.voice_io.VoiceIO` sees the user's
speech start (provider VAD or local VAD), locates the play head from the caller's
reports, clears the caller's playback and truncates the assistant item there.

Contract: a :class:`Call` is used on one event loop; :meth:`close` is idempotent and
never raises; every other method raises :class:`~voxengine.serve.errors.CallRefused`
for bad caller input (``bad_audio``...), which ends this call only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, final

from voxengine.audio.format import AudioFormat
from voxengine.audio.lowdelay import LowDelayResampler
from voxengine.engine import VoiceEngine
from voxengine.errors import AudioError, InvalidState, VoxError
from voxengine.events import (
    AudioDelta,
    Event,
    Interrupted,
    KeyPressed,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    SessionClosed,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TranscriptDelta,
    TranscriptDone,
)
from voxengine.serve.errors import CallRefused, CloseReason
from voxengine.serve.factory import CallContext
from voxengine.serve.output import CallerOutput, Outbound
from voxengine.session.snapshot import ConversationSnapshot, RestoreResult

__all__ = ["Call", "CallObserver", "CallerPort"]

logger = logging.getLogger("voxengine.serve.call")

#: Seconds :meth:`Call.close` waits for the last queued messages to reach the caller.
FLUSH_TIMEOUT = 2.0


class CallerPort(Protocol):
    """How a :class:`Call` reaches its caller; one implementation per endpoint type.

    Methods are called from the call's sender task, one at a time, in order. They may
    raise any exception when the caller is gone; the call then ends.
    """

    @property
    def output_format(self) -> AudioFormat:
        """The format the caller plays (PCM16 mono at its rate)."""
        ...

    async def send_audio(self, pcm16: bytes, sample_rate: int) -> None:
        """Send assistant audio to be played after what was sent before."""
        ...

    async def clear_playback(self, epoch: int) -> None:
        """Stop playback now and drop what is queued; report played seconds for
        ``epoch`` from now on."""
        ...

    async def send_event(self, message: Mapping[str, Any]) -> None:
        """Send a control message (a JSON-able mapping with a ``"type"``)."""
        ...

    async def close(self, reason: CloseReason, detail: str = "") -> None:
        """End the caller's connection for ``reason``. Idempotent."""
        ...


class CallObserver(Protocol):
    """What a call reports for logs and metrics (:mod:`voxengine.serve.observe`)."""

    def first_audio(self, call: Call, seconds: float) -> None:
        """The assistant's first audio of a turn left ``seconds`` after the user's turn."""
        ...

    def provider_error(self, call: Call, code: str | None, message: str) -> None:
        """A recoverable provider error during the call."""
        ...

    def caller_error(self, call_id: str, reason: CloseReason, detail: str) -> None:
        """The caller did something that ends its call (e.g. ``slow_caller``)."""
        ...


def _wire_role(role: object) -> str:
    value = getattr(role, "value", role)
    return str(value)


@final
class Call:
    """One caller and its engine; see the module docstring.

    Args:
        engine: an unconnected engine without audio devices (from the session factory).
        port: the caller.
        context: the call's context (id, endpoint, caller).
        max_seconds: the call ends with ``time_limit`` after this long.
        observer: receives per-call measurements (optional).
        clock: monotonic time source.
        max_backlog_bytes: cap of the audio and messages waiting for a caller who
            does not read (:class:`~voxengine.serve.output.CallerOutput`); past it
            the call ends with ``slow_caller``. ``None``: no cap.
    """

    def __init__(
        self,
        engine: VoiceEngine,
        port: CallerPort,
        context: CallContext,
        *,
        max_seconds: float | None = None,
        observer: CallObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_backlog_bytes: int | None = None,
    ) -> None:
        if engine.config.audio_backend is not None:
            raise CallRefused(CloseReason.INTERNAL, "the call's engine must have no audio_backend")
        self.engine = engine
        self.port = port
        self.context = context
        self.output = CallerOutput(
            port.output_format, max_backlog_bytes=max_backlog_bytes, on_overflow=self._overflowed
        )
        self._max_seconds = max_seconds
        self._observer = observer
        self._clock = clock
        self.started_at = clock()
        self.close_reason: CloseReason | None = None
        #: How a resumed call's conversation came back (``None``: a new call).
        self.restored: RestoreResult | None = None
        self.close_detail = ""
        self._closed = asyncio.Event()
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closers: set[asyncio.Task[None]] = set()
        self._turn_ended_at: float | None = None
        self._first_audio_pending = False
        self._keys: asyncio.Task[None] | None = None
        self._port_closer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return (
            f"Call(id={self.call_id!r}, endpoint={self.context.endpoint!r}, closed={self.closed})"
        )

    @property
    def call_id(self) -> str:
        """The call's id."""
        return self.context.call_id

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed.is_set()

    @property
    def epoch(self) -> int:
        """The current playback epoch (bumped by every clear)."""
        return self.output.epoch

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, resume: ConversationSnapshot | None = None) -> RestoreResult | None:
        """Connect the engine with the caller as its speaker, start sending to the caller.

        With ``resume`` (a call continued from another worker) the engine resumes that
        conversation (:meth:`VoiceEngine.resume`) and the result says what came back.

        Raises:
            CallRefused: ``provider_failed`` when the provider cannot connect.
        """
        self.engine.voice.output = self.output  # the caller is the engine's speaker
        # resample without holding audio back: every held millisecond is added latency
        self.engine.voice.resampler_factory = LowDelayResampler
        events = self.engine.events
        events.on((TranscriptDelta, TranscriptDone, TextDelta), self._on_transcript)
        events.on((SpeechStarted, SpeechStopped), self._on_speech)
        events.on((ResponseStarted, ResponseDone), self._on_response)
        events.on(AudioDelta, self._on_audio)
        events.on(Interrupted, self._on_interrupted)
        events.on(ProviderErrorEvent, self._on_provider_error)
        events.on(SessionClosed, self._on_session_closed)
        result: RestoreResult | None = None
        try:
            if resume is None:
                await self.engine.connect()
            else:
                result = await self.engine.resume(resume)
        except VoxError as exc:
            raise CallRefused(CloseReason.PROVIDER_FAILED, type(exc).__name__) from exc
        self._tasks.append(asyncio.create_task(self._send_loop(), name=f"call-send-{self.call_id}"))
        if self._max_seconds is not None:
            self._tasks.append(
                asyncio.create_task(self._time_limit(self._max_seconds), name="call-limit")
            )
        return result

    async def wait_closed(self) -> CloseReason:
        """Wait until the call ends; returns why."""
        await self._closed.wait()
        assert self.close_reason is not None
        return self.close_reason

    async def close(self, reason: CloseReason = CloseReason.NORMAL, detail: str = "") -> None:
        """End the call: disconnect the engine, send what is queued, close the caller.

        Idempotent, bounded, never raises.
        """
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        self.close_reason, self.close_detail = reason, detail
        try:
            await self.engine.disconnect()
        except Exception:  # a bug in the engine must not keep the caller open
            logger.exception("call %s: engine disconnect failed", self.call_id)
        sender = self._tasks[0] if self._tasks else None
        for task in self._tasks[1:]:
            task.cancel()
        if self._keys is not None:
            self._keys.cancel()
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        if reason is not CloseReason.SLOW_CALLER:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._flush(), FLUSH_TIMEOUT)
            await self._close_port(reason, detail)
        else:  # a caller who does not read gets nothing more, and its close may wait
            self.output.drain_nowait()
            # for its socket to take it: the call does not wait for that
            self._port_closer = asyncio.create_task(
                self._close_port(reason, detail), name=f"call-close-port-{self.call_id}"
            )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._port_closer), FLUSH_TIMEOUT)
        self._closed.set()

    async def _close_port(self, reason: CloseReason, detail: str) -> None:
        with contextlib.suppress(Exception):
            await self.port.close(reason, detail)

    def _close_soon(self, reason: CloseReason, detail: str = "") -> None:
        """Close from a callback or a task that :meth:`close` itself would cancel."""
        if self._closing:
            return
        task = asyncio.create_task(self.close(reason, detail), name=f"call-close-{self.call_id}")
        self._closers.add(task)
        task.add_done_callback(self._closers.discard)

    async def _flush(self) -> None:
        for item in self.output.drain_nowait():
            await self._deliver(item)

    async def _time_limit(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._close_soon(CloseReason.TIME_LIMIT)

    # -- from the caller -----------------------------------------------------------------

    async def receive_audio(self, pcm16: bytes, sample_rate: int) -> None:
        """Microphone audio from the caller (PCM16 mono at ``sample_rate``).

        Raises:
            CallRefused: ``bad_audio`` for malformed audio or an invalid rate.
        """
        try:
            await self.engine.send_audio(pcm16, sample_rate=sample_rate)
        except AudioError as exc:
            raise CallRefused(CloseReason.BAD_AUDIO, str(exc)) from exc
        except InvalidState:
            logger.debug("call %s: audio after the session closed", self.call_id)

    async def receive_text(self, text: str) -> None:
        """A typed user message; the assistant answers it."""
        self._turn_ended()
        try:
            await self.engine.send_text(text)
        except InvalidState:
            logger.debug("call %s: text after the session closed", self.call_id)

    def receive_key(self, digit: str) -> None:
        """The caller pressed a telephone key (DTMF ``digit``, already validated).

        Emitted as :class:`~voxengine.events.KeyPressed` on the call's engine, where
        the application's handlers (``engine.events.on(KeyPressed, ...)``) receive it.
        Presses are delivered one at a time, in order, from a task of their own: a
        slow handler never holds up the caller's audio.
        """
        if self._closing:
            return
        previous = self._keys

        async def deliver() -> None:
            if previous is not None:
                await asyncio.wait({previous})  # its outcome is its own; ours may be cancel
            try:
                await self.engine.events.emit(KeyPressed(digit=digit))
            except Exception:  # the bus contains handler errors; anything else is a bug
                logger.exception("call %s: key press delivery failed", self.call_id)

        self._keys = asyncio.create_task(deliver(), name=f"call-key-{self.call_id}")

    def report_played(self, seconds: float, epoch: int | None = None) -> None:
        """The caller played ``seconds`` of assistant audio since clear ``epoch``."""
        self.output.report_played(seconds, epoch)

    async def interrupt(self) -> Interrupted | None:
        """The caller asks the assistant to stop (truncated at what it played)."""
        try:
            return await self.engine.interrupt()
        except InvalidState:
            return None

    # -- to the caller ---------------------------------------------------------------------

    async def _send_loop(self) -> None:
        try:
            while True:
                await self._deliver(await self.output.next_outbound())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the caller is gone: end the call
            logger.info("call %s: caller unreachable (%s)", self.call_id, type(exc).__name__)
            self._close_soon(CloseReason.NORMAL, "caller gone")

    def _overflowed(self) -> None:
        detail = f"more than {self.output.max_backlog_bytes} bytes waiting for the caller"
        logger.warning("call %s: the caller is not reading (%s)", self.call_id, detail)
        if self._observer is not None:
            self._observer.caller_error(self.call_id, CloseReason.SLOW_CALLER, detail)
        self._close_soon(CloseReason.SLOW_CALLER, detail)

    async def _deliver(self, item: Outbound) -> None:
        if item.kind == "audio":
            await self.port.send_audio(item.pcm, self.output.format.sample_rate)
        elif item.kind == "clear":
            await self.port.clear_playback(item.epoch)
        elif item.message is not None:
            await self.port.send_event(item.message)

    def send_event(self, message: dict[str, object]) -> None:
        """Queue a control message for the caller, in order with the audio."""
        self.output.send_event(message)

    _send = send_event

    def _turn_ended(self) -> None:
        self._turn_ended_at = self._clock()
        self._first_audio_pending = True

    def _on_transcript(self, event: Event) -> None:
        match event:
            case TranscriptDelta(role=role, item_id=item_id, delta=delta):
                self._send(
                    {
                        "type": "transcript",
                        "role": _wire_role(role),
                        "item_id": item_id,
                        "text": delta,
                        "final": False,
                    }
                )
            case TranscriptDone(role=role, item_id=item_id, transcript=text):
                self._send(
                    {
                        "type": "transcript",
                        "role": _wire_role(role),
                        "item_id": item_id,
                        "text": text,
                        "final": True,
                    }
                )
            case TextDelta(item_id=item_id, delta=delta):
                self._send(
                    {
                        "type": "transcript",
                        "role": "assistant",
                        "item_id": item_id,
                        "text": delta,
                        "final": False,
                    }
                )
            case _:
                pass

    def _on_speech(self, event: Event) -> None:
        if isinstance(event, SpeechStopped):
            self._turn_ended()
        state = "started" if isinstance(event, SpeechStarted) else "stopped"
        self._send({"type": "speech", "state": state})

    def _on_response(self, event: Event) -> None:
        if isinstance(event, ResponseStarted):
            self._send({"type": "response", "state": "started", "response_id": event.response_id})
        elif isinstance(event, ResponseDone):
            self._send(
                {
                    "type": "response",
                    "state": "done",
                    "response_id": event.response_id,
                    "status": event.status.value,
                }
            )

    def _on_audio(self, event: AudioDelta) -> None:
        if self._first_audio_pending and self._turn_ended_at is not None:
            self._first_audio_pending = False
            seconds = self._clock() - self._turn_ended_at
            self._send({"type": "latency", "first_audio": round(seconds, 4)})
            if self._observer is not None:
                self._observer.first_audio(self, seconds)

    def _on_interrupted(self, event: Interrupted) -> None:
        self._send({"type": "interrupted", "item_id": event.item_id, "played": event.played})

    def _on_provider_error(self, event: ProviderErrorEvent) -> None:
        if self._observer is not None:
            self._observer.provider_error(self, event.code, event.message)
        self._send({"type": "error", "code": event.code, "message": event.message})

    def _on_session_closed(self, event: SessionClosed) -> None:
        if self._closing:
            return
        reason = CloseReason.NORMAL if event.code in (None, 1000) else CloseReason.PROVIDER_FAILED
        self._close_soon(reason, event.reason)
