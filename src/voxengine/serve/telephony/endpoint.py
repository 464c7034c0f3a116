"""Twilio phone calls into a voxengine server: ``POST /twilio/voice`` and ``WS /twilio/stream``.

Mount with ``build_app(config, factory, routes=twilio_routes(TwilioConfig(...)))``.

1. A call comes in; Twilio posts the voice webhook (``voice_path``). The request is
   refused (403) unless its ``X-Twilio-Signature`` verifies against the account's
   auth token over the public URL and the form parameters. Otherwise the answer is
   TwiML ``<Connect><Stream>`` to ``stream_path`` with one ``<Parameter name="token">``:
   a signed, short-lived, single-use call token (:mod:`voxengine.serve.auth`) bound
   to the ``CallSid`` (its ``cid`` claim), subject ``twilio:<From>`` (per-caller
   limits count by it; ``twilio:<CallSid>`` for a withheld number).
2. Twilio opens the stream WebSocket. The upgrade is refused (HTTP 403) unless its
   own ``X-Twilio-Signature`` verifies (over the ``wss://`` URL). The stream must
   send ``start`` within ``hello_timeout``; its ``customParameters.token`` must verify
   and name the same ``callSid``. Then :meth:`Switchboard.open_call` starts the call.
3. Caller audio (8 kHz μ-law) goes to the call, upsampled once to the provider's rate
   (:class:`~voxengine.audio.lowdelay.LowDelayResampler`: nothing held back, 3 ms of
   filter delay); the assistant's audio comes back as media frames of up to 20 ms
   (each chunk the engine writes leaves at once), each followed by a mark; Twilio's
   mark acknowledgements are the played position (``Call.report_played``), so
   barge-in (``clear``) truncates the reply at what the caller heard. A ``dtmf`` key press becomes
   :class:`~voxengine.events.KeyPressed` on the call's engine (:meth:`Call.receive_key`).
   ``stop`` ends the call.

A frame that breaks the protocol (:class:`CarrierFrameError`), a frame over
``max_message_bytes`` or a flood ends that call only, with the matching close code.
Another carrier reuses all of this with its own serializer (see
:mod:`voxengine.serve.telephony.carrier`); only the webhook/TwiML half is Twilio's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, final
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketState

from voxengine.audio.format import AudioFormat
from voxengine.errors import ConfigError
from voxengine.serve.call import Call
from voxengine.serve.errors import CallRefused, CloseReason, TokenRefused
from voxengine.serve.limits import RateWindow
from voxengine.serve.switchboard import Switchboard, new_call_id, switchboard_of
from voxengine.serve.telephony.carrier import CarrierFrameError, DtmfReceived, StreamStopped
from voxengine.serve.telephony.stream import CallerAudio, MediaStream, PlayedUpTo
from voxengine.serve.telephony.twilio import (
    TwilioSerializer,
    connect_stream_twiml,
    signature_algorithm,
    verify_twilio_signature,
)

__all__ = ["TwilioConfig", "TwilioPort", "twilio_routes"]

logger = logging.getLogger("voxengine.serve.telephony")

_RATE: Final = 8000
_MAX_WEBHOOK_BYTES: Final = 16 * 1024
_SIGNATURE: Final = "x-twilio-signature"
_SETTINGS: Final = "x-twilio-webhooks-signature-settings"
#: ``From`` values of callers who withhold their number (Twilio sends one of these).
_ANONYMOUS: Final = frozenset({"", "anonymous", "restricted", "unknown", "+266696687"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TwilioConfig:
    """Settings of the Twilio endpoints.

    Attributes:
        auth_token: the Twilio account's auth token (verifies ``X-Twilio-Signature``;
            never logged or shown in the repr).
        public_url: the origin Twilio reaches, e.g. ``"https://voice.example.com"``
            (behind a proxy or tunnel, the request's own URL differs from what Twilio
            signed). ``None``: the request's scheme and ``Host``.
        voice_path: the voice webhook path (configure it on the Twilio number).
        stream_path: the Media Streams WebSocket path.
        chunk_seconds: outbound audio per media frame and mark (played-position
            precision).

    Raises:
        ConfigError: an empty auth token, a path not starting with ``/``, or a
            public URL that is not ``http(s)://host``.
    """

    auth_token: str = field(repr=False)
    public_url: str | None = None
    voice_path: str = "/twilio/voice"
    stream_path: str = "/twilio/stream"
    chunk_seconds: float = 0.02

    def __post_init__(self) -> None:
        if not isinstance(self.auth_token, str) or not self.auth_token:
            raise ConfigError("TwilioConfig.auth_token is required (the account's auth token)")
        for path in (self.voice_path, self.stream_path):
            if not path.startswith("/"):
                raise ConfigError(f"Twilio paths must start with '/', got {path!r}")
        if self.public_url is not None:
            parts = urlsplit(self.public_url)
            if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query:
                raise ConfigError("public_url must be http(s)://host[:port][/prefix]")


def twilio_routes(config: TwilioConfig) -> list[BaseRoute]:
    """The two routes (voice webhook, stream WebSocket) to pass to ``build_app(routes=)``."""

    async def voice(request: Request) -> Response:
        return await _voice_webhook(request, config)

    async def stream(websocket: WebSocket) -> None:
        await _stream_endpoint(websocket, config)

    return [
        Route(config.voice_path, voice, methods=["POST"]),
        WebSocketRoute(config.stream_path, stream),
    ]


# -- URLs -------------------------------------------------------------------------------


def _public_url(connection: HTTPConnection, config: TwilioConfig, *, websocket: bool) -> str:
    """The URL Twilio requested, as it signed it."""
    url = connection.url
    if config.public_url is not None:
        base = urlsplit(config.public_url)
        scheme = base.scheme
        path = base.path.rstrip("/") + url.path
        parts = (scheme, base.netloc, path, url.query, "")
    else:
        parts = (url.scheme, url.netloc, url.path, url.query, "")
    scheme = parts[0]
    if websocket:
        scheme = {"https": "wss", "http": "ws"}.get(scheme, scheme)
    elif scheme in {"wss", "ws"}:
        scheme = "https" if scheme == "wss" else "http"
    return urlunsplit((scheme, *parts[1:]))


def _stream_url(request: Request, config: TwilioConfig) -> str:
    if config.public_url is not None:
        base = urlsplit(config.public_url)
        scheme, netloc, prefix = base.scheme, base.netloc, base.path.rstrip("/")
    else:
        scheme, netloc, prefix = request.url.scheme, request.url.netloc, ""
    scheme = "wss" if scheme == "https" else "ws"
    return urlunsplit((scheme, netloc, prefix + config.stream_path, "", ""))


def _signed(connection: HTTPConnection, config: TwilioConfig, params: Any, *, ws: bool) -> bool:
    return verify_twilio_signature(
        config.auth_token,
        _public_url(connection, config, websocket=ws),
        params,
        connection.headers.get(_SIGNATURE),
        algorithm=signature_algorithm(connection.headers.get(_SETTINGS)),
    )


# -- the voice webhook ------------------------------------------------------------------


async def _voice_webhook(request: Request, config: TwilioConfig) -> Response:
    board = switchboard_of(request)
    body = await request.body()
    if len(body) > _MAX_WEBHOOK_BYTES:
        return PlainTextResponse("request too large", status_code=413)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body and content_type != "application/x-www-form-urlencoded":
        return PlainTextResponse("expected a form-encoded Twilio webhook", status_code=415)
    try:
        params = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return PlainTextResponse("form is not UTF-8", status_code=400)
    if not _signed(request, config, params, ws=False):
        logger.warning("twilio: voice webhook with a missing or invalid signature refused")
        board.refuse(new_call_id(), CallRefused(CloseReason.UNAUTHORIZED, "twilio signature"))
        return PlainTextResponse("invalid Twilio signature", status_code=403)
    if not board.ready:
        return PlainTextResponse("server draining", status_code=503)  # Twilio's fallback URL
    values = dict(params)
    call_sid = values.get("CallSid", "")
    if not call_sid:
        return PlainTextResponse("CallSid missing", status_code=400)
    caller = values.get("From", "").strip()
    if caller.lower() in _ANONYMOUS:  # withheld numbers are not one caller: count per call
        caller = call_sid
    token = board.tokens.issue(f"twilio:{caller}"[:200], call_id=call_sid)
    twiml = connect_stream_twiml(_stream_url(request, config), parameters={"token": token})
    return Response(twiml, media_type="text/xml", headers={"cache-control": "no-store"})


# -- the stream -------------------------------------------------------------------------


@final
class TwilioPort:
    """:class:`~voxengine.serve.call.CallerPort` over a Twilio Media Stream.

    Audio leaves at once as μ-law media frames of at most 20 ms, a mark after each
    (nothing waits for a whole frame: waiting would add latency); ``clear_playback``
    sends Twilio's ``clear``; control messages have no place on Twilio's wire and are
    dropped (logged at debug level).
    """

    def __init__(self, websocket: WebSocket, stream: MediaStream) -> None:
        self._ws = websocket
        self._stream = stream
        self._format = AudioFormat(sample_rate=_RATE)
        self._epoch = 0
        self._epoch_origin = 0.0
        self._closed = False

    @property
    def output_format(self) -> AudioFormat:
        """PCM16 mono at 8 kHz (the port encodes μ-law)."""
        return self._format

    async def send_audio(self, pcm16: bytes, sample_rate: int) -> None:
        """Media frames (and marks) for ``pcm16``; nothing is held back."""
        for frame in self._stream.send_audio(pcm16, partial=True):
            await self._send(frame)

    async def clear_playback(self, epoch: int) -> None:
        """Twilio ``clear``; played seconds count from here for ``epoch``."""
        frames = self._stream.clear()
        self._epoch, self._epoch_origin = epoch, self._stream.played_seconds
        for frame in frames:
            await self._send(frame)

    async def send_event(self, message: Mapping[str, Any]) -> None:
        """Dropped: Twilio streams carry audio and marks only."""
        logger.debug("twilio: no wire for %r messages", message.get("type"))

    async def close(self, reason: CloseReason, detail: str = "") -> None:
        """Close the stream with the reason's code (Twilio moves on to the next TwiML)."""
        if self._closed:
            return
        self._closed = True
        await _close(self._ws, reason)

    def played(self, event: PlayedUpTo, call: Call) -> None:
        """Report a mark acknowledgement to the call, in seconds since the last clear."""
        call.report_played(max(0.0, event.seconds - self._epoch_origin), self._epoch)

    async def _send(self, frame: str | bytes) -> None:
        if isinstance(frame, str):
            await self._ws.send_text(frame)
        else:
            await self._ws.send_bytes(frame)


