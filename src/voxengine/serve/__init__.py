"""Serving voice agents to browsers and phones: ``voxengine serve``.

An ASGI application (Starlette on uvicorn; the ``serve`` extra) that gives every
connected caller its own :class:`~voxengine.VoiceEngine` session. Not imported by
``import voxengine``.

Public names: :class:`ServeConfig` (settings), :func:`build_app` (the app),
:class:`CallContext` and :data:`SessionFactory` (the per-call hook),
:class:`Call` and :class:`CallerPort` (one caller and how to reach it: what endpoint
adapters implement), :class:`CloseReason` and the errors, :class:`Limits`,
:class:`TokenIssuer`, :func:`run` (uvicorn with a graceful drain).
Design and wire protocol: docs/serving-design.md.
"""

from __future__ import annotations

from voxengine.serve.app import build_app
from voxengine.serve.auth import Claims, TokenIssuer
from voxengine.serve.call import Call, CallerPort
from voxengine.serve.config import ServeConfig
from voxengine.serve.errors import CallRefused, CloseReason, ServeError, TokenRefused
from voxengine.serve.factory import CallContext, SessionFactory, default_session_factory
from voxengine.serve.limits import Limits
from voxengine.serve.server import VoxServer, run
from voxengine.serve.switchboard import Switchboard, switchboard_of

__all__ = [
    "Call",
    "CallContext",
    "CallRefused",
    "CallerPort",
    "Claims",
    "CloseReason",
    "Limits",
    "ServeConfig",
    "ServeError",
    "SessionFactory",
    "Switchboard",
    "TokenIssuer",
    "TokenRefused",
    "VoxServer",
    "build_app",
    "default_session_factory",
    "run",
    "switchboard_of",
]
