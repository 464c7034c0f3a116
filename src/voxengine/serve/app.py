"""The ASGI application: :func:`build_app`.

Routes:

* ``GET /`` and ``/static/...``: the browser page (``ServeConfig.page``).
* ``POST /token``: a call token (see :mod:`voxengine.serve.auth`). With
  ``Authorization: Bearer <deployment secret>`` (the application's backend) the JSON
  body may name the ``subject``; without it, only when ``public_tokens`` is on, for
  same-origin pages, rate-limited per client address (subject ``addr:<host>``).
* ``WS /ws``: the browser endpoint (:mod:`voxengine.serve.browser.ws`).
* ``POST /rtc/offer``: the browser's WebRTC signaling
  (:mod:`voxengine.serve.browser.rtc_endpoint`), when aiortc is installed; routes given
  in ``routes=`` come first, so ``routes=webrtc_routes(RTCSettings(...))`` overrides it.
* ``GET /healthz`` (the process is up), ``GET /readyz`` (503 while draining),
  ``GET /metrics`` (Prometheus text).

More endpoints (WebRTC, Twilio) mount their routes through ``routes=``; they reach the
shared state with :func:`voxengine.serve.switchboard.switchboard_of`.

Lifespan: on shutdown the app drains (:meth:`Switchboard.drain`). Servers that close
connections before the lifespan ends (uvicorn does) should use
:func:`voxengine.serve.server.run`, which drains before uvicorn closes sockets.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from voxengine.serve.browser.ws import browser_endpoint
from voxengine.serve.config import ServeConfig
from voxengine.serve.factory import SessionFactory
from voxengine.serve.limits import RateWindow
from voxengine.serve.switchboard import Switchboard, switchboard_of

__all__ = ["build_app"]

logger = logging.getLogger("voxengine.serve")

STATIC = Path(__file__).parent / "browser" / "static"
_MAX_TOKEN_BODY = 4096
_MAX_SUBJECT_CHARS = 200


def build_app(
    config: ServeConfig | None = None,
    session_factory: SessionFactory | None = None,
    *,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The voice server's Starlette app.

    Args:
        config: the server's settings (default :class:`ServeConfig`()).
        session_factory: builds each call's engine (default: the config's provider;
            see :mod:`voxengine.serve.factory`).
        routes: more routes (other endpoints), mounted before the page.
    """
    config = config or ServeConfig()
    board = Switchboard(config, session_factory)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await board.drain()
        await board.continuity.aclose()

    all_routes: list[BaseRoute] = [
        Route("/healthz", _healthz),
        Route("/readyz", _readyz),
        Route("/metrics", _metrics),
        Route("/token", _token, methods=["POST"]),
        WebSocketRoute("/ws", browser_endpoint),
        *routes,
        *_webrtc_routes(),
    ]
    if config.page:
        all_routes += [
            Route("/", _index),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
    app = Starlette(routes=all_routes, lifespan=lifespan)
    app.state.switchboard = board
    app.state.token_windows = {}
    return app


def _webrtc_routes() -> Sequence[BaseRoute]:
    """``POST /rtc/offer`` with default settings, when aiortc (the serve extra) is installed."""
    if importlib.util.find_spec("aiortc") is None:
        return ()
    from voxengine.serve.browser.rtc_endpoint import webrtc_routes

    return webrtc_routes()


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _readyz(request: Request) -> Response:
    board = switchboard_of(request)
    body = {"ready": board.ready, "calls": len(board.calls)}
    return JSONResponse(body, status_code=200 if board.ready else 503)


async def _metrics(request: Request) -> Response:
    board = switchboard_of(request)
    return Response(board.metrics.render(), media_type="text/plain; version=0.0.4")


async def _index(request: Request) -> Response:
    return FileResponse(STATIC / "index.html")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser cross-site request (browsers always send Origin on POST)
    return urlsplit(origin).netloc == request.headers.get("host", "")


async def _token(request: Request) -> Response:
    board = switchboard_of(request)
    if not board.ready:
        return JSONResponse({"error": "going_away"}, status_code=503)
    auth = request.headers.get("authorization", "")
    body = await request.body()
    if len(body) > _MAX_TOKEN_BODY:
        return JSONResponse({"error": "too_big"}, status_code=413)
    if auth.startswith("Bearer "):
        if not board.tokens.is_secret(auth.removeprefix("Bearer ")):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            payload = json.loads(body or b"{}")
            subject = payload.get("subject", "backend") if isinstance(payload, dict) else None
        except ValueError:
            subject = None
        if not isinstance(subject, str) or not 0 < len(subject) <= _MAX_SUBJECT_CHARS:
            return JSONResponse({"error": "malformed", "detail": "subject"}, status_code=400)
    elif board.config.public_tokens:
        if not _same_origin(request):
            return JSONResponse({"error": "forbidden", "detail": "cross-origin"}, status_code=403)
        host = request.client.host if request.client else "unknown"
        windows: dict[str, RateWindow] = request.app.state.token_windows
        if len(windows) > 10_000:
            windows.clear()
        window = windows.setdefault(
            host, RateWindow(board.config.limits.token_requests_per_minute, 60.0)
        )
        if not window.allow():
            return JSONResponse({"error": "rate_limited"}, status_code=429)
        subject = f"addr:{host}"
    else:
        return JSONResponse({"error": "unauthorized"}, status_code=401)
    token = board.tokens.issue(subject)
    return JSONResponse(
        {"token": token, "expires_in": board.tokens.ttl, "ws_path": "/ws"},
        headers={"cache-control": "no-store"},
    )
