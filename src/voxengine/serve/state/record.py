"""One call's resumable state: :class:`CallRecord`, and its JSON form.

A record holds what another worker needs to continue the call: the call's settings
(the provider name, voice, instructions: whatever the serving layer chose, as plain
JSON values), the conversation so far with the provider's resumption handle
(:class:`~voxengine.session.snapshot.ConversationSnapshot`), what was in progress
when it was written (:class:`InProgress`: a worker that dies takes that turn's audio
with it, and the next one reports it to the caller), and the resume token generation
(a token is good for one resume).

Secrets never enter a record: :func:`check_settings` refuses setting names that hold
credentials, and :func:`encode_record` masks every value this process knows to be a
secret (:func:`voxengine.redaction.redact`) before the bytes leave it. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final

from voxengine.errors import ConfigError, ProtocolViolation
from voxengine.redaction import redact
from voxengine.session.snapshot import (
    ConversationSnapshot,
    snapshot_from_json,
    snapshot_to_json,
)

__all__ = ["CallRecord", "InProgress", "check_settings", "decode_record", "encode_record"]

#: Version of the JSON written by :func:`encode_record`.
RECORD_VERSION = 1

#: Setting names that would hold a credential; a record refuses them.
_SECRET_NAME = re.compile(r"key|secret|token|password|authori[sz]ation|credential", re.I)

Scalar = str | int | float | bool | None


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class InProgress:
    """What was happening when the record was written.

    Attributes:
        user_speaking: the caller was in the middle of a turn (its audio is held only
            by the worker that received it).
        assistant_responding: a reply was being generated or played.
    """

    user_speaking: bool = False
    assistant_responding: bool = False


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    """See the module docstring. ``generation`` counts the resumes so far."""

    call_id: str
    settings: Mapping[str, Scalar] = field(default_factory=dict)
    snapshot: ConversationSnapshot = field(default_factory=ConversationSnapshot)
    in_progress: InProgress = field(default_factory=InProgress)
    generation: int = 0
    updated_at: float = 0.0

    def __post_init__(self) -> None:
        check_settings(self.settings)


def check_settings(settings: Mapping[str, object]) -> None:
    """Refuse settings that are not plain scalars or whose name says credential.

    Raises:
        ConfigError: names the offending setting (never its value).
    """
    for name, value in settings.items():
        if not isinstance(name, str) or _SECRET_NAME.search(name):
            raise ConfigError(f"call setting {name!r} looks like a credential: not stored")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ConfigError(f"call setting {name!r} must be a string, number or boolean")


def encode_record(record: CallRecord) -> bytes:
    """``record`` as UTF-8 JSON, with every known secret value masked."""
    data = {
        "version": RECORD_VERSION,
        "call_id": record.call_id,
        "settings": dict(record.settings),
        "snapshot": snapshot_to_json(record.snapshot),
        "in_progress": {
            "user_speaking": record.in_progress.user_speaking,
            "assistant_responding": record.in_progress.assistant_responding,
        },
        "generation": record.generation,
        "updated_at": record.updated_at,
    }
    return redact(json.dumps(data, separators=(",", ":"))).encode()


def _get(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) is not (kind is bool):
        raise ProtocolViolation(f"call record field {key!r} is missing or malformed")
    return value


def decode_record(raw: bytes | str) -> CallRecord:
    """The record :func:`encode_record` wrote.

    Raises:
        ProtocolViolation: not a record of a known version.
    """
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolViolation(f"call record is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
        raise ProtocolViolation("not a call record of a known version")
    progress = _get(data, "in_progress", dict)
    try:
        return CallRecord(
            call_id=_get(data, "call_id", str),
            settings=_get(data, "settings", dict),
            snapshot=snapshot_from_json(data.get("snapshot")),
            in_progress=InProgress(
                user_speaking=_get(progress, "user_speaking", bool),
                assistant_responding=_get(progress, "assistant_responding", bool),
            ),
            generation=_get(data, "generation", int),
            updated_at=float(_get(data, "updated_at", (int, float))),
        )
    except ConfigError as exc:
        raise ProtocolViolation(f"call record holds bad settings: {exc}") from exc
