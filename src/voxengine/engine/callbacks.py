"""The engine's legacy callback attributes: ``on_text_response``, ``on_audio_response``,
``on_response_done`` and ``on_error`` (see :class:`~voxengine.VoiceEngine`).

:class:`LegacyCallbacks` holds them and the bus handler that calls them; the engine
subscribes that handler at its lowest priority, after every application handler.
They are plain functions on the hot path: the bus awaits only what a callback returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from voxengine.events import (
    AudioDelta,
    Event,
    ProviderErrorEvent,
    ResponseDone,
    Role,
    TextDelta,
    TranscriptDelta,
)

__all__ = ["AudioCallback", "LegacyCallbacks", "TextCallback"]

TextCallback = Callable[[str], Awaitable[object] | object]
AudioCallback = Callable[[bytes], Awaitable[object] | object]


class LegacyCallbacks:
    """The callback attributes (``None``: disabled) and their bus handlers."""

    _on_audio_response: AudioCallback | None = None
    _on_text_response: TextCallback | None = None

    def __init__(self) -> None:
        self._on_text_response = None
        self._on_audio_response = None
        self.on_response_done: Callable[[ResponseDone], Any] | None = None
        self.on_error: Callable[[ProviderErrorEvent], Any] | None = None

    @property
    def on_audio_response(self) -> AudioCallback | None:
        """Called with each chunk of assistant audio (PCM16 bytes); ``None``: disabled."""
        return self._on_audio_response

    @on_audio_response.setter
    def on_audio_response(self, callback: AudioCallback | None) -> None:
        self._on_audio_response = callback
        self._audio_consumers_changed()

    @property
    def on_text_response(self) -> TextCallback | None:
        """Called with each delta of assistant text or audio transcript; ``None``:
        disabled."""
        return self._on_text_response

    @on_text_response.setter
    def on_text_response(self, callback: TextCallback | None) -> None:
        self._on_text_response = callback
        self._audio_consumers_changed()

    def _audio_consumers_changed(self) -> None:
        """Hook: who consumes the assistant audio or text changed (the engine overrides
        it)."""

    def _legacy(self, event: Event) -> object:
        """The callbacks' one bus handler (audio, text and transcripts, the end of a
        response and errors: one subscription, not three, per engine)."""
        if type(event) is AudioDelta:  # _legacy_audio, inlined: once per audio chunk
            callback = self._on_audio_response
            return None if callback is None else callback(event.audio)
        if isinstance(event, TextDelta | TranscriptDelta):
            return self._legacy_text(event)
        if isinstance(event, AudioDelta):
            return self._legacy_audio(event)
        return self._legacy_done(event)

    def _legacy_audio(self, event: AudioDelta) -> object:
        callback = self.on_audio_response
        return None if callback is None else callback(event.audio)

    def _legacy_text(self, event: TextDelta | TranscriptDelta) -> object:
        callback = self.on_text_response
        if callback is None:
            return None
        if isinstance(event, TranscriptDelta) and event.role is not Role.ASSISTANT:
            return None
        return callback(event.delta)

    def _legacy_done(self, event: Event) -> object:
        if isinstance(event, ResponseDone) and self.on_response_done is not None:
            return self.on_response_done(event)
        if isinstance(event, ProviderErrorEvent) and self.on_error is not None:
            return self.on_error(event)
        return None
