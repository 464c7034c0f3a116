"""A readable conversation history built from events.

:class:`ConversationHistory` listens to the event stream and keeps one
:class:`HistoryEntry` per finished message, function call or tool result, in the
order the provider finalised them. It only reads events, so every provider gets the
same history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import final

from voxengine.events import (
    Event,
    ItemDeleted,
    ItemDone,
    ItemKind,
    ItemTruncated,
    Role,
    ToolCall,
    TranscriptDone,
)

__all__ = ["ConversationHistory", "HistoryEntry"]

#: The event classes :meth:`ConversationHistory.observe` acts on (its ``match`` below).
_HISTORY_EVENTS: frozenset[type] = frozenset(
    {ItemDone, TranscriptDone, ToolCall, ItemTruncated, ItemDeleted}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One finished turn: ``text`` is the message text or transcript (may be empty)."""

    item_id: str
    role: Role
    text: str
    kind: ItemKind = ItemKind.MESSAGE
    call_id: str | None = None
    name: str | None = None
    truncated_at: float | None = None


@final
class ConversationHistory:
    """Ordered entries keyed by item id; feed it every event with :meth:`observe`."""

    # Slots: one of these per session (memory per idle session).
    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, HistoryEntry] = {}

    @property
    def entries(self) -> list[HistoryEntry]:
        """The conversation so far, oldest first."""
        return list(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()

    def restore(self, entries: Iterable[HistoryEntry]) -> None:
        """Put entries of an earlier session back (a resumed conversation), in order,
        before anything observed since; an entry already known keeps its newer value."""
        restored = {e.item_id: e for e in entries if e.item_id not in self._entries}
        restored.update(self._entries)
        self._entries = restored

    def observe(self, event: Event) -> None:
        """Update the history from one event; events it does not use are ignored."""
        if type(event) not in _HISTORY_EVENTS:  # deltas: one set lookup, not five checks
            return
        match event:
            case ItemDone(item=item):
                if item.kind is ItemKind.MESSAGE:
                    role = item.role or Role.ASSISTANT
                    old = self._entries.get(item.item_id)
                    text = item.text if item.text is not None else (old.text if old else "")
                    self._entries[item.item_id] = HistoryEntry(
                        item_id=item.item_id, role=role, text=text
                    )
                elif item.kind is ItemKind.FUNCTION_CALL:
                    self._entries[item.item_id] = HistoryEntry(
                        item_id=item.item_id,
                        role=Role.ASSISTANT,
                        text=item.arguments or "",
                        kind=item.kind,
                        call_id=item.call_id,
                        name=item.name,
                    )
                else:
                    self._entries[item.item_id] = HistoryEntry(
                        item_id=item.item_id,
                        role=Role.TOOL,
                        text=item.output or "",
                        kind=item.kind,
                        call_id=item.call_id,
                    )
            case TranscriptDone(item_id=item_id, role=role, transcript=transcript):
                old = self._entries.get(item_id)
                if old is None:
                    self._entries[item_id] = HistoryEntry(
                        item_id=item_id, role=role, text=transcript
                    )
                elif not old.text:
                    self._entries[item_id] = HistoryEntry(
                        item_id=item_id,
                        role=old.role,
                        text=transcript,
                        truncated_at=old.truncated_at,
                    )
            case ToolCall(item_id=item_id, call_id=call_id, name=name, arguments=arguments):
                if item_id and item_id not in self._entries:
                    self._entries[item_id] = HistoryEntry(
                        item_id=item_id,
                        role=Role.ASSISTANT,
                        text=arguments,
                        kind=ItemKind.FUNCTION_CALL,
                        call_id=call_id,
                        name=name,
                    )
            case ItemTruncated(item_id=item_id, audio_end=audio_end):
                old = self._entries.get(item_id)
                if old is not None:
                    self._entries[item_id] = replace(old, truncated_at=audio_end)
            case ItemDeleted(item_id=item_id):
                self._entries.pop(item_id, None)
            case _:
                pass
