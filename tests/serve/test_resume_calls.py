"""Resuming calls through the serving layer, two servers (uvicorn on loopback) sharing
a real redis-server: a call started on one continues on the other with its resume
token; the fake OpenAI service sees the earlier turns and the assistant remembers;
what was lost is reported; tokens are single-use; a hang-up ends the call for good;
Redis down is a warning (or a refusal when state is required), never a crash."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from voxengine import VoiceEngine, VoiceEngineConfig
from voxengine.serve import CallContext
from voxengine.serve.client import CallEnded, open_call
from voxengine.serve.state import StateStore
from voxengine.testing import FakeOpenAIConfig, FakeOpenAIServerHandle, run_fake_openai_server

from ..session.test_resume import remembering, texts_of
from .conftest import Served, serve
from .redis_server import RedisServer, free_port

KEY = "sk-serve-resume-secret-0123456789"


@contextlib.asynccontextmanager
async def workers(
    fake: FakeOpenAIServerHandle, state_url: str | None, **settings: object
) -> AsyncIterator[tuple[Served, Served]]:
    def make_engine(context: CallContext) -> VoiceEngine:
        return VoiceEngine(VoiceEngineConfig(api_key=KEY, base_url=fake.url, mode="big"))

    async with (
        serve(make_engine=make_engine, state_url=state_url, state_ttl=30, **settings) as a,
        serve(make_engine=make_engine, state_url=state_url, state_ttl=30, **settings) as b,
    ):
        yield a, b


def done(message: dict[str, object]) -> bool:
    return message["state"] == "done" and message["status"] == "completed"


async def test_a_call_resumes_on_another_worker_with_its_history(
    fake: FakeOpenAIServerHandle, redis_server: RedisServer
) -> None:
    async with workers(fake, redis_server.url) as (a, b):
        async with open_call(a.ws, await a.token(), player="instant") as first:
            assert first.ready["durable"] is True
            token = first.resume_token
            assert token
            await first.send_text("My name is Ada")
            await first.wait_for("response", done, timeout=20)
            call_id = first.call_id
            store = a.board.continuity.store
            async with asyncio.timeout(10):  # the keeper writes right after the reply ends
                while len(await _history(store, call_id)) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            first.ws.transport.abort()  # the line drops (no close handshake)
            await first.wait_closed()
        async with open_call(b.ws, "", resume_token=token, player="instant") as second:
            assert second.call_id == call_id  # the same call, on the other worker
            assert second.resume_token not in (None, token)
            resumed = await second.wait_for("resumed")
            assert resumed["restored_items"] == 2
            assert resumed["lost"] == {"user_turn": False, "assistant_reply": False}
            assert [m["text"] for m in resumed["transcript"]] == [
                "My name is Ada",
                "Nice to meet you.",
            ]
            await second.send_text("What is my name?")
            await second.wait_for("response", done, timeout=20)
            finals = [
                m["text"]
                for m in second.messages
                if m["type"] == "transcript" and m["final"] and m["role"] == "assistant"
            ]
            assert finals[-1] == "Your name is Ada."
            # the provider connection of the resumed call received the earlier turns
            created = [
                texts_of(e["item"])
                for e in fake.connections[-1].received
                if e["type"] == "conversation.item.create"
            ]
            assert ["My name is Ada"] in created
            # the token was good once
            with pytest.raises(CallEnded) as refused:
                async with open_call(a.ws, "", resume_token=token):
                    pass
            assert refused.value.reason == "unauthorized"
            again = second.resume_token
            await second.hang_up()
        async with asyncio.timeout(10):  # the close reached the caller; the state delete follows
            await b.board.wait_idle()
        assert b.board.calls == {}
        # a hang-up ends the call for good: its state is deleted
        with pytest.raises(CallEnded):
            async with open_call(a.ws, "", resume_token=again):
                pass


async def test_forged_resume_tokens_are_refused(
    fake: FakeOpenAIServerHandle, redis_server: RedisServer
) -> None:
    async with workers(fake, redis_server.url) as (a, _):
        for token in ("garbage", 42, "a.b"):
            with pytest.raises(CallEnded) as refused:
                async with open_call(a.ws, "", resume_token=token):  # type: ignore[arg-type]
                    pass
            assert refused.value.reason == "unauthorized"
        assert a.board.calls == {}


async def test_redis_down_warns_or_refuses_by_configuration(
    fake: FakeOpenAIServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    async with workers(fake, down) as (a, _):
        token = await a.token()
        async with open_call(a.ws, token, player="instant") as call:
            assert call.ready["durable"] is False
            await call.send_text("still works")
            await call.wait_for("response", done, timeout=20)
            await call.hang_up()
    assert "state not durable" in caplog.text
    async with workers(fake, down, state_required=True) as (a, _):
        with pytest.raises(CallEnded) as refused:
            async with open_call(a.ws, await a.token()):
                pass
        assert refused.value.reason == "state_unavailable"
        assert a.board.calls == {}


async def test_the_turn_in_progress_is_reported_lost_not_dropped_silently(
    fake: FakeOpenAIServerHandle, redis_server: RedisServer
) -> None:
    from voxengine.testing import synthesize_speech

    speech = synthesize_speech("my name is ada and I live in", sample_rate=16000)
    async with workers(fake, redis_server.url) as (a, b):
        async with open_call(a.ws, await a.token(), player="instant") as first:
            token = first.resume_token
            await first.stream_pcm(speech[: len(speech) // 2], realtime=False)
            await first.wait_for("speech", lambda m: m["state"] == "started", timeout=20)
            store = a.board.continuity.store
            async with asyncio.timeout(10):  # the keeper writes right after the event
                while not await _speaking(store, first.call_id):  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            first.ws.transport.abort()  # mid-sentence
            await first.wait_closed()
        async with open_call(b.ws, "", resume_token=token, player="instant") as second:
            resumed = await second.wait_for("resumed")
            assert resumed["lost"]["user_turn"] is True
            await second.hang_up()


async def _speaking(store: StateStore, call_id: str) -> bool:
    record = await store.load(call_id)
    return record is not None and record.in_progress.user_speaking


async def _history(store: StateStore, call_id: str) -> list[str]:
    record = await store.load(call_id)
    return [e.text for e in record.snapshot.history if e.text] if record is not None else []


async def test_a_resume_whose_provider_refuses_gives_its_claim_back(
    redis_server: RedisServer,
) -> None:
    """The claim succeeds, then the provider refuses the connection (the fake OpenAI
    service answers a wrong key with 401, once): the client is told ``provider_failed``
    and the same resume token works on its next attempt, once the provider is back."""
    refuse: list[bool] = []  # [True]: the next provider connection uses a refused key

    def make_engine(context: CallContext) -> VoiceEngine:
        key = "sk-not-accepted-key-0000000000" if refuse and refuse.pop() else KEY
        return VoiceEngine(VoiceEngineConfig(api_key=key, base_url=fake.url, mode="big"))

    config = FakeOpenAIConfig(responder=remembering, api_keys=frozenset({KEY}))
    async with (
        run_fake_openai_server(config) as fake,
        serve(make_engine=make_engine, state_url=redis_server.url, state_ttl=30) as a,
        serve(make_engine=make_engine, state_url=redis_server.url, state_ttl=30) as b,
    ):
        async with open_call(a.ws, await a.token(), player="instant") as first:
            token = first.resume_token
            assert token
            await first.send_text("My name is Ada")
            await first.wait_for("response", done, timeout=20)
            call_id = first.call_id
            store = a.board.continuity.store
            async with asyncio.timeout(10):  # the keeper writes right after the reply ends
                while len(await _history(store, call_id)) < 2:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            first.ws.transport.abort()
            await first.wait_closed()
        refuse.append(True)
        with pytest.raises(CallEnded) as failed:
            async with open_call(b.ws, "", resume_token=token, player="instant"):
                pass
        assert failed.value.reason == "provider_failed"
        assert not refuse  # the refused connection was tried
        async with open_call(b.ws, "", resume_token=token, player="instant") as second:
            assert second.call_id == call_id
            resumed = await second.wait_for("resumed")
            assert resumed["restored_items"] == 2
            await second.send_text("What is my name?")
            await second.wait_for("response", done, timeout=20)
            finals = [
                m["text"]
                for m in second.messages
                if m["type"] == "transcript" and m["final"] and m["role"] == "assistant"
            ]
            assert finals[-1] == "Your name is Ada."
            await second.hang_up()