async def _close(ws: WebSocket, reason: CloseReason) -> None:
    if ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(reason.code, reason.description)


async def _receive(ws: WebSocket, board: Switchboard, rate: RateWindow | None) -> str | None:
    """The next text frame; ``None`` when Twilio went away.

    Raises:
        CallRefused: ``too_big``, ``rate_limited`` or ``malformed`` (a binary frame).
    """
    message = await ws.receive()
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None:
        raise CallRefused(CloseReason.MALFORMED, "Twilio sends text frames only")
    limit = board.config.limits.max_message_bytes
    if len(text) > limit:
        raise CallRefused(CloseReason.TOO_BIG, f"{len(text)} characters, at most {limit}")
    if rate is not None and not rate.allow():
        raise CallRefused(CloseReason.RATE_LIMITED, "over max_messages_per_second")
    return str(text)


def _frame(stream: MediaStream, text: str) -> list[Any]:
    try:
        return list(stream.receive_frame(text))
    except CarrierFrameError as exc:
        raise CallRefused(CloseReason.MALFORMED, str(exc)) from exc


async def _await_start(ws: WebSocket, board: Switchboard, stream: MediaStream) -> None:
    async def first_start() -> None:
        while stream.started is None:
            text = await _receive(ws, board, None)
            if text is None:
                raise ConnectionAbortedError("Twilio left before start")
            _frame(stream, text)

    try:
        await asyncio.wait_for(first_start(), board.config.limits.hello_timeout)
    except TimeoutError:
        raise CallRefused(CloseReason.TIMEOUT, "no start message in time") from None


