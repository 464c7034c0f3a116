"""A WebRTC caller for the tests: aiortc's own ``RTCPeerConnection`` and ``MediaPlayer``.

The microphone is a WAV file played in real time by aiortc's ``MediaPlayer``; the
reply audio is read from the receiving track and measured. Nothing here is voxengine
code: the server side is checked by a client no one here wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack


class RTCCaller:
    """One aiortc peer: WAV microphone, a data channel "events", reply audio counters."""

    def __init__(self, wav: Path | None) -> None:
        self.pc = RTCPeerConnection()
        self.player = MediaPlayer(str(wav)) if wav is not None else None
        self.channel = self.pc.createDataChannel("events")
        self.messages: list[dict[str, Any]] = []
        self.message_arrived = asyncio.Event()
        self.audio_seconds = 0.0  # all audio received (silence included)
        self.voiced_seconds = 0.0  # frames with audible sound
        self.first_voiced_at: float | None = None
        self.voiced = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        if self.player is not None and self.player.audio is not None:
            self.pc.addTrack(self.player.audio)
        else:
            self.pc.addTransceiver("audio", direction="recvonly")

    def _on_message(self, message: object) -> None:
        import json

        if isinstance(message, str):
            self.messages.append(json.loads(message))
            self.message_arrived.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            samples = frame.to_ndarray().astype(np.float64)  # type: ignore[union-attr]
            seconds = frame.samples / frame.sample_rate  # type: ignore[union-attr]
            self.audio_seconds += seconds
            if np.sqrt(np.mean(samples**2)) > 300:
                self.voiced_seconds += seconds
                if self.first_voiced_at is None:
                    self.first_voiced_at = loop.time()
                self.voiced.set()

    async def offer(self) -> dict[str, str]:
        """Create the offer and gather candidates (non-trickle)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return {"type": "offer", "sdp": self.pc.localDescription.sdp}

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    async def wait_message(
        self, match: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        """The first message (received so far or later) that ``match`` accepts."""
        async with asyncio.timeout(timeout):
            while True:
                for message in self.messages:
                    if match(message):
                        return message
                self.message_arrived.clear()
                await self.message_arrived.wait()

    async def wait_connected(self, timeout: float = 20.0) -> None:
        await settle(lambda: self.pc.connectionState == "connected", timeout)

    async def close(self) -> None:
        await self.pc.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self.player is not None and self.player.audio is not None:
            self.player.audio.stop()


async def settle(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    """Wait (event loop friendly) until ``check()`` holds."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if isinstance(result, Awaitable):
                result = await result
            if result:
                return
            await asyncio.sleep(0.02)


def webrtc_task(task: asyncio.Task[Any]) -> bool:
    """Whether ``task`` belongs to a server peer (``rtc-*``) or to aiortc/aioice."""
    if task.get_name().startswith("rtc-"):
        return True
    code = getattr(task.get_coro(), "cr_code", None)
    filename = code.co_filename if code is not None else ""
    return "/aiortc/" in filename or "/aioice/" in filename
