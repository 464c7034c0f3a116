"""The real thing: redis-server, two `voxengine serve` worker processes and HAProxy
(configured from deploy/haproxy.cfg) on loopback. A call starts through the load
balancer with the fake OpenAI provider; the worker carrying it is SIGKILLed; the
Python client reconnects through HAProxy, lands on the other worker, resumes with its
token, and the assistant remembers (the fake service receives the earlier turns). The
served page does the same by itself in headless Chromium, over the WebSocket transport
and over WebRTC (signaling through HAProxy, media straight to the workers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.cluster import SECRET, Cluster

from voxengine.audio.format import AudioFormat
from voxengine.audio.wav import write_wav
from voxengine.serve.client import fetch_token
from voxengine.serve.resilient import open_resilient_call
from voxengine.serve.state import StateStore, open_store
from voxengine.testing import FakeOpenAIServerHandle, synthesize_speech

from ..session.test_resume import texts_of
from .chromium import chromium_page, needs_chromium
from .conftest import running_cluster

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def cluster(fake: FakeOpenAIServerHandle) -> Iterator[Cluster]:
    with running_cluster(workers=2, fake_openai_url=fake.url, state_ttl=30) as deployment:
        yield deployment


async def saved(store: StateStore, call_id: str) -> list[str]:
    record = await store.load(call_id)
    return [e.text for e in record.snapshot.history if e.text] if record is not None else []


def completed(message: dict[str, object]) -> bool:
    return message["state"] == "done" and message["status"] == "completed"


def assistant_finals(messages: list[dict[str, object]]) -> list[object]:
    return [
        m["text"]
        for m in messages
        if m["type"] == "transcript" and m["final"] and m["role"] == "assistant"
    ]


async def test_a_worker_killed_mid_call_the_call_resumes_on_the_other(
    cluster: Cluster, fake: FakeOpenAIServerHandle
) -> None:
    token = await fetch_token(cluster.http_url, secret=SECRET, subject="caller-1")
    try:
        async with open_resilient_call(cluster.ws_url, token, player="instant") as call:
            assert call.client is not None
            assert call.client.ready["durable"] is True
            await call.send_text("My name is Ada")
            await call.wait_for("response", completed, timeout=30)
            first = cluster.carrier()
            other = next(w for w in cluster.nodes if w is not first)
            # the worker writes the record right after the reply ends; a kill before that
            # write would lose the reply (the record lags the conversation by one write)
            store = open_store(cluster.redis_url)
            try:
                async with asyncio.timeout(10):
                    while len(await saved(store, call.call_id)) < 2:  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
            finally:
                await store.aclose()
            seen = len(call.messages)
            first.kill()
            # asked at once: if it went into the dead socket, it is sent again after the resume
            await call.send_text("What is my name?")
            resumed = await call.wait_for("resumed", timeout=60, start=seen)
            assert resumed["restored_items"] == 2
            assert resumed["lost"] == {"user_turn": False, "assistant_reply": False}
            assert call.reconnects == 1
            await call.wait_for("response", completed, timeout=30, start=seen)
            assert assistant_finals(call.messages)[-1] == "Your name is Ada."
            assert cluster.carrier() is other  # the call lives on the survivor now
            created = [
                texts_of(e["item"])
                for e in fake.connections[-1].received
                if e["type"] == "conversation.item.create"
            ]
            assert ["My name is Ada"] in created  # the provider saw the earlier turns
            await call.hang_up()
        await asyncio.sleep(0)
    except BaseException:
        print(cluster.logs())  # a fixture sees no failure: the test prints them
        raise


@needs_chromium
@pytest.mark.parametrize(("transport", "shown"), [("ws", "WebSocket"), ("webrtc", "WebRTC")])
async def test_the_page_resumes_by_itself_when_its_worker_dies(
    fake: FakeOpenAIServerHandle, tmp_path: Path, transport: str, shown: str
) -> None:
    """Over WebRTC only the signaling POST goes through HAProxy; media flows between
    Chromium and the worker's own UDP host candidates. A SIGKILLed worker sends no close:
    the page notices its peer connection going "disconnected" (no ICE consent answers),
    and resumes with a new offer carrying its resume token."""
    if transport == "webrtc":
        pytest.importorskip("aiortc", reason="aiortc (the serve extra) is not installed")
    wav = tmp_path / "question.wav"
    rate = 48000
    question = synthesize_speech("what time is it", sample_rate=rate)
    write_wav(wav, question + bytes(rate * 2 * 3), AudioFormat(sample_rate=rate))
    with running_cluster(workers=2, fake_openai_url=fake.url, public_tokens=True) as cluster:
        async with chromium_page(wav) as (page, errors):
            # one transport only: no fallback hides a failed resume
            await page.goto(f"{cluster.http_url}/?transport={transport}")
            await page.click("#talk")
            await page.wait_for_function(
                "document.body.dataset.state === 'connected'", timeout=30_000
            )
            assert await page.text_content("#transport") == shown
            await page.wait_for_selector("#transcript li.assistant", timeout=60_000)
            before = await page.eval_on_selector_all("#transcript li.assistant", "l => l.length")
            connections = len(fake.connections)
            killed = time.monotonic()
            cluster.carrier().kill()
            await page.wait_for_function("window.vox.resumes >= 1", timeout=60_000)
            print(f"{transport}: SIGKILL -> resumed {time.monotonic() - killed:.2f} s")
            status = await page.text_content("#status")
            assert status is not None
            assert status.startswith("Resumed on another server")
            # the looping microphone asks again: answered on the surviving worker
            await page.wait_for_function(
                f"document.querySelectorAll('#transcript li.assistant').length > {before}",
                timeout=60_000,
            )
            assert len(fake.connections) > connections
            restored = [
                e
                for e in fake.connections[connections].received
                if e["type"] == "conversation.item.create"
            ]
            assert restored  # the earlier turns reached the provider again
            assert await page.evaluate("document.body.dataset.state") == "connected"
            assert await page.text_content("#transport") == shown
            await page.screenshot(path=str(tmp_path / "resumed-page.png"), full_page=True)
            await page.click("#hangup")
            await page.wait_for_function("document.body.dataset.state === 'ended'", timeout=20_000)
            assert errors == []
