"""The served page end to end in a real headless Chromium (Debian's /usr/bin/chromium,
driven by Playwright): Chromium's fake-media flags feed a WAV file as the microphone;
the page connects, the question is answered, the reply audio arrives and plays (the
page reports the played position), and the transcript shows on the page. A
screenshot is kept (pytest's tmp dir and tests/artefacts/serve-page.png)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from voxengine.audio.format import AudioFormat
from voxengine.audio.wav import write_wav
from voxengine.testing import synthesize_speech

from .chromium import chromium_page, needs_chromium
from .conftest import serve

ARTEFACTS = Path(__file__).parents[1] / "artefacts"

pytestmark = [
    needs_chromium,
    pytest.mark.timeout(180),
]


async def test_the_page_talks_to_the_server_in_chromium(tmp_path: Path) -> None:
    wav = tmp_path / "question.wav"
    rate = 48000
    question = synthesize_speech("what time is it", sample_rate=rate)
    write_wav(wav, question + bytes(rate * 2 * 4), AudioFormat(sample_rate=rate))  # + 4 s silence

    # input transcription: the fake transcribes the question, so both sides show
    engine = {"input_transcription_model": "whisper-1"}
    async with serve(engine=engine) as served, chromium_page(wav) as (page, errors):
        await page.goto(served.http + "/?transport=ws")  # WebRTC: tests/serve/browser
        await page.click("#talk")
        await page.wait_for_function("document.body.dataset.state === 'connected'", timeout=30_000)
        assert await page.text_content("#transport") == "WebSocket"
        # the fake provider's VAD hears the question, the reply streams back and plays
        await page.wait_for_selector("#transcript li.assistant", timeout=60_000)
        await page.wait_for_function("window.vox.audioBytes > 24000", timeout=60_000)
        await page.wait_for_function(
            "document.querySelector('#latency').textContent.endsWith(' ms')", timeout=30_000
        )
        call = next(iter(served.board.calls.values()))
        await page.wait_for_function("window.vox.messages.includes('response')", timeout=30_000)
        # the page reports what it played: the server's play head moves
        for _ in range(100):
            if call.output.heard_seconds > 0.2:
                break
            await page.wait_for_timeout(100)
        assert call.output.heard_seconds > 0.2
        assistant = await page.text_content("#transcript li.assistant")
        assert assistant
        assert assistant.strip()
        await page.wait_for_selector("#transcript li.user", timeout=30_000)
        user = await page.text_content("#transcript li.user")
        assert user
        assert user.strip()
        shot = tmp_path / "serve-page.png"
        await page.screenshot(path=str(shot), full_page=True)
        ARTEFACTS.mkdir(exist_ok=True)
        shutil.copy(shot, ARTEFACTS / "serve-page.png")
        print(f"screenshot: {shot} (copied to {ARTEFACTS / 'serve-page.png'})")
        await page.click("#hangup")
        await page.wait_for_function("document.body.dataset.state === 'ended'", timeout=20_000)
        assert "Call ended" in (await page.text_content("#status") or "")
        assert errors == []
    assert served.board.calls == {}


async def test_speaking_over_the_reply_in_chromium_truncates_at_what_the_page_played(
    tmp_path: Path,
) -> None:
    """The fake microphone loops: question, 3 s of silence, the question again, which
    lands while the (10 s, real-time) reply plays: the page is told to clear, and the
    provider truncates the reply at the position the page reported played."""
    from .test_barge_in import paced_mock

    wav = tmp_path / "question.wav"
    rate = 48000
    question = synthesize_speech("what time is it", sample_rate=rate)
    write_wav(wav, question + bytes(rate * 2 * 3), AudioFormat(sample_rate=rate))

    async with serve(make_engine=paced_mock) as served, chromium_page(wav) as (page, _errors):
        await page.goto(served.http + "/?transport=ws")  # the page's own played reports
        await page.click("#talk")
        await page.wait_for_selector("#transcript li.assistant.interrupted", timeout=60_000)
        call = next(iter(served.board.calls.values()))
        server = served.engines[0].provider.server
        assert server is not None
        truncations = [e for e in server.received if e["type"] == "conversation.item.truncate"]
        assert len(truncations) >= 1
        heard = truncations[0]["audio_end_ms"] / 1000
        # the page had played a part of the reply, not all 10 s that were coming
        assert 0.2 < heard < 9.0
        # and the page's reports are what the server went by (over the whole call)
        assert heard <= call.output.heard_seconds + 0.001  # audio_end_ms: whole ms
        await page.screenshot(path=str(tmp_path / "serve-page-barge-in.png"), full_page=True)
