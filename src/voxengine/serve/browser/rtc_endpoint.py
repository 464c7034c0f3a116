"""The WebRTC signaling route (``POST /rtc/offer``) and the call's port over a peer.

The page POSTs ``{"type": "offer", "sdp": ..., "token": ..., "metadata": {...}}``
(the token may instead come as ``Authorization: Bearer``). The server verifies the
token, opens the call through the switchboard (limits, session factory, engine),
answers the offer with a complete SDP (non-trickle ICE) and returns
``{"type": "answer", "sdp": ..., "call_id": ..., "resume_token": ...}``.

**Resume.** A page whose call lost its worker POSTs a new offer with
``"resume_token"`` (from its last ``ready``) instead of ``"token"``, through the load
balancer, to any worker: the token's signature is checked first, the offer answered,
then the call is claimed in the state store (:meth:`Continuity.claim`, single use)
and opened with its history; the data channel gets ``ready`` (with the next
``resume_token``) and ``resumed`` (what came back and what was ``lost``), as on the
WebSocket path. The answer carries the next ``resume_token`` too, so a page whose
peer connection then fails to come up can still resume (over either transport).

From then on the call runs over
the peer: microphone and reply audio as RTP, and over the data channel the browser
WebSocket protocol's JSON messages (:mod:`voxengine.serve.browser.ws`), minus the
``hello``/``ready`` handshake (HTTP did that) and minus ``played`` reports: over
WebRTC the server counts what it handed to the encoder
(:class:`~voxengine.serve.browser.rtc_media.OutboundAudioTrack`).

Refusals are JSON errors with the close reason's wire name: 400 ``malformed``,
401 ``unauthorized``, 403 ``forbidden``, 413 ``too_big``, 429 ``too_many_calls``,
503 ``busy``/``going_away``/``state_unavailable``, 502 ``provider_failed``, 504
``timeout`` (answering took too long).

Contract: the route never raises; every call it opens ends (and its peer connection
is closed) when either side hangs up, the server drains, or the caller misbehaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final, final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from voxengine.audio.format import AudioFormat
from voxengine.serve.browser.control import PROTOCOL_VERSION, handle_control
from voxengine.serve.browser.webrtc import (
    CloseCause,
    RTCPeer,
    RTCSettings,
    SignalingRefused,
    check_offer,
)
from voxengine.serve.call import Call
from voxengine.serve.continuity import Resumption
from voxengine.serve.errors import CallRefused, CloseReason, TokenRefused
from voxengine.serve.switchboard import Switchboard, new_call_id, switchboard_of

__all__ = ["OFFER_PATH", "RTCPort", "webrtc_routes"]

logger = logging.getLogger("voxengine.serve.webrtc")

OFFER_PATH: Final = "/rtc/offer"
#: The peer's audio format both ways: 48 kHz is Opus's own rate, so aiortc resamples
#: nothing and the engine's stream resamplers do the one conversion to the provider.
RTC_FORMAT: Final = AudioFormat(sample_rate=48_000)

_STATUS: Final[Mapping[CloseReason, int]] = {
    CloseReason.MALFORMED: 400,
    CloseReason.PROTOCOL: 400,
    CloseReason.BAD_AUDIO: 400,
    CloseReason.UNAUTHORIZED: 401,
    CloseReason.FORBIDDEN: 403,
    CloseReason.TOO_BIG: 413,
    CloseReason.TOO_MANY_CALLS: 429,
    CloseReason.RATE_LIMITED: 429,
    CloseReason.BUSY: 503,
    CloseReason.GOING_AWAY: 503,
    CloseReason.STATE_UNAVAILABLE: 503,
    CloseReason.PROVIDER_FAILED: 502,
    CloseReason.TIMEOUT: 504,
}
_CAUSES: Final[Mapping[CloseCause, CloseReason]] = {
    "normal": CloseReason.NORMAL,
    "hangup": CloseReason.NORMAL,
    "malformed": CloseReason.MALFORMED,
    "too_big": CloseReason.TOO_BIG,
    "rate_limited": CloseReason.RATE_LIMITED,
    "timeout": CloseReason.TIMEOUT,
    "failed": CloseReason.NORMAL,
    "going_away": CloseReason.GOING_AWAY,
}
#: Bytes of the request body beyond the SDP (token, metadata, JSON framing).
_BODY_SLACK: Final = 8 * 1024


@final
class RTCPort:
    """:class:`~voxengine.serve.call.CallerPort` over an :class:`RTCPeer`."""

    def __init__(self, peer: RTCPeer) -> None:
        self.peer = peer

    @property
    def output_format(self) -> AudioFormat:
        """PCM16 mono at 48 kHz (see :data:`RTC_FORMAT`)."""
        return self.peer.track.format

    async def send_audio(self, pcm16: bytes, sample_rate: int) -> None:
        """Queue on the paced outbound track."""
        self.peer.send_audio(pcm16)

    async def clear_playback(self, epoch: int) -> None:
        """Drop the track's queue, count played audio of ``epoch`` from zero, and tell
        the page (``{"type": "clear", "epoch": n}``)."""
        self.peer.clear(epoch)
        self.peer.send_event({"type": "clear", "epoch": epoch})

    async def send_event(self, message: Mapping[str, Any]) -> None:
        """One data-channel message."""
        self.peer.send_event(message)

    async def close(self, reason: CloseReason, detail: str = "") -> None:
        """``bye`` on the data channel, then close the peer connection. Idempotent."""
        if not self.peer.closed:
            self.peer.send_event({"type": "bye", "reason": reason.wire_name, "detail": detail})
        cause: CloseCause = "going_away" if reason is CloseReason.GOING_AWAY else "normal"
        await self.peer.aclose(cause, bye=False)


def _error(reason: CloseReason, detail: str = "") -> Response:
    return JSONResponse(
        {"error": reason.wire_name, "detail": detail or reason.description},
        status_code=_STATUS.get(reason, 500),
    )


async def _body(request: Request, limit: int) -> dict[str, Any]:
    """The JSON object of the request, read up to ``limit`` bytes.

    Raises:
        CallRefused: ``too_big`` or ``malformed``.
    """
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise CallRefused(CloseReason.TOO_BIG, f"offer larger than {limit} bytes")
    try:
        body = json.loads(data)
    except ValueError:
        raise CallRefused(CloseReason.MALFORMED, "the offer is not JSON") from None
    if not isinstance(body, dict):
        raise CallRefused(CloseReason.MALFORMED, "the offer is not a JSON object")
    return body


def _token(request: Request, body: Mapping[str, Any]) -> object:
    auth = request.headers.get("authorization", "")
    if auth.startswith("Bearer "):
        return auth.removeprefix("Bearer ")
    return body.get("token")


class _Runner:
    """The calls this route started, so that shutdown leaves none running."""

    def __init__(self, settings: RTCSettings) -> None:
        self.settings = settings
        self.tasks: set[asyncio.Task[None]] = set()

    async def offer(self, request: Request) -> Response:
        board = switchboard_of(request)
        call_id = new_call_id()
        try:
            if not board.ready:
                raise CallRefused(CloseReason.GOING_AWAY, "server draining")
            body = await _body(request, self.settings.max_sdp_bytes + _BODY_SLACK)
            resume_token = body.get("resume_token")
            if resume_token is not None:  # a call continued from another worker
                # the signature before any work; the claim (single use) once answered
                if not isinstance(resume_token, str):
                    raise TokenRefused("resume_token must be a string")
                board.continuity.tokens.verify(resume_token)
                caller = ""
            else:
                caller = (await board.redeem(_token(request, body))).subject
            try:
                sdp = check_offer(body, self.settings)
            except SignalingRefused as exc:
                raise CallRefused(_CAUSES.get(exc.cause, CloseReason.MALFORMED), str(exc)) from None
            metadata = body.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise CallRefused(CloseReason.MALFORMED, "metadata must be an object")
        except CallRefused as exc:
            board.refuse(call_id, exc)
            return _error(exc.reason, exc.detail)
        client = f"{request.client.host}:{request.client.port}" if request.client else None
        limits = board.config.limits
        bridge = _Bridge(
            dataclasses.replace(
                self.settings,
                max_message_bytes=min(self.settings.max_message_bytes, limits.max_message_bytes),
                max_messages_per_second=limits.max_messages_per_second,
            )
        )
        peer = bridge.peer
        # the offer first: a bad one costs no engine (a peer closes itself on refusal)
        try:
            answer = await peer.answer(sdp)
        except SignalingRefused as exc:
            refused = CallRefused(_CAUSES.get(exc.cause, CloseReason.MALFORMED), str(exc))
            board.refuse(call_id, refused)
            return _error(refused.reason, refused.detail)
        resumption: Resumption | None = None
        if isinstance(resume_token, str):
            try:
                resumption = await board.continuity.claim(resume_token)
            except CallRefused as exc:
                await peer.aclose("normal", bye=False)
                board.refuse(call_id, exc)
                return _error(exc.reason, exc.detail)
            call_id, caller = resumption.call_id, resumption.caller
        started: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        # if this request is gone (the client left) nobody awaits ``started``: retrieve
        # its refusal here so that it is not an unhandled error
        started.add_done_callback(lambda f: f.cancelled() or f.exception())
        task = asyncio.create_task(
            _run_call(board, bridge, started, call_id, caller, client, metadata, resumption),
            name=f"{peer.name}-call",
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        try:
            call = await asyncio.shield(started)
        except CallRefused as exc:  # the task closed the peer
            return _error(exc.reason, exc.detail)
        resume = board.continuity.ready_fields(call.call_id)["resume_token"]
        return JSONResponse(
            {"type": "answer", "sdp": answer, "call_id": call.call_id, "resume_token": resume},
            headers={"cache-control": "no-store"},
        )


@final
class _Bridge:
    """The peer's callbacks into its call (set once the switchboard opened it)."""

    def __init__(self, settings: RTCSettings) -> None:
        self.call: Call | None = None
        self.peer = RTCPeer(
            input_format=RTC_FORMAT,
            output_format=RTC_FORMAT,
            on_audio=self.on_audio,
            on_message=self.on_message,
            on_played=self.on_played,
            settings=settings,
        )

    async def on_audio(self, pcm: bytes) -> None:
        call = self.call
        if call is None or call.closed:
            return
        try:
            await call.receive_audio(pcm, RTC_FORMAT.sample_rate)
        except CallRefused as exc:
            await call.close(exc.reason, exc.detail)

    async def on_message(self, message: dict[str, Any]) -> None:
        call = self.call
        if call is None or call.closed:
            return
        if message["type"] in ("played", "hello"):
            return  # the server counts played audio itself; HTTP was the hello
        try:
            await handle_control(call, message)
        except CallRefused as exc:
            await call.close(exc.reason, exc.detail)

    def on_played(self, seconds: float, epoch: int) -> None:
        if self.call is not None:
            self.call.report_played(seconds, epoch)


