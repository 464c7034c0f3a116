"""Byte/text-frame transports. A transport knows WebSockets, never JSON.

:class:`Connection` is what the session layer drives; :class:`Connector` opens one.
Real sockets come from one of two backends chosen by name
(:mod:`voxengine.transport.backends`), whose connections are
:class:`DirectConnection` objects: :mod:`voxengine.transport.websocket` (``websockets``,
the default) and :mod:`voxengine.transport.picows` (the optional compiled ``picows``).
:mod:`voxengine.transport.memory` is an in-process pair for fakes and tests.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Mapping
from typing import ClassVar, Protocol, runtime_checkable

from voxengine.errors import ConnectionClosed, ConnectionClosedError

__all__ = [
    "Connection",
    "Connector",
    "DirectConnection",
    "FrameSink",
    "PushConnection",
    "TextTap",
]

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


class DirectConnection(abc.ABC):
    """A :class:`PushConnection` whose socket the backend itself reads and writes (every
    real-socket backend's connection; never a wrapper). The session layer relies on
    what it promises beyond :class:`PushConnection`:

    * :meth:`send` and :meth:`send_utf8` hand the whole frame to the socket before
      they first yield (afterwards they may wait for the write buffer to drain), so
      frames sent concurrently keep the order they were sent in without a lock; so
      does :meth:`write_utf8`, in the call or in the awaitable it returns, awaited at
      once;
    * :meth:`tap_text` and :meth:`when_closed` (see each).
    """

    __slots__ = ()

    @abc.abstractmethod
    async def send(self, data: str | bytes) -> None:
        """Send one frame: text for ``str``, binary for ``bytes``."""

    @abc.abstractmethod
    async def send_utf8(self, data: bytes) -> None:
        """Send one text frame given as its UTF-8 encoding (no ``str`` round trip)."""

    #: What :meth:`write_utf8`, or the awaitable it returns, raises where
    #: :meth:`send_utf8` raises :class:`ConnectionClosed`: the backend's own exceptions
    #: for a closed connection (:meth:`write_failure` translates them). Empty: it
    #: raises voxengine's own.
    write_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def write_utf8(self, data: bytes) -> Awaitable[None] | None:
        """:meth:`send_utf8` in the fewest calls, for the caller that counts them per
        frame (the session's audio path). Returns ``None`` when the frame is already
        with the socket, else an awaitable the caller awaits at once, before anything
        else is sent (the frame is written, or the write buffer drains, as it is
        awaited). Both may raise :attr:`write_errors` where :meth:`send_utf8` raises
        :class:`ConnectionClosed`; nothing else but bugs. By default the
        :meth:`send_utf8` coroutine itself."""
        return self.send_utf8(data)

    def write_failure(self, exc: Exception) -> ConnectionClosed:
        """The :class:`ConnectionClosed` that ``exc`` (one of :attr:`write_errors`) means:
        what :meth:`send_utf8` would have raised."""
        return ConnectionClosedError(None, str(exc))

    @abc.abstractmethod
    async def recv(self) -> str | bytes:
        """The next frame (see :class:`PushConnection` once pushing)."""

    @abc.abstractmethod
    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` and ``reason`` and wait for the closing handshake."""

    @abc.abstractmethod
    def push_to(self, sink: FrameSink) -> bool:
        """Hand every later frame to ``sink`` (see :class:`PushConnection`)."""

    @abc.abstractmethod
    def tap_text(self, tap: TextTap | None) -> bool:
        """Let ``tap`` see each whole text frame's raw payload first, while frames are
        pushed (``None``: stop); False (changing nothing) if this connection cannot.
        True from the tap takes the frame (the sink never sees it); False sends it on
        (UTF-8 checked, then to the sink). It sees only frames that would go straight
        to the sink (never held, fragmented, binary or control frames); an exception
        it raises is logged and closes the connection (1011)."""

    @abc.abstractmethod
    def when_closed(self, callback: Callable[[ConnectionClosed], None]) -> bool:
        """Once pushing, with every frame read before :meth:`push_to` taken by
        :meth:`recv`: call ``callback`` with the close (what :meth:`recv` would raise)
        when the connection has closed, and return True; otherwise register nothing
        and return False (keep calling :meth:`recv`)."""
