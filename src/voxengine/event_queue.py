"""A bounded event queue with a documented overload policy.

Producers (the socket reader) never wait: :meth:`EventQueue.put_nowait` always
returns at once, so a slow consumer can never stall the connection. When more than
``maxsize`` events are waiting:

* assistant audio (:class:`~voxengine.events.AudioDelta`) is dropped oldest-first
  and counted (``dropped_audio_chunks``/``dropped_audio_seconds``);
* everything else — transcripts, tool calls, errors, lifecycle events — is never
  dropped: the bound is exceeded for them rather than lose them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.errors import ConfigError
from voxengine.events import AudioDelta, Event

__all__ = ["EventQueue"]


@final
class EventQueue:
    """FIFO of events (``None`` marks the end) for one consumer; see the module docstring."""

    def __init__(self, maxsize: int = 2000, audio_format: AudioFormat | None = None) -> None:
        if maxsize < 1:
            raise ConfigError("maxsize must be >= 1")
        self._maxsize = maxsize
        self._format = audio_format
        self._items: deque[Event | None] = deque()
        self._audio = 0  # AudioDelta entries waiting
        self._waiter: asyncio.Future[None] | None = None
        self.dropped_audio_chunks = 0
        self.dropped_audio_seconds = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def put_nowait(self, event: Event | None) -> None:
        """Append ``event`` (``None`` = end of stream); never blocks, may drop old audio."""
        self._items.append(event)
        if isinstance(event, AudioDelta):
            self._audio += 1
        if len(self._items) > self._maxsize and self._audio:
            self._drop_oldest_audio()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _drop_oldest_audio(self) -> None:
        for index, item in enumerate(self._items):
            if isinstance(item, AudioDelta):
                del self._items[index]
                self._audio -= 1
                self.dropped_audio_chunks += 1
                if self._format is not None:
                    self.dropped_audio_seconds += self._format.duration(len(item.audio))
                return

    async def get(self) -> Event | None:
        """The next event, waiting if none is queued."""
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if isinstance(item, AudioDelta):
            self._audio -= 1
        return item