async def _run_call(
    board: Switchboard,
    bridge: _Bridge,
    started: asyncio.Future[Call],
    call_id: str,
    caller: str,
    client: str | None,
    metadata: dict[str, Any],
    resumption: Resumption | None = None,
) -> None:
    """Open the call, hand it to the route, and hold it until either side ends it."""
    peer = bridge.peer
    port = RTCPort(peer)
    try:
        async with board.open_call(
            port,
            endpoint="webrtc",
            caller=caller,
            client=client,
            params=metadata,
            call_id=call_id,
            resume=resumption,
        ) as call:
            bridge.call = call
            started.set_result(call)
            limits = board.config.limits
            call.send_event(
                {
                    "type": "ready",
                    "protocol": PROTOCOL_VERSION,
                    "transport": "webrtc",
                    "call_id": call.call_id,
                    "input_sample_rate": RTC_FORMAT.sample_rate,
                    "output_sample_rate": RTC_FORMAT.sample_rate,
                    **board.continuity.ready_fields(call.call_id),  # resume_token, durable
                    "limits": {
                        "max_message_bytes": peer.settings.max_message_bytes,
                        "max_call_seconds": limits.max_call_seconds,
                    },
                }
            )
            if resumption is not None and call.restored is not None:
                call.send_event(board.continuity.resumed_message(resumption, call.restored))
            peer_closed = asyncio.ensure_future(peer.wait_closed())
            call_closed = asyncio.ensure_future(call.wait_closed())
            try:
                await asyncio.wait({peer_closed, call_closed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (peer_closed, call_closed):
                    waiter.cancel()
            if not call.closed:
                await call.close(_CAUSES.get(peer.close_cause or "normal", CloseReason.NORMAL))
    except CallRefused as exc:
        if not started.done():
            started.set_exception(exc)
    except Exception as exc:
        logger.exception("webrtc call %s failed", call_id)
        if not started.done():
            started.set_exception(CallRefused(CloseReason.INTERNAL, type(exc).__name__))
    finally:
        with contextlib.suppress(Exception):
            await peer.aclose()


def webrtc_routes(settings: RTCSettings | None = None) -> Sequence[BaseRoute]:
    """The WebRTC signaling route, for :func:`voxengine.serve.build_app`'s ``routes``."""
    runner = _Runner(settings or RTCSettings())
    return [Route(OFFER_PATH, runner.offer, methods=["POST"])]
