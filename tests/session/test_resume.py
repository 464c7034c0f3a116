"""A conversation continued in a new engine (as on another worker): the snapshot goes
through JSON, the new engine resumes it, and the fake service SEES the earlier turns
(its responder answers from them) over real sockets."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from voxengine import ResponseDone, ResponseStatus, VoiceEngine, VoiceEngineConfig
from voxengine.config import SessionConfig
from voxengine.errors import ProtocolViolation
from voxengine.events import ItemKind, Role
from voxengine.providers import GeminiConfig, GeminiProvider
from voxengine.session.history import HistoryEntry
from voxengine.session.snapshot import (
    ConversationSnapshot,
    snapshot_from_json,
    snapshot_to_json,
)
from voxengine.testing import (
    FakeGeminiConfig,
    FakeOpenAIConfig,
    FakeReply,
    FakeTurn,
    run_fake_gemini_server,
    run_fake_openai_server,
)

KEY = "sk-resume-secret-4242"
NAME = re.compile(r"my name is (\w+)", re.IGNORECASE)


def texts_of(item: Any) -> list[str]:
    """Texts of one wire item, OpenAI (``content``) or Gemini (``parts``) shaped."""
    out: list[str] = []
    for part in item.get("content", []) or item.get("parts", []):
        if isinstance(part, dict):
            out.extend(str(part[k]) for k in ("text", "transcript") if part.get(k))
    return out


def remembering(turn: FakeTurn) -> FakeReply:
    """Answers "what is my name" from the conversation the service holds."""
    if "what is my name" in turn.text.lower():
        for item in turn.history:
            for text in texts_of(item):
                found = NAME.search(text)
                if found:
                    return FakeReply(text=f"Your name is {found.group(1)}.")
        return FakeReply(text="I do not know your name.")
    return FakeReply(text="Nice to meet you.")


async def ask(engine: VoiceEngine, text: str) -> str:
    done = engine.events.wait_for(
        ResponseDone, timeout=15, filter=lambda e: e.status is ResponseStatus.COMPLETED
    )
    await engine.send_text(text)
    await done
    return engine.history[-1].text


def through_json(snapshot: ConversationSnapshot) -> ConversationSnapshot:
    return snapshot_from_json(json.loads(json.dumps(snapshot_to_json(snapshot))))


# -- the snapshot format -----------------------------------------------------------------


def test_snapshot_round_trips_every_kind_of_entry() -> None:
    entries = (
        HistoryEntry(item_id="a", role=Role.USER, text="hi"),
        HistoryEntry(item_id="b", role=Role.ASSISTANT, text="hello", truncated_at=1.5),
        HistoryEntry(
            item_id="c",
            role=Role.ASSISTANT,
            text='{"city": "Paris"}',
            kind=ItemKind.FUNCTION_CALL,
            call_id="call_1",
            name="weather",
        ),
        HistoryEntry(
            item_id="d",
            role=Role.TOOL,
            text="sunny",
            kind=ItemKind.FUNCTION_CALL_OUTPUT,
            call_id="call_1",
        ),
    )
    snapshot = ConversationSnapshot.of(entries, "handle-1")
    assert through_json(snapshot) == snapshot
    assert "handle-1" not in repr(snapshot)


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"version": 99, "history": []},
        {"version": 1, "history": {}},
        {"version": 1, "history": ["x"]},
        {"version": 1, "history": [{"item_id": "a", "role": "boss", "kind": "message"}]},
        {"version": 1, "history": [{"item_id": 3, "role": "user", "kind": "message", "text": ""}]},
        {
            "version": 1,
            "history": [
                {"item_id": "a", "role": "user", "kind": "message", "text": "", "truncated_at": "x"}
            ],
        },
        {"version": 1, "history": [], "resumption_handle": 5},
    ],
)
def test_malformed_snapshots_are_refused_with_a_typed_error(data: object) -> None:
    with pytest.raises(ProtocolViolation):
        snapshot_from_json(data)


# -- OpenAI: the items are re-created -------------------------------------------------------


async def test_openai_resume_recreates_items_and_the_assistant_remembers() -> None:
    fake = FakeOpenAIConfig(responder=remembering, paced=False)
    async with run_fake_openai_server(fake) as handle:
        config = VoiceEngineConfig(api_key=KEY, base_url=handle.url, mode="big")
        first = VoiceEngine(config)
        async with first:
            assert "Nice to meet you" in await ask(first, "My name is Ada")
            saved = through_json(first.snapshot())
        assert [e.text for e in saved.history] == ["My name is Ada", "Nice to meet you."]

        second = VoiceEngine(config)
        result = await second.resume(saved)
        try:
            assert (result.restored_items, result.skipped_items) == (2, 0)
            assert not result.resumed_by_handle
            reply = await ask(second, "What is my name?")
        finally:
            await second.disconnect()
        assert reply == "Your name is Ada."
        # the new connection received the earlier turns as conversation items
        created = [
            texts_of(e["item"])
            for e in handle.connections[1].received
            if e["type"] == "conversation.item.create"
        ]
        assert ["My name is Ada"] in created
        assert ["Nice to meet you."] in created
        # and a later snapshot still holds them, before the new turn
        texts = [e.text for e in second.snapshot().history]
        assert texts[:2] == ["My name is Ada", "Nice to meet you."]
        assert texts[-1] == "Your name is Ada."


# -- Gemini: the resumption handle, or the history when it is refused -----------------------


def gemini(url: str) -> VoiceEngine:
    provider = GeminiProvider(GeminiConfig(api_key=KEY, base_url=url, session=SessionConfig()))
    return VoiceEngine(VoiceEngineConfig(provider="gemini", mode="big"), provider=provider)


async def test_gemini_resume_by_handle_and_replay_when_the_handle_is_refused() -> None:
    async with run_fake_gemini_server(FakeGeminiConfig(responder=remembering)) as handle:
        first = gemini(handle.url)
        async with first:
            await ask(first, "My name is Grace")
            saved = through_json(first.snapshot())
        assert saved.resumption_handle  # the service issued one after the turn

        second = gemini(handle.url)
        result = await second.resume(saved)
        try:
            assert result.resumed_by_handle
            assert result.restored_items == 0
            assert handle.connections[-1].resumed_from == saved.resumption_handle
            assert await ask(second, "What is my name?") == "Your name is Grace."
        finally:
            await second.disconnect()
        texts = [e.text for e in second.snapshot().history]
        assert texts == [
            *(e.text for e in saved.history),
            "What is my name?",
            "Your name is Grace.",
        ]

        # an unknown (expired) handle: refused, so the history is replayed instead
        expired = ConversationSnapshot.of(saved.history, "bm90LWEtaGFuZGxl")
        third = gemini(handle.url)
        result = await third.resume(expired)
        try:
            assert result.handle_refused
            assert not result.resumed_by_handle
            assert result.restored_items == len(saved.history)
            assert await ask(third, "What is my name?") == "Your name is Grace."
        finally:
            await third.disconnect()
        assert handle.connections[-1].resumed_from is None


# -- the pipeline: the language model's context --------------------------------------------


async def test_pipeline_resume_puts_the_history_in_the_llm_context() -> None:
    from voxengine.providers.pipeline import AnthropicPipelineConfig, AnthropicPipelineProvider
    from voxengine.testing import FakeLLMConfig, FakeLLMReply, FakeLLMTurn, run_fake_llm_server

    def counting(turn: FakeLLMTurn) -> FakeLLMReply:
        return FakeLLMReply(text=f"I see {turn.message_count} messages.")

    async with run_fake_llm_server(FakeLLMConfig(api_key=KEY, responder=counting)) as server:

        def engine() -> VoiceEngine:
            provider = AnthropicPipelineProvider(
                AnthropicPipelineConfig(api_key=KEY, base_url=server.anthropic_base_url)
            )
            return VoiceEngine(VoiceEngineConfig(mode="big"), provider=provider)

        first = engine()
        async with first:
            assert await ask(first, "My name is Alan") == "I see 1 messages."
            saved = through_json(first.snapshot())
        second = engine()
        result = await second.resume(saved)
        try:
            assert result.restored_items == 2
            reply = await ask(second, "What is my name?")
            assert reply == "I see 3 messages."
        finally:
            await second.disconnect()
        body = server.requests[-1].body
        said = [m["content"] for m in body["messages"]]
        assert "My name is Alan" in json.dumps(said[0])
        assert "I see 1 messages." in json.dumps(said[1])
        assert [e.text for e in second.snapshot().history][:2] == [
            "My name is Alan",
            "I see 1 messages.",
        ]
