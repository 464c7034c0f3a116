"""``voxengine serve``: the voice server for browsers (and, with their endpoints, phones).

Runs :func:`voxengine.serve.build_app` on uvicorn with a graceful drain. The provider
is the offline stack unless named; provider keys come from the environment of the
server, never from callers. The deployment secret comes from the environment variable
``--secret-env`` names (default ``VOXENGINE_SECRET``); without it a random secret is
used (tokens then only work on this process).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
from typing import Any

from voxengine.cli._errors import EXIT_OK, CliError
from voxengine.cli._options import HelpFormatter, add_logging_options
from voxengine.errors import ConfigError

__all__ = ["add_parser", "load_factory"]

_EPILOG = """\
examples:
  voxengine serve                                 offline voice AI at http://127.0.0.1:8000
  voxengine serve --provider mock --port 0        scripted replies, any free port
  voxengine serve --provider openai               needs OPENAI_API_KEY in the server's env
  voxengine serve --factory myapp.voice:make_engine   your tools and instructions per call
  VOXENGINE_SECRET=... voxengine serve --host 0.0.0.0 --no-public-tokens
  VOXENGINE_SECRET=... voxengine serve --state-url redis://127.0.0.1:6379/0   one of N workers

The page at / asks POST /token for a short-lived call token, then talks over /ws.
Health: /healthz; readiness: /readyz (503 while draining); metrics: /metrics."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
    parser = sub.add_parser(
        "serve",
        help="serve voice conversations to browsers over HTTP/WebSocket",
        description="Run the voice server (Starlette on uvicorn): every caller gets its "
        "own voice session with the chosen provider.",
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--provider",
        default="offline",
        help="offline (the local stack), mock, openai, gemini, pipeline, or any registered name",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--model", help="provider model")
    parser.add_argument("--voice", help="provider voice")
    parser.add_argument("--instructions", help="system instructions for every call")
    parser.add_argument(
        "--secret-env",
        default="VOXENGINE_SECRET",
        metavar="NAME",
        help="environment variable holding the deployment secret",
    )
    parser.add_argument(
        "--factory",
        metavar="MODULE:FUNCTION",
        help="per-call session factory: a function(CallContext) -> VoiceEngine",
    )
    parser.add_argument(
        "--public-tokens",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="hand call tokens to any same-origin page (off: only with the secret)",
    )
    parser.add_argument("--max-calls", type=int, default=200, help="concurrent calls")
    parser.add_argument(
        "--max-call-seconds", type=float, default=1800.0, help="length limit of one call"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=10.0, help="seconds calls get to end on shutdown"
    )
    parser.add_argument(
        "--twilio-token-env",
        metavar="NAME",
        help="also answer Twilio phone calls (POST /twilio/voice, WS /twilio/stream): "
        "environment variable holding the Twilio auth token",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the https:// origin Twilio reaches (behind a proxy or tunnel)",
    )
    parser.add_argument(
        "--state-url",
        metavar="URL",
        help="resumable call state: redis://host:port/db, shared by the workers of a "
        "deployment (default: this process's memory; see docs/scaling.md)",
    )
    parser.add_argument(
        "--state-ttl",
        type=float,
        default=60.0,
        help="seconds a call's state outlives its worker (the window to resume in)",
    )
    parser.add_argument(
        "--state-required",
        action="store_true",
        help="refuse new calls while the state store is unreachable (default: accept "
        "them with a warning: not resumable, call tokens single-use per worker only)",
    )
    add_logging_options(parser)
    parser.set_defaults(run=_run)


def load_factory(spec: str) -> Any:
    """The callable ``module:function`` names.

    Raises:
        CliError: malformed spec, module not importable, or not callable.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"--factory {spec!r}: expected MODULE:FUNCTION")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"--factory: cannot import {module_name!r}: {exc}") from exc
    for part in attr.split("."):
        target = getattr(target, part, None)
    if not callable(target):
        raise CliError(f"--factory: {spec!r} is not a callable")
    return target


def _twilio_routes(args: argparse.Namespace) -> list[Any]:
    """The Twilio routes when ``--twilio-token-env`` asks for them.

    Raises:
        CliError: the variable is unset or empty, or ``--public-url`` is malformed.
    """
    if not args.twilio_token_env:
        return []
    from voxengine.serve.telephony.endpoint import TwilioConfig, twilio_routes

    token = os.environ.get(args.twilio_token_env)
    if not token:
        raise CliError(
            f"--twilio-token-env: ${args.twilio_token_env} is not set",
            hint="export the Twilio auth token in that variable",
        )
    try:
        return twilio_routes(TwilioConfig(auth_token=token, public_url=args.public_url))
    except ConfigError as exc:
        raise CliError(str(exc)) from exc


def _run(args: argparse.Namespace) -> int:
    try:
        from voxengine.serve import Limits, ServeConfig, build_app
        from voxengine.serve.server import run
    except ImportError as exc:
        raise CliError(
            f"serving needs the 'serve' extra ({exc.name} is missing)",
            hint="pip install 'voxengine[serve]'",
        ) from exc
    secret = os.environ.get(args.secret_env) or None
    try:
        config = ServeConfig(
            host=args.host,
            port=args.port,
            provider=args.provider,
            model=args.model,
            voice=args.voice,
            instructions=args.instructions,
            secret=secret,
            public_tokens=args.public_tokens,
            drain_timeout=args.drain_timeout,
            limits=Limits(max_calls=args.max_calls, max_call_seconds=args.max_call_seconds),
            state_url=args.state_url,
            state_ttl=args.state_ttl,
            state_required=args.state_required,
        )
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    factory = load_factory(args.factory) if args.factory else None
    app = build_app(config, factory, routes=_twilio_routes(args))

    def announce(url: str) -> None:
        print(f"voxengine serve: provider {config.provider}, page at {url}/", flush=True)

    asyncio.run(run(app, config.host, config.port, announce=announce))
    return EXIT_OK
