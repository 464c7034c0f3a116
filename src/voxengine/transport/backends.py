"""Choosing the WebSocket backend by name: ``"websockets"`` (the default) or ``"picows"``.

Both open the same kind of connection (:class:`~voxengine.transport.DirectConnection`)
with the same errors, TLS verification, keepalive, limits and redaction; they differ in
the library that reads and writes the frames. ``"picows"`` is compiled (Cython) and
optional (``pip install 'voxengine[picows]'``); nothing imports it until a connection
is opened with it. Providers take the name from ``ProviderConfig.transport`` (also a
:class:`~voxengine.VoiceEngineConfig` field) and open their connections through
:func:`connector`.
"""

from __future__ import annotations

import functools
import importlib.util
import ssl

from voxengine.errors import ConfigError
from voxengine.transport import Connector

__all__ = ["DEFAULT_TRANSPORT", "INSTALL_HINT", "TRANSPORTS", "check_transport", "connector"]

#: The backend names, the default first.
TRANSPORTS = ("websockets", "picows")
DEFAULT_TRANSPORT = "websockets"

#: What to run when the ``picows`` backend is chosen but not installed.
INSTALL_HINT = "pip install 'voxengine[picows]'"


def check_transport(name: object) -> None:
    """Refuse, before any I/O, a backend name that is unknown or not installed.

    Raises:
        ConfigError: ``name`` is not one of :data:`TRANSPORTS`, or is ``"picows"``
            without the ``picows`` package (the message says how to install it).
    """
    if name not in TRANSPORTS:
        raise ConfigError(
            f"transport must be one of {', '.join(map(repr, TRANSPORTS))}, got {name!r}"
        )
    if name == "picows" and not _installed("picows"):
        raise ConfigError(f"transport 'picows' needs the picows package: {INSTALL_HINT}")


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (looked up, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ValueError:  # in sys.modules as None: imports of it fail
        return False


def connector(
    name: str = DEFAULT_TRANSPORT, ssl_context: ssl.SSLContext | None = None
) -> Connector:
    """The connector of backend ``name``, verifying ``wss://`` with ``ssl_context``
    when given (else the default context, see :mod:`voxengine.transport.tls`).

    Raises:
        ConfigError: see :func:`check_transport`.
    """
    check_transport(name)
    if name == "picows":
        from voxengine.transport.picows import open_picows

        if ssl_context is None:
            return open_picows
        return functools.partial(open_picows, ssl_context=ssl_context)
    from voxengine.transport.websocket import open_websocket

    if ssl_context is None:
        return open_websocket
    return functools.partial(open_websocket, ssl_context=ssl_context)
