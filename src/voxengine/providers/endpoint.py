"""Where a realtime provider connects and with which key: the one URL normaliser and
the one API-key lookup every WebSocket provider description uses."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

from voxengine.errors import ConfigError

__all__ = ["api_key", "websocket_base"]

_WEBSOCKET_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}


def websocket_base(url: str) -> str:
    """The service root of ``url`` for a WebSocket: http(s) turned into ws(s), the path
    kept without its trailing slash, any query or fragment dropped (endpoints append
    their own path and query).

    Raises:
        ConfigError: the URL has no host or an unsupported scheme.
    """
    parts = urlsplit(url)
    scheme = _WEBSOCKET_SCHEMES.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigError(f"base_url must be an http(s) or ws(s) URL with a host, got {url!r}")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def api_key(given: str | None, envs: tuple[str, ...], provider: str) -> str:
    """``given``, else the first of the environment variables ``envs`` that is set.

    Raises:
        ConfigError: no key anywhere (the message names the variables, never a value).
    """
    key = given if given is not None else next(filter(None, map(os.environ.get, envs)), None)
    if not key:
        alternatives = "".join(f" (or {env})" for env in envs[1:])
        raise ConfigError(
            f"the {provider} provider needs an API key: pass api_key=... or set "
            f"{envs[0]}{alternatives}"
        )
    return key
