"""The page's keep-alive over WebRTC: a ping every 2 s on the data channel; three
unanswered in a row and the page gives the line up ("no answer to 3 pings") and
resumes the call, in headless Chromium against the real server's aiortc peer. The
server here leaves three pings unanswered after the first two while its reply track
goes on sending packets (a stuck control path: the page's media-silence check cannot
see it), so only the ping count can notice. The call then goes on (the same call on
the server, resumed with the page's token) and its pings are answered again."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.serve.chromium import chromium_page, needs_chromium
from tests.serve.conftest import serve
from voxengine.audio.format import AudioFormat
from voxengine.audio.wav import write_wav
from voxengine.serve.call import Call

pytestmark = [pytest.mark.timeout(120), needs_chromium]

ANSWERED_FIRST = 2
LEFT_UNANSWERED = 3  # the page's MAX_UNANSWERED


async def test_three_unanswered_pings_give_up_the_webrtc_line_and_the_call_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("aiortc", reason="aiortc (the serve extra) is not installed")
    from voxengine.serve.browser import rtc_endpoint

    pings: list[tuple[float, bool]] = []  # (when, answered)
    handle = rtc_endpoint.handle_control

    async def leaves_three_pings_unanswered(call: Call, message: Mapping[str, Any]) -> None:
        if message["type"] == "ping":
            answered = not ANSWERED_FIRST <= len(pings) < ANSWERED_FIRST + LEFT_UNANSWERED
            pings.append((time.monotonic(), answered))
            if not answered:
                return  # the control path is stuck: no pong
        await handle(call, message)

    monkeypatch.setattr(rtc_endpoint, "handle_control", leaves_three_pings_unanswered)
    wav = tmp_path / "silence.wav"
    write_wav(wav, bytes(48000 * 2 * 2), AudioFormat(sample_rate=48000))
    async with serve() as served, chromium_page(wav) as (page, errors):
        await page.goto(f"{served.http}/?transport=webrtc")
        await page.click("#talk")
        await page.wait_for_function("document.body.dataset.state === 'connected'", timeout=40_000)
        assert await page.text_content("#transport") == "WebRTC"
        (call_id,) = served.board.calls
        # the first pings are answered: the page shows the round trip
        await page.wait_for_function(
            "document.querySelector('#rtt').textContent.endsWith(' ms')", timeout=20_000
        )
        await page.evaluate("document.querySelector('#rtt').textContent = '-'")
        await page.wait_for_function(
            "window.vox.resumes >= 1 && document.body.dataset.state === 'connected'",
            timeout=40_000,
        )
        given_up = time.monotonic()
        unanswered = [when for when, answered in pings if not answered]
        assert len(unanswered) == LEFT_UNANSWERED
        # given up after the third unanswered ping, at the next tick (2 s; generous)
        assert unanswered[-1] < given_up < unanswered[0] + 20
        # the same call goes on, and its pings (a new loop) are answered again
        assert list(served.board.calls) == [call_id]
        await page.wait_for_function(
            "document.querySelector('#rtt').textContent.endsWith(' ms')", timeout=20_000
        )
        assert pings[-1][1]
        status = await page.text_content("#status")
        assert status is not None
        assert status.startswith("Resumed")
        await page.click("#hangup")
        await page.wait_for_function("document.body.dataset.state === 'ended'", timeout=20_000)
        assert await page.evaluate("window.vox.resumes") == 1  # one give-up, one resume
        assert errors == []