async def _stream_endpoint(ws: WebSocket, config: TwilioConfig) -> None:
    board = switchboard_of(ws)
    call_id = new_call_id()
    if not _signed(ws, config, None, ws=True):
        logger.warning("twilio: stream upgrade with a missing or invalid signature refused")
        board.refuse(call_id, CallRefused(CloseReason.UNAUTHORIZED, "twilio signature"))
        await ws.close(CloseReason.UNAUTHORIZED.code)  # before accept: HTTP 403
        return
    await ws.accept()
    limits = board.config.limits
    stream = MediaStream(
        TwilioSerializer(),
        input_rate=_RATE,
        output_rate=_RATE,
        chunk_seconds=config.chunk_seconds,
        max_frame_bytes=limits.max_message_bytes,
    )
    try:
        await _await_start(ws, board, stream)
        started = stream.started
        assert started is not None
        claims = await board.redeem(started.custom_parameters.get("token"))
        if claims.call_id != started.call_id:
            raise TokenRefused("token issued for another call", CloseReason.FORBIDDEN)
    except CallRefused as exc:
        board.refuse(call_id, exc)
        await _close(ws, exc.reason)
        return
    except Exception:  # Twilio left during the start
        await _close(ws, CloseReason.NORMAL)
        return
    params = {k: v for k, v in started.custom_parameters.items() if k != "token"}
    params.update(call_sid=started.call_id, stream_sid=started.stream_id)
    port = TwilioPort(ws, stream)
    client = f"{ws.client.host}:{ws.client.port}" if ws.client else None
    try:
        async with board.open_call(
            port,
            endpoint="twilio",
            caller=claims.subject,
            client=client,
            params=params,
            call_id=call_id,
        ) as call:
            # upsample once, straight to the provider's rate
            stream.set_input_rate(call.engine.provider.input_format.sample_rate)
            await _converse(ws, board, call, stream, port)
    except CallRefused as exc:
        await _close(ws, exc.reason)


