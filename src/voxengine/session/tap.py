"""Where a session hands assistant audio straight from its socket: :class:`AudioTap`.

A mode whose assistant audio goes to one plain application callback and nowhere else
(the engine's ``fast`` mode with ``on_audio_response`` and no other audio consumer)
sets an :class:`AudioTap` on the current session. The protocol's tap then decodes each
audio delta inside the transport's read callback and calls :attr:`AudioTap.callback`
with the PCM16 bytes at once: no :class:`~voxengine.events.AudioDelta` is built and the
event queue is bypassed (other events keep going through it, in order among
themselves). With :attr:`AudioTap.text` set, assistant text and transcript deltas go
the same way to :attr:`AudioTap.text` (no :class:`~voxengine.events.TranscriptDelta`
or :class:`~voxengine.events.TextDelta` event). The tap keeps the session's response
tracker up to date (see :class:`~voxengine.protocols.AudioTapping`), so interruption
truncates tapped audio exactly as it does audio that came as events. Only protocols
offering :class:`~voxengine.protocols.AudioTapping` over transports offering
``tap_text`` take the shortcut; others keep the usual path, where the same callbacks
are reached through the queue.
"""

from __future__ import annotations

from voxengine.protocols import AudioTap

__all__ = ["AudioTap"]
