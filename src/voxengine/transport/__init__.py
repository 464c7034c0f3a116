"""Byte/text-frame transports. A transport knows WebSockets, never JSON.

:class:`Connection` is what the session layer drives; :class:`Connector` opens one.
Two implementations ship: :mod:`voxengine.transport.websocket` (real sockets) and
:mod:`voxengine.transport.memory` (an in-process pair for fakes and tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, runtime_checkable

__all__ = ["Connection", "Connector", "FrameSink", "PushConnection", "TextTap"]

#: Receives one whole frame (``str`` for a text frame, ``bytes`` for a binary one).
FrameSink = Callable[[str | bytes], None]

#: Sees a whole text frame's payload first, undecoded (UTF-8 bytes, not yet checked):
#: returns True when it took the frame (the sink never sees it), False to let the frame
#: go its usual way (decoded and checked, then to the sink). See ``tap_text``.
TextTap = Callable[[bytes | bytearray | memoryview], bool]


class Connection(Protocol):
    """An open message-oriented connection.

    ``recv`` raises :class:`~voxengine.errors.ConnectionClosed` (with the close code
    and reason) once the connection is closed; ``send`` raises the same after close.
    """

    async def send(self, data: str | bytes) -> None:
        """Send one frame: text for ``str``, binary for ``bytes``."""
        ...

    async def recv(self) -> str | bytes:
        """The next frame: ``str`` for a text frame, ``bytes`` for a binary one."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason`` and wait for the closing handshake."""
        ...


@runtime_checkable
class PushConnection(Connection, Protocol):
    """A :class:`Connection` that can hand frames over from its socket read callback.

    After :meth:`push_to`, every frame received from then on is passed to the sink
    synchronously, in order, as soon as the transport has read it: there is no task
    switch between the socket and the sink. Frames received before the call (read
    while nobody was listening) are not pushed; they still come from :meth:`recv`,
    which returns each of them once and then, with nothing left to return, waits for
    the connection to close and raises :class:`~voxengine.errors.ConnectionClosed`.
    Frames pushed meanwhile are held and pushed right after the last of them is
    returned, so the consumer sees every frame exactly once, in order, if it keeps
    calling :meth:`recv` until it raises.

    The sink runs inside the transport's read callback: it must not block, and an
    exception it raises is logged and closes the connection (code 1011).

    :meth:`push_to` returns False, and changes nothing, when this connection cannot
    push after all (e.g. it wraps a socket opened elsewhere): keep calling
    :meth:`recv` for every frame.
    """

    def push_to(self, sink: FrameSink) -> bool:
        """Hand every later frame to ``sink``; False if this connection cannot push."""
        ...


class Connector(Protocol):
    """Opens a :class:`Connection` to ``url`` with handshake ``headers``.

    Raises :class:`~voxengine.errors.ConnectFailed` (or its subclass
    :class:`~voxengine.errors.AuthenticationFailed`) when the connection cannot open.
    """

    async def __call__(
        self, url: str, headers: Mapping[str, str], *, timeout: float
    ) -> Connection: ...
