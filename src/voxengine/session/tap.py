"""Where a session hands assistant audio straight from its socket: :class:`AudioTap`.

A mode whose assistant audio goes to one plain application callback and nowhere else
(the engine's ``fast`` mode with ``on_audio_response`` and no other audio consumer)
sets an :class:`AudioTap` on the current session. The session then decodes each audio
delta inside the transport's read callback and calls :attr:`AudioTap.callback` with
the PCM16 bytes at once: no :class:`~voxengine.events.AudioDelta` is built and the
event queue is bypassed (other events keep going through it, in order among
themselves). Only protocols offering :class:`~voxengine.protocols.AudioTapping` over
transports offering ``tap_text`` take the shortcut; others keep the usual path, where
the same callback is reached through the queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["AudioTap"]


@dataclass(frozen=True, slots=True)
class AudioTap:
    """The application's audio callback and what to do when it misbehaves.

    Attributes:
        callback: called with each chunk of assistant audio (PCM16 at the provider's
            output rate), inside the socket's read callback: it must not block.
        failed: called (inside the ``except`` block) when ``callback`` raised; the
            session goes on.
        pending: called with what ``callback`` returned when that is an awaitable (a
            callback that turned out to be asynchronous), to await it elsewhere.
    """

    callback: Callable[[bytes], object]
    failed: Callable[[], None]
    pending: Callable[[Awaitable[object]], None]
