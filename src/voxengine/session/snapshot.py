"""What a conversation needs to continue on another connection, process or machine.

A :class:`ConversationSnapshot` is the conversation so far (the finished
:class:`~voxengine.session.history.HistoryEntry` items: messages, function calls and
their outputs) plus the provider's session resumption handle when it has one (Gemini
Live, §7 of the protocol notes). It is what a serving layer saves while a call lives
and gives back to :meth:`voxengine.VoiceEngine.connect` (``resume=``) on whichever
worker the caller reconnects to.

:func:`snapshot_to_json` / :func:`snapshot_from_json` turn it into plain JSON values
and back; decoding validates every field and raises
:class:`~voxengine.errors.ProtocolViolation` on anything malformed (a store is
input like any other). Audio is never part of a snapshot: user audio whose transcript
is unknown cannot be replayed, and the audio of a turn in progress is lost with the
process that held it (the serving layer reports it).

Pure: no I/O, no asyncio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, final

from voxengine.errors import ProtocolViolation
from voxengine.events import ItemKind, Role
from voxengine.session.history import HistoryEntry

__all__ = ["ConversationSnapshot", "RestoreResult", "snapshot_from_json", "snapshot_to_json"]

#: Version of the JSON shape written by :func:`snapshot_to_json`.
SNAPSHOT_VERSION = 1


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationSnapshot:
    """The conversation so far and how the provider may resume it.

    Attributes:
        history: finished items, oldest first.
        resumption_handle: the provider's latest resumption handle (Gemini), if any;
            not shown in the repr (it resumes a session).
    """

    history: tuple[HistoryEntry, ...] = ()
    resumption_handle: str | None = field(default=None, repr=False)

    @classmethod
    def of(
        cls, history: Sequence[HistoryEntry], resumption_handle: str | None = None
    ) -> ConversationSnapshot:
        """A snapshot of ``history`` (copied into a tuple)."""
        return cls(history=tuple(history), resumption_handle=resumption_handle)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreResult:
    """How a snapshot was put back on a new session.

    Attributes:
        restored_items: history entries re-created on the new session (0 when it
            resumed by handle: the service kept them itself).
        skipped_items: entries that could not be re-created (a user message whose
            transcript is unknown: its audio is not kept).
        resumed_by_handle: the provider resumed its own session with the handle.
        handle_refused: a handle was offered and refused (expired or unknown), so the
            history was replayed instead.
    """

    restored_items: int = 0
    skipped_items: int = 0
    resumed_by_handle: bool = False
    handle_refused: bool = False


def _entry_to_json(entry: HistoryEntry) -> dict[str, Any]:
    out: dict[str, Any] = {
        "item_id": entry.item_id,
        "role": entry.role.value,
        "kind": entry.kind.value,
        "text": entry.text,
    }
    if entry.call_id is not None:
        out["call_id"] = entry.call_id
    if entry.name is not None:
        out["name"] = entry.name
    if entry.truncated_at is not None:
        out["truncated_at"] = entry.truncated_at
    return out


def snapshot_to_json(snapshot: ConversationSnapshot) -> dict[str, Any]:
    """``snapshot`` as JSON-compatible values (dicts, lists, str, float, None)."""
    return {
        "version": SNAPSHOT_VERSION,
        "history": [_entry_to_json(e) for e in snapshot.history],
        "resumption_handle": snapshot.resumption_handle,
    }


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ProtocolViolation(f"snapshot field {key!r} must be a string")
    return value


def _optional_text(data: Mapping[str, Any], key: str) -> str | None:
    return None if data.get(key) is None else _text(data, key)


def _entry_from_json(data: object) -> HistoryEntry:
    if not isinstance(data, Mapping):
        raise ProtocolViolation("snapshot history entries must be objects")
    try:
        role = Role(data.get("role"))
        kind = ItemKind(data.get("kind"))
    except ValueError as exc:
        raise ProtocolViolation(f"snapshot entry has an unknown role or kind: {exc}") from exc
    truncated = data.get("truncated_at")
    if truncated is not None and (
        isinstance(truncated, bool) or not isinstance(truncated, int | float)
    ):
        raise ProtocolViolation("snapshot field 'truncated_at' must be a number")
    return HistoryEntry(
        item_id=_text(data, "item_id"),
        role=role,
        kind=kind,
        text=_text(data, "text"),
        call_id=_optional_text(data, "call_id"),
        name=_optional_text(data, "name"),
        truncated_at=float(truncated) if truncated is not None else None,
    )


def snapshot_from_json(data: object) -> ConversationSnapshot:
    """The snapshot :func:`snapshot_to_json` wrote.

    Raises:
        ProtocolViolation: ``data`` is not a snapshot of a known version.
    """
    if not isinstance(data, Mapping):
        raise ProtocolViolation("a snapshot must be an object")
    if data.get("version") != SNAPSHOT_VERSION:
        raise ProtocolViolation(f"unknown snapshot version {data.get('version')!r}")
    history = data.get("history")
    if not isinstance(history, list):
        raise ProtocolViolation("snapshot field 'history' must be a list")
    return ConversationSnapshot(
        history=tuple(_entry_from_json(e) for e in history),
        resumption_handle=_optional_text(data, "resumption_handle"),
    )
