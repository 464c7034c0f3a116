"""The real thing: redis-server, two `voxengine serve` worker processes and HAProxy
(configured from deploy/haproxy.cfg) on loopback. A call starts through the load
balancer with the fake OpenAI provider; the worker carrying it is SIGKILLed; the
Python client reconnects through HAProxy, lands on the other worker, resumes with its
token, and the assistant remembers (the fake service receives the earlier turns)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
from benchmarks.cluster import SECRET, Cluster, MissingBinary

from voxengine.serve.client import fetch_token
from voxengine.serve.resilient import open_resilient_call
from voxengine.testing import FakeOpenAIConfig, FakeOpenAIServerHandle, run_fake_openai_server

from ..session.test_resume import remembering, texts_of

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIServerHandle]:
    async with run_fake_openai_server(FakeOpenAIConfig(responder=remembering)) as handle:
        yield handle


@pytest.fixture
def cluster(fake: FakeOpenAIServerHandle) -> Iterator[Cluster]:
    try:
        deployment = Cluster(workers=2, fake_openai_url=fake.url, state_ttl=30)
        deployment.start()
    except MissingBinary as exc:
        pytest.skip(str(exc))
    try:
        yield deployment
    finally:
        deployment.stop()


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
            first.kill()
            resumed = await call.wait_for("resumed", timeout=60)
            assert resumed["restored_items"] == 2
            assert resumed["lost"] == {"user_turn": False, "assistant_reply": False}
            assert call.reconnects == 1
            seen = len(call.messages)
            await call.send_text("What is my name?")
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
        print(cluster.logs())
        raise
