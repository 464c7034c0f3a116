"""One-shot requests on a connected engine: speak a text verbatim, transcribe a file.

Each runs one response and collects what it produced from the engine's event bus:
:func:`collect_response` gathers the audio of the response a request started,
:func:`transcribe_file` the text of a transcription response.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from voxengine.audio.resample import convert
from voxengine.audio.wav import read_wav
from voxengine.bus import EventBus
from voxengine.config import Modality
from voxengine.errors import InvalidState
from voxengine.events import (
    AudioDelta,
    Event,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    TextDelta,
    TranscriptDelta,
)
from voxengine.providers.base import BaseProvider

__all__ = ["collect_response", "transcribe_file"]

_T = TypeVar("_T")


async def collect_response(
    events: EventBus, request: Callable[[], Awaitable[None]], timeout: float
) -> bytes:
    """Await ``request()`` (which asks for a response) and return that response's audio.

    Raises:
        InvalidState: the response did not complete. EventTimeout: no end in ``timeout``.
    """
    audio = bytearray()
    response_id: list[str] = []

    def on_start(event: Event) -> None:
        if isinstance(event, ResponseStarted) and not response_id:
            response_id.append(event.response_id)

    def on_audio(event: Event) -> None:
        if isinstance(event, AudioDelta) and response_id and event.response_id == response_id[0]:
            audio.extend(event.audio)

    subs = [events.on(ResponseStarted, on_start), events.on(AudioDelta, on_audio)]
    try:
        waiter = asyncio.ensure_future(
            events.wait_for(
                ResponseDone,
                timeout=timeout,
                filter=lambda e: bool(response_id) and e.response_id == response_id[0],
            )
        )
        done = await _then(request, waiter)
    finally:
        for sub in subs:
            events.off(sub)
    if done.status is not ResponseStatus.COMPLETED:
        raise InvalidState(f"response ended {done.status.value}")
    return bytes(audio)


async def transcribe_file(
    events: EventBus,
    provider: BaseProvider,
    path: str | Path,
    timeout: float,
    mark_request: Callable[[], None],
) -> str:
    """Send the WAV file at ``path`` as a recorded message and return the model's
    verbatim transcript (a text-only response).

    Raises:
        InvalidState: the response did not complete. EventTimeout: no end in ``timeout``.
    """
    audio, fmt = read_wav(path)
    pcm = convert(audio, fmt, provider.input_format)
    await provider.send_audio_message(pcm)
    texts: list[str] = []

    def collect(event: Event) -> None:
        if isinstance(event, TextDelta) or (
            isinstance(event, TranscriptDelta) and event.role is Role.ASSISTANT
        ):
            texts.append(event.delta)

    sub = events.on((TextDelta, TranscriptDelta), collect)
    try:
        mark_request()
        started = asyncio.ensure_future(events.wait_for(ResponseDone, timeout=timeout))
        done = await _then(
            lambda: provider.create_response(
                instructions=(
                    "Transcribe the user's last audio message verbatim. Reply with the "
                    "transcript only, no comments."
                ),
                modalities=(Modality.TEXT,),
            ),
            started,
        )
    finally:
        events.off(sub)
    if done.status is not ResponseStatus.COMPLETED:
        raise InvalidState(f"transcription response ended {done.status.value}")
    return "".join(texts).strip()


async def _then(request: Callable[[], Awaitable[None]], waiter: asyncio.Future[_T]) -> _T:
    """Await ``request()``, then ``waiter``; if the request fails, the waiter is
    cancelled and its outcome retrieved (no "exception was never retrieved")."""
    try:
        await request()
    except BaseException:
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        raise
    return await waiter
