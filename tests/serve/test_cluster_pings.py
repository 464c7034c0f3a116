"""The served page's ping loop on a real deployment (redis-server, `voxengine serve`
workers, HAProxy) in headless Chromium over the WebSocket transport:

* one ping loop per call: after two resumes the page still sends one ping every 2 s
  (each resume used to start another loop beside the old ones);
* a worker that hangs without closing its socket (SIGSTOP: the kernel keeps the
  connection open, nothing answers) is noticed by three unanswered pings and the call
  resumes on the other worker, as when the socket closes; so does
  :class:`~voxengine.serve.resilient.ResilientCall` (WebSocket pings, real sockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from benchmarks.cluster import SECRET, Cluster

from voxengine.audio.format import AudioFormat
from voxengine.audio.wav import write_wav
from voxengine.serve.client import fetch_token
from voxengine.serve.resilient import open_resilient_call
from voxengine.testing import FakeOpenAIServerHandle

from .chromium import chromium_page, needs_chromium
from .conftest import running_cluster
from .test_cluster import assistant_finals, completed

pytestmark = [pytest.mark.timeout(180), needs_chromium]

# every ping the page puts on a WebSocket, with the time it was sent
COUNT_PINGS = """
window.pingTimes = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (typeof data === "string" && JSON.parse(data).type === "ping") {
    window.pingTimes.push(performance.now());
  }
  return send.call(this, data);
};
"""


@contextlib.asynccontextmanager
async def on_page(
    fake: FakeOpenAIServerHandle, tmp_path: Path, workers: int
) -> AsyncIterator[tuple[Cluster, Any]]:
    """A cluster and a page in a call on it over the WebSocket transport."""
    wav = tmp_path / "silence.wav"
    write_wav(wav, bytes(48000 * 2 * 2), AudioFormat(sample_rate=48000))
    with running_cluster(workers=workers, fake_openai_url=fake.url, public_tokens=True) as cluster:
        async with chromium_page(wav, init_script=COUNT_PINGS, audible=False) as (page, errors):
            await page.goto(f"{cluster.http_url}/?transport=ws")
            await page.click("#talk")
            await page.wait_for_function(
                "document.body.dataset.state === 'connected'", timeout=30_000
            )
            yield cluster, page
            assert errors == []


async def resumed(page: Any, count: int) -> None:
    await page.wait_for_function(
        f"window.vox.resumes >= {count} && document.body.dataset.state === 'connected'",
        timeout=60_000,
    )


async def test_one_ping_loop_after_two_resumes(
    fake: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    async with on_page(fake, tmp_path, workers=3) as (cluster, page):
        cluster.carrier().kill()
        await resumed(page, 1)
        cluster.carrier().kill()
        await resumed(page, 2)
        # a measuring window (not a wait for an event): one loop sends 4 or 5 pings in
        # 8 s, three loops 12 or more; a loaded machine may delay a timer, never add one
        start = await page.evaluate("performance.now()")
        await asyncio.sleep(8)
        times = await page.evaluate("window.pingTimes")
        sent = [t for t in times if start <= t <= start + 8000]
        assert 2 <= len(sent) <= 5, sent
        await page.click("#hangup")
        await page.wait_for_function("document.body.dataset.state === 'ended'", timeout=20_000)
        after = len(await page.evaluate("window.pingTimes"))
        await asyncio.sleep(4.5)  # hung up: the loop stops (it would send two more)
        assert len(await page.evaluate("window.pingTimes")) == after


async def test_a_hung_worker_is_noticed_by_unanswered_pings_and_the_call_resumes(
    fake: FakeOpenAIServerHandle, tmp_path: Path
) -> None:
    async with on_page(fake, tmp_path, workers=2) as (cluster, page):
        hung = cluster.carrier()
        assert hung.process is not None
        stopped = time.monotonic()
        hung.process.send_signal(signal.SIGSTOP)  # its socket stays open: no close, no reset
        try:
            await resumed(page, 1)
            print(f"SIGSTOP -> resumed {time.monotonic() - stopped:.2f} s")
            status = await page.text_content("#status")
            assert status is not None
            assert status.startswith("Resumed on another server")
            assert cluster.carrier() is not hung
        finally:
            hung.process.send_signal(signal.SIGCONT)
            hung.kill()


async def test_resilient_call_notices_a_hung_worker_by_pings_and_resumes(
    fake: FakeOpenAIServerHandle,
) -> None:
    """The Python client over real sockets (through HAProxy): with the default 2 s
    pings and 4 s pong wait, a SIGSTOPped worker is left within 10 s (websockets'
    default 20 s + 20 s + 10 s close wait would take up to 50 s)."""
    with running_cluster(workers=2, fake_openai_url=fake.url) as cluster:  # SIGCONTs it at the end
        token = await fetch_token(cluster.http_url, secret=SECRET, subject="caller-1")
        async with open_resilient_call(cluster.ws_url, token, player="instant") as call:
            await call.send_text("My name is Ada")
            await call.wait_for("response", completed, timeout=30)
            hung = cluster.carrier()
            assert hung.process is not None
            seen = len(call.messages)
            stopped = time.monotonic()
            hung.process.send_signal(signal.SIGSTOP)
            await call.wait_for("resumed", timeout=25, start=seen)
            print(f"ResilientCall: SIGSTOP -> resumed {time.monotonic() - stopped:.2f} s")
            assert call.reconnects == 1
            assert cluster.carrier() is not hung
            await call.send_text("What is my name?")
            await call.wait_for("response", completed, timeout=30, start=seen)
            assert assistant_finals(call.messages)[-1] == "Your name is Ada."
            await call.hang_up()
