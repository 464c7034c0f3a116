"""How a saved conversation is put back on a new connection, as commands.

:func:`restore_commands` turns a :class:`~voxengine.session.history.ConversationHistory`'s
entries into :class:`~voxengine.commands.RestoreItem` commands (what
:meth:`BaseProvider.restore` and the realtime providers send after reconnecting);
:func:`as_note` and :func:`note_role` render an item as a plain message for a provider
that can only add messages.
"""

from __future__ import annotations

from collections.abc import Sequence

from voxengine.commands import RestoreItem
from voxengine.events import ConversationItem, ItemKind, Role
from voxengine.session.history import HistoryEntry

__all__ = ["as_note", "note_role", "restore_commands"]


def restore_commands(history: Sequence[HistoryEntry]) -> tuple[list[RestoreItem], int]:
    """The :class:`RestoreItem` commands that re-create ``history``, and how many
    entries cannot be (user audio whose transcript is unknown)."""
    plan: list[RestoreItem] = []
    skipped = 0
    for entry in history:
        if entry.kind is ItemKind.MESSAGE and not entry.text:
            skipped += 1
            continue
        plan.append(
            RestoreItem(
                item=ConversationItem(
                    item_id=entry.item_id,
                    kind=entry.kind,
                    role=entry.role if entry.kind is ItemKind.MESSAGE else None,
                    text=entry.text if entry.kind is ItemKind.MESSAGE else None,
                    call_id=entry.call_id,
                    name=entry.name,
                    arguments=entry.text if entry.kind is ItemKind.FUNCTION_CALL else None,
                    output=entry.text if entry.kind is ItemKind.FUNCTION_CALL_OUTPUT else None,
                )
            )
        )
    return plan, skipped


def as_note(item: ConversationItem) -> str:
    """``item`` as the text of a message (tool calls and outputs as short notes)."""
    if item.kind is ItemKind.FUNCTION_CALL:
        return f"(earlier, tool {item.name} was called with {item.arguments})"
    if item.kind is ItemKind.FUNCTION_CALL_OUTPUT:
        return f"(tool call {item.call_id} returned {item.output})"
    return item.text or ""


def note_role(item: ConversationItem) -> Role:
    """The role a note for ``item`` is added with (a message keeps its own)."""
    return item.role or Role.SYSTEM if item.kind is ItemKind.MESSAGE else Role.SYSTEM
