from __future__ import annotations

from voxengine.events import (
    ConversationItem,
    ItemDeleted,
    ItemDone,
    ItemKind,
    ItemTruncated,
    Role,
    ToolCall,
    TranscriptDone,
)
from voxengine.session.history import ConversationHistory


def test_history_from_events() -> None:
    h = ConversationHistory()
    user = ConversationItem(item_id="u1", kind=ItemKind.MESSAGE, role=Role.USER)
    h.observe(ItemDone(item=user))  # audio input: transcript not known yet
    h.observe(TranscriptDone(role=Role.USER, item_id="u1", transcript="what time is it"))
    h.observe(ToolCall(call_id="c1", name="clock", arguments="{}", item_id="f1"))
    out = ConversationItem(
        item_id="o1", kind=ItemKind.FUNCTION_CALL_OUTPUT, call_id="c1", output='"3 pm"'
    )
    h.observe(ItemDone(item=out))
    reply = ConversationItem(
        item_id="a1", kind=ItemKind.MESSAGE, role=Role.ASSISTANT, text="It is 3 pm."
    )
    h.observe(ItemDone(item=reply))
    h.observe(ItemTruncated(item_id="a1", audio_end=0.8))
    assert [(e.role, e.kind, e.text) for e in h.entries] == [
        (Role.USER, ItemKind.MESSAGE, "what time is it"),
        (Role.ASSISTANT, ItemKind.FUNCTION_CALL, "{}"),
        (Role.TOOL, ItemKind.FUNCTION_CALL_OUTPUT, '"3 pm"'),
        (Role.ASSISTANT, ItemKind.MESSAGE, "It is 3 pm."),
    ]
    assert h.entries[1].name == "clock"
    assert h.entries[-1].truncated_at == 0.8
    h.observe(ItemDeleted(item_id="o1"))
    assert len(h) == 3
    h.clear()
    assert h.entries == []
