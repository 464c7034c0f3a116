"""Fixtures of the telephony tests: the app with the Twilio routes on a real uvicorn
(127.0.0.1, ephemeral port), on the test's event loop, with the mock provider."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from voxengine import VoiceEngine
from voxengine.events import Interrupted, KeyPressed
from voxengine.serve import CallContext, ServeConfig, build_app, default_session_factory
from voxengine.serve.server import uvicorn_config
from voxengine.serve.switchboard import Switchboard
from voxengine.serve.telephony.endpoint import TwilioConfig, twilio_routes
from voxengine.testing.mock import MockConfig, MockProvider

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
SECRET = "test-deployment-secret-0123456789"


@dataclass
class TwilioServer:
    """A running server and what the tests inspect."""

    url: str
    board: Switchboard
    engines: list[VoiceEngine] = field(default_factory=list)
    contexts: list[CallContext] = field(default_factory=list)
    interruptions: list[Interrupted] = field(default_factory=list)
    keys: list[KeyPressed] = field(default_factory=list)


@contextlib.asynccontextmanager
async def twilio_server(
    *,
    mock: MockConfig | None = None,
    twilio: dict[str, Any] | None = None,
    send_buffer_bytes: int | None = None,
    **settings: Any,
) -> AsyncIterator[TwilioServer]:
    """The app with the Twilio routes; every call's engine is a mock provider session.

    ``send_buffer_bytes`` fixes the server sockets' ``SO_SNDBUF`` (accepted sockets
    inherit it from the listening one), so a stalled caller pushes back at once
    instead of after the kernel's autotuned megabytes.
    """
    settings.setdefault("provider", "mock")
    settings.setdefault("secret", SECRET)
    settings.setdefault("page", False)  # the browser page is not under test here
    config = ServeConfig(**settings)
    server = TwilioServer(url="", board=None)  # type: ignore[arg-type]

    def factory(context: CallContext) -> VoiceEngine:
        engine = default_session_factory(context)
        if mock is not None:
            engine = VoiceEngine(engine.config, provider=MockProvider(mock))
        engine.events.on(Interrupted, server.interruptions.append)
        engine.events.on(KeyPressed, server.keys.append)
        server.engines.append(engine)
        server.contexts.append(context)
        return engine

    app = build_app(
        config, factory, routes=twilio_routes(TwilioConfig(auth_token=AUTH_TOKEN, **(twilio or {})))
    )
    uv = uvicorn.Server(uvicorn_config(app, "127.0.0.1", 0))
    sockets = None
    if send_buffer_bytes is not None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
        listener.bind(("127.0.0.1", 0))
        sockets = [listener]
    task = asyncio.create_task(uv.serve(sockets=sockets))
    try:
        while not uv.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        port = uv.servers[0].sockets[0].getsockname()[1]
        server.url = f"http://127.0.0.1:{port}"
        server.board = app.state.switchboard
        yield server
    finally:
        uv.should_exit = True
        await asyncio.wait_for(task, 30)
