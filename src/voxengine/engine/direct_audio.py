"""Fast mode's shortest way for assistant audio and text: :class:`DirectAudio`.

In ``fast`` mode, while the engine's assistant audio has exactly one consumer — the
``on_audio_response`` callback, a plain function, with no other :class:`AudioDelta`
handler, no :meth:`~voxengine.bus.EventBus.stream` open and no output device playing —
the provider is given an :class:`~voxengine.session.tap.AudioTap`: each chunk goes
from the socket's read callback to the callback with no event object, queue, strategy
or bus in between (the benchmarks' in-process latency measures this way). When, in
addition, ``on_text_response`` is a plain function and the only consumer of
:class:`TextDelta` and :class:`TranscriptDelta`, assistant text and transcript deltas
go the same way to it. As soon as any of those conditions stops holding, the tap is
changed or taken away and audio and text come as events again, to every consumer.
The callbacks' data is never held behind an async handler still busy with an earlier
event (other events keep their order among themselves). Tapped deltas are not kept
in :attr:`~voxengine.bus.EventBus.history` (audio chunks never are).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from inspect import iscoroutinefunction
from typing import Any

from voxengine._tasks import wait_then_cancel
from voxengine.bus import EventBus
from voxengine.events import AudioDelta, TextDelta, TranscriptDelta
from voxengine.providers.base import BaseProvider
from voxengine.session.tap import AudioTap

__all__ = ["DirectAudio"]

logger = logging.getLogger("voxengine.engine")


class DirectAudio:
    """Keeps a provider's audio tap in step with who consumes the engine's audio."""

    __slots__ = ("_bus", "_legacy", "_observers", "_provider", "_tasks", "tap")

    def __init__(
        self,
        bus: EventBus,
        legacy: Callable[[Any], object],
        observers: Sequence[object],
    ) -> None:
        """``legacy`` is the engine's own ``AudioDelta`` handler (the one that calls
        ``on_audio_response``); ``observers`` the live list of audio observers
        (playback while an output device is open)."""
        self._bus = bus
        self._legacy = legacy
        self._observers = observers
        self._tasks: set[asyncio.Task[object]] | None = None
        self._provider: BaseProvider | None = None  # the one given ``tap``
        #: The tap the provider has (``None``: audio comes as events).
        self.tap: AudioTap | None = None

    def wanted(self, callback: Callable[[bytes], object] | None) -> bool:
        """Whether ``callback`` is the only consumer of the audio (see the module)."""
        if callback is None or iscoroutinefunction(callback) or self._observers:
            return False
        return self._only_legacy(AudioDelta)

    def wanted_text(self, callback: Callable[[str], object] | None) -> bool:
        """Whether ``callback`` is the only consumer of assistant text and transcript
        deltas (see the module)."""
        if callback is None or iscoroutinefunction(callback):
            return False
        return self._only_legacy(TextDelta) and self._only_legacy(TranscriptDelta)

    def _only_legacy(self, event_type: type[AudioDelta | TextDelta | TranscriptDelta]) -> bool:
        route = self._bus.plain_route(event_type)
        return (
            route is not None
            and len(route) == 1
            and route[0].active
            and route[0].handler == self._legacy
        )

    def update(
        self,
        provider: BaseProvider | None,
        callback: Callable[[bytes], object] | None,
        text: Callable[[str], object] | None = None,
    ) -> None:
        """Give ``provider`` a tap for ``callback`` (and ``text``), or take it away (see
        :meth:`wanted`, :meth:`wanted_text`); ``provider`` is ``None`` while the engine
        has no session."""
        wanted = provider is not None and provider.is_connected and self.wanted(callback)
        tap = self.tap
        if wanted:
            assert callback is not None
            text = text if self.wanted_text(text) else None
            if tap is None or tap.callback is not callback or tap.text is not text:
                tap = AudioTap(callback, self._failed, self._pending, text)
        else:
            tap = None
        if tap is self.tap and provider is self._provider:
            return
        previous = self._provider
        if previous is not None and previous is not provider:
            previous.tap_audio(None)  # a provider failed over from
        self._provider = provider
        if provider is not None and not provider.tap_audio(tap) and tap is not None:
            provider.tap_audio(None)  # its connection cannot: no tap kept for later ones
            tap = None
        self.tap = tap

    def _failed(self, callback: Callable[..., object] | None) -> None:
        """A callback raised (``None``: the awaitable one returned); what the bus does
        for a failing handler: count it, log it, go on."""
        self._bus.handler_errors += 1
        tap = self.tap
        if callback is None:
            logger.exception("what a direct callback returned failed")
        elif tap is not None and callback is tap.text:
            logger.exception("on_text_response failed on a text delta")
        else:
            logger.exception("on_audio_response failed on an audio chunk")

    def _pending(self, pending: Awaitable[object]) -> None:
        """A plain callback returned an awaitable: await it in a task of its own."""

        async def finish() -> object:
            try:
                return await pending
            except Exception:
                self._failed(None)
                return None

        tasks = self._tasks
        if tasks is None:
            tasks = self._tasks = set()
        task = asyncio.ensure_future(finish())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def aclose(self, timeout: float) -> tuple[str, ...]:
        """Wait up to ``timeout`` seconds for the awaitables plain callbacks returned,
        then cancel what is left (``disconnect()``: no task outlives the engine's
        session). Returns ``(AudioDelta.type,)`` when something had to be cancelled
        (reported like a cancelled handler), else ``()``."""
        left = await wait_then_cancel(self._tasks or (), timeout)
        if not left:
            return ()
        logger.warning("disconnect cancelled %d on_audio_response awaitable(s)", left)
        return (AudioDelta.type,)
