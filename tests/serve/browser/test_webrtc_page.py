"""The served page over WebRTC in a real headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright), and its fallback to the WebSocket transport.

Chromium's fake-media flags feed a spoken WAV (espeak-ng) as the microphone. Over
WebRTC the page sends the microphone track itself (the browser's audio processing
applies), plays the reply track through an <audio> element and reads its getStats
counters; the server's played position comes from its own count of audio handed to
the encoder. A screenshot of the page is kept (tests/artefacts/webrtc-page.png).
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.serve.chromium import chromium_page, needs_chromium
from tests.serve.conftest import serve
from voxengine import Interrupted, VoiceEngine, VoiceEngineConfig
from voxengine.serve import CallContext, ServeConfig, build_app
from voxengine.serve.browser.rtc_endpoint import OFFER_PATH
from voxengine.serve.server import serving
from voxengine.testing.mock import MockConfig, MockProvider

ARTEFACTS = Path(__file__).parents[2] / "artefacts"

pytestmark = [
    needs_chromium,
    pytest.mark.timeout(180),
]


async def _talk(page: Any, url: str) -> None:
    await page.goto(url)
    await page.click("#talk")
    await page.wait_for_function("document.body.dataset.state === 'connected'", timeout=40_000)


async def _both_sides_shown(page: Any) -> tuple[str, str]:
    await page.wait_for_selector("#transcript li.user", timeout=60_000)
    await page.wait_for_selector("#transcript li.assistant", timeout=60_000)
    user = (await page.text_content("#transcript li.user")) or ""
    assistant = (await page.text_content("#transcript li.assistant")) or ""
    return user.strip(), assistant.strip()


async def test_the_page_talks_over_webrtc_in_chromium(
    tmp_path: Path, spoken_wav: Callable[..., Awaitable[Path]]
) -> None:
    wav = await spoken_wav("what is the capital of France", gap=4.0, lead=1.0)
    engine = {"input_transcription_model": "whisper-1"}
    async with serve(engine=engine) as served, chromium_page(wav) as (page, errors):
        await _talk(page, served.http + "/")
        assert await page.text_content("#transport") == "WebRTC"
        (call,) = served.board.calls.values()
        assert call.context.endpoint == "webrtc"
        user, assistant = await _both_sides_shown(page)
        assert "s of audio" in user  # the mock transcribed the spoken question
        assert assistant.startswith("I heard")  # and answered it
        # the reply audio arrived and played: the browser's own receive statistics
        await page.wait_for_function("window.vox.audioBytes > 48000", timeout=60_000)
        rtc = await page.evaluate("window.vox.rtc")
        assert rtc["packetsReceived"] > 50
        assert rtc["audioEnergy"] > 0
        await page.wait_for_function(
            "document.querySelector('#latency').textContent.endsWith(' ms')", timeout=30_000
        )
        # the server's play head moved with what it handed to the encoder
        assert call.output.heard_seconds > 0.2
        shot = tmp_path / "webrtc-page.png"
        await page.screenshot(path=str(shot), full_page=True)
        ARTEFACTS.mkdir(exist_ok=True)
        shutil.copy(shot, ARTEFACTS / "webrtc-page.png")
        await page.click("#hangup")
        await page.wait_for_function("document.body.dataset.state === 'ended'", timeout=20_000)
        assert "Call ended" in (await page.text_content("#status") or "")
        assert errors == []
    assert served.board.calls == {}


async def test_barge_in_over_webrtc_in_chromium(
    tmp_path: Path, spoken_wav: Callable[..., Awaitable[Path]]
) -> None:
    # the caller asks for a story, then talks over it
    wav = await spoken_wav("tell me a story", "stop please stop", gap=5.0, lead=1.0)
    story = "Once upon a time there was a quiet harbour town by the sea " * 4

    def make_engine(context: CallContext) -> VoiceEngine:
        config = VoiceEngineConfig(provider="mock")
        mock = MockConfig(replies=(story,), session=config.session_config())
        return VoiceEngine(config, provider=MockProvider(mock))

    async with (
        serve(make_engine=make_engine) as served,
        chromium_page(wav) as (page, _errors),
    ):
        await _talk(page, served.http + "/")
        assert await page.text_content("#transport") == "WebRTC"
        (engine,) = served.engines
        interrupted: list[Interrupted] = []
        engine.events.on(Interrupted, interrupted.append)
        await page.wait_for_function("window.vox.messages.includes('interrupted')", timeout=60_000)
        assert "clear" in await page.evaluate("window.vox.messages")
        (event,) = interrupted
        story_seconds = len(story.split()) * 0.25  # the mock's seconds per word
        # cut at what had played: some of the story, far from all of it
        assert event.played is not None
        assert 0.3 < event.played < story_seconds - 3
        await page.wait_for_selector("#transcript li.assistant.interrupted", timeout=10_000)
        jitter = await page.evaluate("window.vox.rtc.jitterBufferDelay")
        print(f"browser jitter-buffer delay: {jitter} s; truncated at {event.played:.2f} s")


async def _no_webrtc(request: Any) -> JSONResponse:
    return JSONResponse({"error": "not_found"}, status_code=404)


async def test_the_page_falls_back_to_websocket_without_webrtc(
    tmp_path: Path, spoken_wav: Callable[..., Awaitable[Path]]
) -> None:
    wav = await spoken_wav("what is the capital of France", gap=4.0, lead=1.0)
    engine = {"input_transcription_model": "whisper-1"}
    # a deployment (or a proxy) where WebRTC signaling is unavailable
    refused = [Route(OFFER_PATH, _no_webrtc, methods=["POST"])]
    app = build_app(ServeConfig(provider="mock", engine=engine), routes=refused)
    board = app.state.switchboard
    async with serving(app) as running, chromium_page(wav) as (page, errors):
        await _talk(page, running.http_url + "/")
        assert await page.text_content("#transport") == "WebSocket"
        (call,) = board.calls.values()
        assert call.context.endpoint == "browser"
        user, assistant = await _both_sides_shown(page)
        assert "s of audio" in user
        assert assistant.startswith("I heard")
        await page.wait_for_function("window.vox.audioBytes > 24000", timeout=60_000)
        assert errors == []
