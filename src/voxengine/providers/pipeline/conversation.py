"""The pipeline's conversation: items as the application sees them, messages as LLMs do.

:class:`Conversation` stores :class:`~voxengine.events.ConversationItem` values (user
and assistant messages, function calls and their outputs) under their item ids, so the
provider can truncate or delete them, and renders them as the
:class:`~voxengine.providers.pipeline.stages.ChatMessage` list a language model takes.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import final

from voxengine.events import ConversationItem, ItemKind, Role

from .stages import ChatMessage, ToolCallRequest

__all__ = ["Conversation"]

_MISSING_OUTPUT = json.dumps({"error": "the application returned no result for this call"})


@final
class Conversation:
    """Ordered conversation items keyed by item id."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[str, ConversationItem] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    @property
    def items(self) -> list[ConversationItem]:
        """Every item, oldest first."""
        return list(self._items.values())

    def get(self, item_id: str) -> ConversationItem | None:
        """The item ``item_id``, or None."""
        return self._items.get(item_id)

    def add(self, item: ConversationItem) -> None:
        """Append ``item`` (or replace the item with the same id, keeping its place)."""
        self._items[item.item_id] = item

    def set_text(self, item_id: str, text: str) -> ConversationItem:
        """Replace the text of message ``item_id`` (truncation); returns the new item.

        Raises:
            KeyError: no such item.
        """
        item = replace(self._items[item_id], text=text)
        self._items[item_id] = item
        return item

    def delete(self, item_id: str) -> bool:
        """Remove ``item_id``; returns whether it existed."""
        return self._items.pop(item_id, None) is not None

    def has_call(self, call_id: str) -> bool:
        """Whether a function call ``call_id`` is in the conversation."""
        return any(
            i.kind is ItemKind.FUNCTION_CALL and i.call_id == call_id for i in self._items.values()
        )

    def messages(self, instructions: str | None = None) -> list[ChatMessage]:
        """The conversation as chat messages, ``instructions`` first as a system message.

        An assistant message and the function calls that follow it become one assistant
        message with ``tool_calls``. Empty messages are left out. A call the application
        never answered gets an error output before the next turn, because LLM APIs
        reject a call without a result.
        """
        out: list[ChatMessage] = []
        if instructions:
            out.append(ChatMessage(role=Role.SYSTEM, text=instructions))
        unanswered: list[str] = []
        for item in self._items.values():
            if item.kind is ItemKind.FUNCTION_CALL:
                call = ToolCallRequest(
                    call_id=item.call_id or item.item_id,
                    name=item.name or "",
                    arguments=item.arguments or "{}",
                )
                last = out[-1] if out else None
                if last is not None and last.role is Role.ASSISTANT:
                    out[-1] = replace(last, tool_calls=(*last.tool_calls, call))
                else:
                    _close_calls(out, unanswered)
                    out.append(ChatMessage(role=Role.ASSISTANT, tool_calls=(call,)))
                unanswered.append(call.call_id)
            elif item.kind is ItemKind.FUNCTION_CALL_OUTPUT:
                call_id = item.call_id or ""
                if call_id in unanswered:
                    unanswered.remove(call_id)
                    out.append(
                        ChatMessage(role=Role.TOOL, text=item.output or "", tool_call_id=call_id)
                    )
            elif item.text:
                _close_calls(out, unanswered)
                out.append(ChatMessage(role=item.role or Role.USER, text=item.text))
        return out


def _close_calls(out: list[ChatMessage], unanswered: list[str]) -> None:
    for call_id in unanswered:
        out.append(ChatMessage(role=Role.TOOL, text=_MISSING_OUTPUT, tool_call_id=call_id))
    unanswered.clear()
