"""Conversation items rendered as chat messages."""

from __future__ import annotations

from voxengine.events import ConversationItem, ItemKind, Role
from voxengine.providers.pipeline.conversation import Conversation
from voxengine.providers.pipeline.stages import ChatMessage, ToolCallRequest


def message(item_id: str, role: Role, text: str) -> ConversationItem:
    return ConversationItem(item_id=item_id, kind=ItemKind.MESSAGE, role=role, text=text)


def call(item_id: str, call_id: str) -> ConversationItem:
    return ConversationItem(
        item_id=item_id, kind=ItemKind.FUNCTION_CALL, call_id=call_id, name="f", arguments="{}"
    )


def output(item_id: str, call_id: str, text: str) -> ConversationItem:
    return ConversationItem(
        item_id=item_id, kind=ItemKind.FUNCTION_CALL_OUTPUT, call_id=call_id, output=text
    )


def test_calls_join_the_assistant_message_and_outputs_follow() -> None:
    conversation = Conversation()
    for item in (
        message("1", Role.USER, "hi"),
        message("2", Role.ASSISTANT, "Let me look."),
        call("3", "c1"),
        call("4", "c2"),
        output("5", "c1", "one"),
        output("6", "c2", "two"),
        message("7", Role.USER, ""),  # an empty transcript is left out
    ):
        conversation.add(item)
    calls = (
        ToolCallRequest(call_id="c1", name="f", arguments="{}"),
        ToolCallRequest(call_id="c2", name="f", arguments="{}"),
    )
    assert conversation.messages("sys") == [
        ChatMessage(role=Role.SYSTEM, text="sys"),
        ChatMessage(role=Role.USER, text="hi"),
        ChatMessage(role=Role.ASSISTANT, text="Let me look.", tool_calls=calls),
        ChatMessage(role=Role.TOOL, text="one", tool_call_id="c1"),
        ChatMessage(role=Role.TOOL, text="two", tool_call_id="c2"),
    ]


def test_unanswered_calls_get_an_error_output_before_the_next_turn() -> None:
    conversation = Conversation()
    conversation.add(call("1", "c1"))
    conversation.add(message("2", Role.USER, "never mind"))
    conversation.add(output("3", "unknown", "ignored"))
    out = conversation.messages()
    assert [m.role for m in out] == [Role.ASSISTANT, Role.TOOL, Role.USER]
    assert out[1].tool_call_id == "c1"
    assert "no result" in out[1].text


def test_truncate_and_delete() -> None:
    conversation = Conversation()
    conversation.add(message("1", Role.ASSISTANT, "One. Two."))
    assert conversation.set_text("1", "One.").text == "One."
    assert "1" in conversation
    assert conversation.delete("1")
    assert not conversation.delete("1")
    assert len(conversation) == 0