async def _converse(
    ws: WebSocket, board: Switchboard, call: Call, stream: MediaStream, port: TwilioPort
) -> None:
    """Feed Twilio's frames to ``call`` until either side ends it."""
    rate = RateWindow(board.config.limits.max_messages_per_second)
    try:
        while not call.closed:
            text = await _receive(ws, board, None)
            if text is None:
                return
            marks = stream.marks_received
            events = _frame(stream, text)
            # mark acknowledgements are bounded by the marks sent (Twilio acknowledges
            # hundreds at once after a clear); every other frame counts against the rate
            if stream.marks_received == marks and not rate.allow():
                raise CallRefused(CloseReason.RATE_LIMITED, "over max_messages_per_second")
            for event in events:
                match event:
                    case CallerAudio(pcm=pcm):
                        await call.receive_audio(pcm, stream.input_rate)
                    case PlayedUpTo():
                        port.played(event, call)
                    case StreamStopped():
                        await call.close(CloseReason.NORMAL, "stop")
                        return
                    case DtmfReceived(digit=digit):
                        call.receive_key(digit)
                    case _:
                        pass
    except CallRefused as exc:
        board.metrics.caller_error(call.call_id, exc.reason, exc.detail)
        await call.close(exc.reason, exc.detail)
    except (RuntimeError, OSError):  # the socket closed under us (drain, time limit)
        return
