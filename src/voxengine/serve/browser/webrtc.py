"""The browser's WebRTC path, server side: one :class:`RTCPeer` per call, on aiortc.

Signaling is one HTTP exchange (non-trickle ICE): the page POSTs its SDP offer, the
server creates a peer connection, gathers its candidates (host candidates suffice on
one machine or a LAN; ``ice_servers`` adds STUN/TURN) and answers with a complete SDP.
Media then flows over SRTP/UDP, so the browser's echo cancellation, noise suppression
and jitter buffer apply to the call:

* caller -> server: the microphone track, decoded by aiortc and converted to the
  engine's input rate (:class:`~voxengine.serve.browser.rtc_media.InboundAudio`);
* server -> caller: :class:`~voxengine.serve.browser.rtc_media.OutboundAudioTrack`,
  paced 20 ms frames whose per-item count is the played position barge-in truncates at;
* both ways: a data channel carrying the same JSON messages as the WebSocket path
  (transcripts, latency, barge-in, the page's reports), one JSON object per message.

Hostile input ends that call only: an unparsable or oversize SDP is refused before a
peer connection exists; a binary, oversize, non-object or unparsable data-channel
message, or a flood that overruns the inbox, closes that peer.

Contract: :meth:`RTCPeer.answer` raises :class:`SignalingRefused` for a bad offer and
leaves nothing running; :meth:`RTCPeer.aclose` is idempotent and, once it returns, no
task, track or peer connection of the call is left. Any other exception is a bug.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, final

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from voxengine import _json
from voxengine.audio.format import AudioFormat
from voxengine.errors import ConfigError, ProtocolViolation
from voxengine.serve.browser.rtc_media import InboundAudio, OutboundAudioTrack
from voxengine.serve.limits import RateWindow

__all__ = [
    "CloseCause",
    "RTCPeer",
    "RTCSettings",
    "SignalingRefused",
    "check_offer",
]

logger = logging.getLogger("voxengine.serve.webrtc")

CloseCause = Literal[
    "normal", "hangup", "malformed", "too_big", "rate_limited", "timeout", "failed", "going_away"
]
"""Why a peer closed (the same wire names as the WebSocket path's close reasons)."""

_INBOX_SIZE: Final = 256
#: Events kept for a data channel that has not opened yet (beyond: dropped).
_OUTBOX_SIZE: Final = 1024
#: The ``bye`` reason (the close reasons' wire names) for each way a peer closes itself.
_BYE_REASON: Final[dict[str, str]] = {
    "normal": "normal",
    "malformed": "malformed",
    "too_big": "too_big",
    "rate_limited": "rate_limited",
    "timeout": "timeout",
    "failed": "internal",
    "going_away": "going_away",
}
_ids = itertools.count(1)


class SignalingRefused(ProtocolViolation):
    """The SDP offer was refused (unparsable, oversize, or without an audio section).

    Attributes:
        cause: ``"malformed"`` or ``"too_big"``.
    """

    def __init__(self, cause: CloseCause, detail: str) -> None:
        self.cause = cause
        super().__init__(f"{cause}: {detail}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RTCSettings:
    """WebRTC settings of a deployment.

    Attributes:
        jitter_allowance: seconds of handed-out audio assumed still in flight or in the
            browser's jitter buffer at a barge-in; the played position is the count
            handed to the encoder less this.
        connect_timeout: seconds from the answer to an established connection, then
            the peer is closed (``"timeout"``).
        answer_timeout: seconds to build the answer (ICE gathering included).
        max_sdp_bytes: the largest SDP offer accepted (``"too_big"`` beyond).
        max_message_bytes: the largest data-channel message accepted.
        max_messages_per_second: data-channel messages a caller may send per second
            (a token bucket; over it the peer closes with ``"rate_limited"``).
        ice_servers: STUN/TURN URLs for callers beyond the local network (none: host
            candidates only).
    """

    jitter_allowance: float = 0.06
    connect_timeout: float = 15.0
    answer_timeout: float = 10.0
    max_sdp_bytes: int = 32 * 1024
    max_message_bytes: int = 16 * 1024
    max_messages_per_second: int = 200
    ice_servers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("jitter_allowance", "connect_timeout", "answer_timeout"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0:
                raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")
        for name in ("max_sdp_bytes", "max_message_bytes", "max_messages_per_second"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")


#: Awaited with each chunk of the caller's audio, at the engine's input rate.
AudioSink = Callable[[bytes], Awaitable[None]]
#: Awaited with each data-channel message from the page (a JSON object).
MessageSink = Callable[[dict[str, Any]], Awaitable[None]]


def check_offer(body: object, settings: RTCSettings) -> str:
    """The SDP text of a signaling request body ``{"type": "offer", "sdp": "..."}``.

    Raises:
        SignalingRefused: the body is not such an object, the SDP is oversize or has no
            audio section.
    """
    if not isinstance(body, dict) or body.get("type") != "offer":
        raise SignalingRefused("malformed", 'expected {"type": "offer", "sdp": "..."}')
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise SignalingRefused("malformed", "sdp must be SDP text (starting with v=0)")
    if len(sdp.encode()) > settings.max_sdp_bytes:
        raise SignalingRefused("too_big", f"SDP larger than {settings.max_sdp_bytes} bytes")
    if "\nm=audio " not in sdp.replace("\r\n", "\n"):
        raise SignalingRefused("malformed", "the offer has no audio section")
    return sdp


@final
class RTCPeer:
    """One caller's peer connection: the caller side of a call over WebRTC.

    The call reads the caller through ``on_audio``/``on_message``/``on_played`` and
    speaks through :meth:`send_audio`, :meth:`clear`, :meth:`send_event` and
    :meth:`aclose`.

    Args:
        input_format: the format ``on_audio`` receives (mono).
        output_format: the format :meth:`send_audio` takes (mono).
        on_audio: awaited with each chunk of the caller's audio, in order.
        on_message: awaited with each data-channel message, in order.
        on_played: called with (seconds heard since clear ``epoch``, ``epoch``).
        settings: limits and timeouts.
    """

    def __init__(
        self,
        *,
        input_format: AudioFormat,
        output_format: AudioFormat,
        on_audio: AudioSink,
        on_message: MessageSink,
        on_played: Callable[[float, int], None] | None = None,
        settings: RTCSettings | None = None,
    ) -> None:
        self.settings = settings or RTCSettings()
        self.name = f"rtc-{next(_ids)}"
        self._input_format = input_format
        self._on_audio = on_audio
        self._on_message = on_message
        self.track = OutboundAudioTrack(
            output_format, jitter_allowance=self.settings.jitter_allowance, on_played=on_played
        )
        config = RTCConfiguration(
            iceServers=[RTCIceServer(urls=url) for url in self.settings.ice_servers]
        )
        self._pc = RTCPeerConnection(configuration=config)
        self._channel: RTCDataChannel | None = None
        self._outbox: list[str] = []  # events before the data channel opened
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_INBOX_SIZE)
        self._rate = RateWindow(self.settings.max_messages_per_second)
        self._tasks: set[asyncio.Task[None]] = set()
        self._connected = asyncio.Event()
        self._closed = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None
        self.close_cause: CloseCause | None = None
        self.inbound: InboundAudio | None = None
        self._pc.on("track", self._on_track)
        self._pc.on("datachannel", self._on_datachannel)
        self._pc.on("connectionstatechange", self._on_state)

    def __repr__(self) -> str:
        return f"<RTCPeer {self.name} {self._pc.connectionState}>"

    @property
    def connection_state(self) -> str:
        """The peer connection's state (``"new"``, ``"connecting"``, ``"connected"``...)."""
        return str(self._pc.connectionState)

    @property
    def closed(self) -> bool:
        """Whether the peer is closed (or closing)."""
        return self._closed.is_set() or self._closing is not None

    # -- signaling ------------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        """Apply the caller's SDP offer and return the complete SDP answer.

        Raises:
            SignalingRefused: aiortc could not use the offer (the peer is closed).
        """
        try:
            async with asyncio.timeout(self.settings.answer_timeout):
                await self._pc.setRemoteDescription(
                    RTCSessionDescription(sdp=offer_sdp, type="offer")
                )
                audio = [t for t in self._pc.getTransceivers() if t.kind == "audio"]
                if not audio:
                    raise SignalingRefused("malformed", "the offer has no audio section")
                audio[0].sender.replaceTrack(self.track)
                audio[0].direction = "sendrecv"
                await self._pc.setLocalDescription(await self._pc.createAnswer())
        except SignalingRefused:
            await self.aclose("malformed")
            raise
        except TimeoutError as exc:
            await self.aclose("timeout")
            raise SignalingRefused("timeout", "answering took too long") from exc
        except Exception as exc:  # remote input: whatever aiortc trips over is a bad offer
            await self.aclose("malformed")
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise SignalingRefused("malformed", f"unusable SDP offer ({detail[:200]})") from exc
        self._spawn(self._watch_connect, "connect-watch")
        self._spawn(self._drain_inbox, "inbox")
        description = self._pc.localDescription
        return str(description.sdp)

    async def _watch_connect(self) -> None:
        try:
            async with asyncio.timeout(self.settings.connect_timeout):
                await self._connected.wait()
        except TimeoutError:
            logger.info("%s: no connection within %.0f s", self.name, self.settings.connect_timeout)
            self.close_soon("timeout")

    # -- aiortc callbacks (sync; real work goes to owned tasks) ---------------------------

    def _on_state(self) -> None:
        state = self._pc.connectionState
        logger.debug("%s: connection %s", self.name, state)
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self.close_soon("failed" if state == "failed" else "hangup")

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio" or self.inbound is not None:
            return  # one microphone; anything else is ignored (aiortc discards it)
        self.inbound = InboundAudio(track, self._input_format, self._on_audio)
        self._spawn(self.inbound.run, "inbound-audio")

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if self._channel is not None:
            channel.close()  # one events channel per call
            return
        self._channel = channel
        channel.on("message", self._on_channel_message)
        channel.on("close", lambda: self.close_soon("hangup"))
        if channel.readyState == "open":
            self._flush_outbox()
        else:
            channel.on("open", self._flush_outbox)

    def _on_channel_message(self, message: object) -> None:
        if self.closed:
            return
        if not isinstance(message, str):
            logger.info("%s: binary data-channel message; closing", self.name)
            self.close_soon("malformed")
            return
        if len(message) > self.settings.max_message_bytes or (
            len(message.encode()) > self.settings.max_message_bytes
        ):
            logger.info("%s: data-channel message over the limit; closing", self.name)
            self.close_soon("too_big")
            return
        try:
            value = _json.loads(message)
        except _json.JSONDecodeError:
            value = None
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            logger.info("%s: data-channel message is not a typed JSON object; closing", self.name)
            self.close_soon("malformed")
            return
        if not self._rate.allow():
            logger.info("%s: over max_messages_per_second; closing", self.name)
            self.close_soon("rate_limited")
            return
        try:
            self._inbox.put_nowait(value)
        except asyncio.QueueFull:
            logger.info("%s: data-channel flood; closing", self.name)
            self.close_soon("rate_limited")

    async def _drain_inbox(self) -> None:
        # a message may close the peer from this very task: then the loop ends here
        while not self.closed:
            message = await self._inbox.get()
            await self._on_message(message)

    # -- the caller port: what the call does to the caller --------------------------------

    def send_audio(self, pcm: bytes) -> None:
        """Queue assistant audio (PCM16 in the output format) after what is queued."""
        if not self.closed:
            self.track.write(pcm)

    def clear(self, epoch: int) -> float:
        """Barge-in: drop the queued audio, count played audio of ``epoch`` from zero;
        returns the seconds dropped."""
        return self.track.clear(epoch)

    def send_event(self, message: Mapping[str, Any]) -> None:
        """Send one JSON message on the data channel (queued until it opens)."""
        if self.closed:
            return
        text = _json.dumps(dict(message))
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(text)
        elif len(self._outbox) < _OUTBOX_SIZE:
            self._outbox.append(text)

    def _flush_outbox(self) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            return
        outbox, self._outbox = self._outbox, []
        for text in outbox:
            channel.send(text)

    # -- life -----------------------------------------------------------------------------

    async def wait_closed(self) -> CloseCause | None:
        """Wait until the peer has closed; returns why."""
        await self._closed.wait()
        return self.close_cause

    def close_soon(self, cause: CloseCause) -> None:
        """Close the peer in the background (from a callback); see :meth:`aclose`."""
        if self._closing is None and not self._closed.is_set():
            self._closing = asyncio.get_running_loop().create_task(
                self._close(cause, bye=True), name=f"{self.name}-close"
            )

    async def aclose(self, cause: CloseCause = "normal", *, bye: bool = True) -> None:
        """Close the peer connection, stop the tracks and end every task. Idempotent.

        With ``bye`` the page is told why first (``{"type": "bye", "reason": ...}``, as
        on the WebSocket path), unless it hung up itself.
        """
        if self._closed.is_set():
            return
        if self._closing is None:
            self._closing = asyncio.current_task()
            await self._close(cause, bye=bye)
        elif self._closing is not asyncio.current_task():
            await asyncio.shield(self._closing)

    async def _close(self, cause: CloseCause, *, bye: bool) -> None:
        if self.close_cause is None:
            self.close_cause = cause
        logger.info("%s: closing (%s)", self.name, cause)
        channel = self._channel
        if bye and cause != "hangup" and channel is not None and channel.readyState == "open":
            with contextlib.suppress(Exception):  # the transport may be gone already
                channel.send(_json.dumps({"type": "bye", "reason": _BYE_REASON[cause]}))
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        self.track.stop()
        await self._pc.close()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._closed.set()

    def _spawn(self, work: Callable[[], Awaitable[None]], what: str) -> None:
        # the coroutine is made inside the task: a task cancelled before it starts
        # leaves no never-awaited coroutine behind
        async def run() -> None:
            try:
                await work()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: %s failed; closing the call", self.name, what)
                self.close_soon("failed")

        task = asyncio.get_running_loop().create_task(run(), name=f"{self.name}-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
