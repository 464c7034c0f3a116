"""Byte/text-frame transports. A transport knows WebSockets, never JSON.

:class:`Connection` is what the session layer drives; :class:`Connector` opens one.
Two implementations ship: :mod:`voxengine.transport.websocket` (real sockets) and
:mod:`voxengine.transport.memory` (an in-process pair for fakes and tests).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["Connection", "Connector"]


class Connection(Protocol):
    """An open message-oriented connection.

    ``recv`` raises :class:`~voxengine.errors.ConnectionClosed` (with the close code
    and reason) once the connection is closed; ``send`` raises the same after close.
    """

    async def send(self, data: str | bytes) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Connector(Protocol):
    """Opens a :class:`Connection` to ``url`` with handshake ``headers``.

    Raises :class:`~voxengine.errors.ConnectFailed` (or its subclass
    :class:`~voxengine.errors.AuthenticationFailed`) when the connection cannot open.
    """

    async def __call__(
        self, url: str, headers: Mapping[str, str], *, timeout: float
    ) -> Connection: ...
