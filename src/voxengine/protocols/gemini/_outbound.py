"""What each command becomes on a Gemini Live connection (gemini-live.md §3).

:class:`Outbound` turns checked commands into client frames (the *Command mapping* of
:mod:`.protocol`'s docstring): it holds ``clientContent`` turns until the frames are
collected, so a text and the reply request after it go out as ONE turn (§3.2, §12.2),
defers a reply request while the model is answering under ``ReplyPolicy.QUEUE``,
brackets manual turns with ``activityStart``/``activityEnd``, and echoes the messages
the client adds (Gemini never does). Sans-I/O: it only queues frames and events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, final

from voxengine import _json
from voxengine.commands import (
    ClearAudio,
    Command,
    CommitAudio,
    CreateResponse,
    DeleteItem,
    RestoreItem,
    SendAudio,
    SendAudioMessage,
    SendText,
    SendToolResult,
    TruncateItem,
    UpdateSession,
)
from voxengine.config import Modality, ReplyPolicy
from voxengine.errors import ConfigError
from voxengine.events import ConversationItem, Event, ItemAdded, ItemDone, ItemKind, Role
from voxengine.protocols.gemini import _wire
from voxengine.protocols.gemini._turns import ModelTurn

__all__ = ["Outbound"]

logger = logging.getLogger("voxengine.protocols.gemini")


@final
class Outbound:
    """The client side of one connection (see the module docstring).

    Args:
        first: the frame that opens the connection (``setup``), already encoded.
        ids: prefix of the synthetic ids of echoed messages.
        manual: the client ends user turns (``activityStart``/``activityEnd``).
        modality: what the session answers with (fixed per connection).
        reply_policy: QUEUE defers reply requests while the model answers.
        call_names: call id -> function name, shared with the inbound side.
        turn: the model turn in progress (a client turn interrupts it, §3.2).
        emit: where echoed messages go.
    """

    def __init__(
        self,
        first: str,
        *,
        ids: str,
        manual: bool,
        modality: Modality,
        reply_policy: ReplyPolicy,
        call_names: dict[str, str],
        turn: ModelTurn,
        emit: Callable[[Event], None],
    ) -> None:
        self._outgoing: list[str | bytes] = [first]
        self._ids = ids
        self._manual = manual
        self._modality = modality
        self._reply_policy = reply_policy
        self._call_names = call_names
        self._turn = turn
        self._emit = emit
        self._held: list[dict[str, Any]] = []
        #: Turns of a reply request deferred until the streaming model turn completes.
        self._deferred: list[dict[str, Any]] | None = None
        self._echoed = 0
        self._activity_open = False
        #: Something asked the model to answer since its last turn began (§3.3, §6).
        self.answer_requested = False

    def take(self, *, release_held: bool) -> list[str | bytes]:
        """The frames queued so far (held turns first released if ``release_held``)."""
        if release_held:
            self.release_held(turn_complete=False)
        out, self._outgoing = self._outgoing, []
        return out

    def release_deferred(self) -> None:
        """The model turn completed: send a deferred reply request now."""
        if self._deferred is not None:
            turns, self._deferred = self._deferred, None
            self.release_held(turn_complete=False)
            self._queue(_wire.client_content(turns, turn_complete=True))
            self.answer_requested = True

    def close(self) -> bool:
        """Drop held and deferred turns; True if a reply request was lost."""
        self._held.clear()
        lost = self._deferred is not None
        self._deferred = None
        return lost

    def check(self, command: Command) -> None:
        """Raise :class:`ConfigError` if Gemini Live cannot carry ``command``."""
        match command:
            case ClearAudio():
                raise ConfigError("Gemini Live has no input buffer to clear (§3.3)")
            case TruncateItem():
                raise ConfigError("Gemini Live has no truncate message (§5)")
            case DeleteItem():
                raise ConfigError("Gemini Live cannot delete conversation items")
            case UpdateSession():
                raise ConfigError(
                    "Gemini Live fixes the configuration per connection (§3.1); reconnect instead"
                )
            case SendText(role=Role.TOOL):
                raise ConfigError("tool output is sent with SendToolResult")
            case CreateResponse(instructions=instructions, modalities=modalities):
                if instructions is not None:
                    raise ConfigError("Gemini Live has no per-response instructions")
                if modalities is not None and self._modality not in modalities:
                    raise ConfigError(
                        f"this session answers with {self._modality.name}; Gemini Live "
                        "cannot change the modality per response"
                    )
            case SendToolResult(call_id=call_id):
                if call_id not in self._call_names:
                    raise ConfigError(f"unknown function call id {call_id!r}")
            case _:
                pass

    def _queue(self, msg: Mapping[str, Any]) -> None:
        self._outgoing.append(_json.dumps(msg))

    def release_held(self, *, turn_complete: bool) -> None:
        """Send the held turns as one ``clientContent`` (also with none, when
        ``turn_complete`` asks the model to answer)."""
        if self._held or turn_complete:
            self._queue(_wire.client_content(self._held, turn_complete=turn_complete))
            self._held = []

    def send(self, command: Command) -> None:
        """Queue what ``command`` (checked) becomes on the wire."""
        if not isinstance(command, SendText | SendAudioMessage | RestoreItem | CreateResponse):
            self.release_held(turn_complete=False)
        match command:
            case SendAudio(audio=audio):
                if self._manual and not self._activity_open:
                    if self._turn.response_id is not None:
                        self._turn.client_interrupted = True
                    self._queue(_wire.activity_start())
                    self._activity_open = True
                self._queue(_wire.realtime_audio(audio))
            case CommitAudio():
                if not self._manual:
                    self._queue(_wire.audio_stream_end())
                    self.answer_requested = True
                elif self._activity_open:
                    self._queue(_wire.activity_end())
                    self._activity_open = False
                    self.answer_requested = True
                else:
                    logger.debug("commit with no audio since the last commit: nothing to end")
            case SendText(text=text, role=role, item_id=item_id):
                self._held.append(_wire.text_turn(text, role))
                self._echo(text, role, item_id)
            case SendAudioMessage(audio=audio):
                self._held.append(_wire.audio_turn(audio))
            case RestoreItem(item=item):
                self._held.append(self._restored_turn(item))
            case SendToolResult(call_id=call_id, output=output):
                name = self._call_names.get(call_id, "")
                self._queue(_wire.tool_response([_wire.function_response(call_id, name, output)]))
                self.answer_requested = True
            case CreateResponse() if self._defers_reply():
                # §3.2: sending now would interrupt the streaming turn; wait for its end
                self._deferred = [*(self._deferred or []), *self._held]
                self._held = []
            case CreateResponse():
                if self._held or not self.answer_requested:
                    if self._turn.response_id is not None:
                        self._turn.client_interrupted = True  # §3.2: clientContent interrupts
                    self.release_held(turn_complete=True)
                    self.answer_requested = True
            case _:  # rejected by check()
                raise AssertionError(f"unexpected command {command!r}")

    def _defers_reply(self) -> bool:
        """QUEUE: a reply request that would send a turn while the model is answering
        (a turn streaming, or asked for and not complete) waits for ``turnComplete``."""
        if self._reply_policy is not ReplyPolicy.QUEUE:
            return False
        if self._deferred is not None:
            return True  # keep the order of requests
        would_send = bool(self._held) or not self.answer_requested
        return would_send and (self._turn.response_id is not None or self.answer_requested)

    def _echo(self, text: str, role: Role, item_id: str | None) -> None:
        """Report a message we added: Gemini never echoes client turns, and the
        conversation history (and a reconnect without a resumption handle) needs them."""
        self._echoed += 1
        item = ConversationItem(
            item_id=item_id or f"{self._ids}-client-{self._echoed}",
            kind=ItemKind.MESSAGE,
            role=role,
            status="completed",
            text=text,
        )
        self._emit(ItemAdded(item=item))
        self._emit(ItemDone(item=item))

    def _restored_turn(self, item: ConversationItem) -> dict[str, Any]:
        call_id = item.call_id or ""
        if item.kind is ItemKind.FUNCTION_CALL:
            self._call_names[call_id] = item.name or ""
        return _wire.restored_turn(item, item.name or self._call_names.get(call_id, ""))
