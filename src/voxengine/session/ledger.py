"""The input ledger of a :class:`~voxengine.session.link.SessionLink`: what the
application sent, kept until the service has it.

Three kinds of input are kept:

* **queued** commands, issued while the link was reconnecting (in order; queued user
  audio is bounded by ``ReconnectPolicy.audio_buffer``, the oldest dropped first);
* **retained** audio: user audio of the turn in progress, delivered but not committed
  (bounded the same way; re-sent after a reconnect, since the new connection's input
  buffer is empty);
* **unconfirmed** texts and tool outputs: delivered, but the service has not confirmed
  them with an item of its own yet (only for services that confirm, such as OpenAI's
  ``conversation.item.added``). A drop puts them back in front of the queue.

Whatever is still in the ledger when the session ends is reported as an
:class:`~voxengine.events.UndeliveredInput` event, never dropped silently. Pure
bookkeeping: no I/O, no awaiting.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from typing import final

from voxengine.audio.format import AudioFormat
from voxengine.commands import (
    ClearAudio,
    Command,
    CommitAudio,
    SendAudio,
    SendText,
    SendToolResult,
)
from voxengine.events import ItemAdded, ItemDone, ItemKind, UndeliveredInput

__all__ = ["InputLedger"]

logger = logging.getLogger("voxengine.providers")

#: Input the service confirms with an item of its own.
UserInput = SendText | SendToolResult


def _confirms(event: ItemAdded | ItemDone, command: UserInput) -> bool:
    """Whether the service's ``event`` is the item ``command`` created."""
    item = event.item
    if isinstance(command, SendToolResult):
        return item.kind is ItemKind.FUNCTION_CALL_OUTPUT and item.call_id == command.call_id
    if item.kind is not ItemKind.MESSAGE:
        return False
    if command.item_id is not None:
        return item.item_id == command.item_id
    return item.role is command.role and item.text == command.text


def _report(commands: Iterable[Command], audio: float, reason: str) -> UndeliveredInput | None:
    commands = list(commands)
    texts = tuple(c.text for c in commands if isinstance(c, SendText))
    outputs = tuple(c.call_id for c in commands if isinstance(c, SendToolResult))
    other = sum(1 for c in commands if not isinstance(c, SendText | SendToolResult | SendAudio))
    if not (texts or outputs or audio or other):
        return None
    return UndeliveredInput(
        texts=texts, tool_outputs=outputs, audio_seconds=audio, other_commands=other, reason=reason
    )


@final
class InputLedger:
    """See the module docstring.

    Args:
        input_format: the format of user audio (for the durations).
        audio_buffer: seconds of queued, and of retained, user audio kept at most.
        acknowledged: whether the service confirms texts and tool outputs.
    """

    # Slots: one of these per session (memory per idle session).
    __slots__ = (
        "_acknowledged",
        "_audio_buffer",
        "_format",
        "_queued_audio",
        "_refused",
        "_retained",
        "_retained_bytes",
        "_retained_limit",
        "_trim_at",
        "queued",
        "unconfirmed",
    )

    def __init__(self, input_format: AudioFormat, audio_buffer: float, acknowledged: bool) -> None:
        self._format = input_format
        self._audio_buffer = audio_buffer
        # whole bytes: the per-chunk comparison stays int to int
        self._retained_limit = int(audio_buffer * input_format.bytes_per_second)
        # Retained audio is trimmed to the bound when read, and in between once it is
        # over by a second (one trim per 50 chunks of 20 ms, not one per chunk; a bound
        # under a second: over by the bound): what is read is the same, the memory held
        # at most that much more.
        slack = min(input_format.bytes_per_second, self._retained_limit)
        self._trim_at = self._retained_limit + slack
        self._acknowledged = acknowledged
        # lists, not deques: usually empty, and an empty deque takes 760 bytes a session
        self.queued: list[Command] = []
        self._queued_audio = 0.0  # seconds of SendAudio in ``queued``
        # a deque (trimmed from the front per chunk once full), made on the first audio
        self._retained: deque[bytes] | None = None
        self._retained_bytes = 0
        self.unconfirmed: list[UserInput] = []
        self._refused: list[Command] | None = None  # made by the first refusal

    def seconds(self, audio: bytes) -> float:
        """Duration of ``audio`` in the input format."""
        return self._format.duration(len(audio))

    # -- delivered ------------------------------------------------------------------

    def delivered(self, command: Command) -> None:
        """Note ``command`` as written to the current connection."""
        if isinstance(command, SendAudio):
            self.delivered_audio(command.audio)
        elif isinstance(command, CommitAudio | ClearAudio):
            self.clear_retained()
        elif self._acknowledged and isinstance(command, SendText | SendToolResult):
            self.unconfirmed.append(command)

    def delivered_audio(self, audio: bytes) -> None:
        """Note user audio (``SendAudio(audio=audio)``) as written: kept for a re-send
        until the turn is committed, within the buffer bound."""
        # per outgoing chunk: counted in bytes, converted to seconds only when read
        retained = self._retained
        if retained is None:
            retained = self._retained = deque()
        retained.append(audio)
        self._retained_bytes += len(audio)
        if self._retained_bytes > self._trim_at:
            self._trim()

    def _trim(self) -> None:
        """Drop the oldest retained chunks until what is left fits the bound: the
        longest run of the latest chunks within it (as trimming after every chunk)."""
        retained = self._retained
        if retained is None:
            return
        size, limit = self._retained_bytes, self._retained_limit
        while size > limit and retained:
            size -= len(retained.popleft())  # delivered already: trimming loses nothing
        self._retained_bytes = size

    def clear_retained(self) -> None:
        """The turn's audio was committed or cleared: nothing to re-send."""
        self._retained = None
        self._retained_bytes = 0

    def retained_audio(self) -> bytes:
        """The audio of the turn in progress, to re-send on a new connection."""
        self._trim()
        return b"".join(self._retained or ())

    def confirm(self, event: ItemAdded | ItemDone) -> None:
        """The service created an item: the input that made it is confirmed."""
        for index, command in enumerate(self.unconfirmed):
            if _confirms(event, command):
                del self.unconfirmed[index]
                return

    # -- queued ---------------------------------------------------------------------

    def queue(self, command: Command) -> float:
        """Queue ``command`` for the next connection; returns the seconds of older
        queued audio dropped to stay within the buffer (to be reported)."""
        self.queued.append(command)
        if not isinstance(command, SendAudio):
            return 0.0
        self._queued_audio += self.seconds(command.audio)
        dropped = 0.0
        while self._queued_audio > self._audio_buffer:
            for index, queued in enumerate(self.queued):
                if isinstance(queued, SendAudio):
                    del self.queued[index]
                    seconds = self.seconds(queued.audio)
                    self._queued_audio -= seconds
                    dropped += seconds
                    break
            else:  # pragma: no cover - the loop condition means audio is queued
                break
        return dropped

    def requeue_unconfirmed(self) -> int:
        """The connection was lost: put what it never confirmed back in front of the
        queue; returns how many inputs that was."""
        count = len(self.unconfirmed)
        self.queued[:0] = self.unconfirmed
        self.unconfirmed.clear()
        return count

    def take(self) -> Command | None:
        """The next queued command (``None`` when the queue is empty)."""
        if not self.queued:
            return None
        command = self.queued.pop(0)
        if isinstance(command, SendAudio):
            self._queued_audio -= self.seconds(command.audio)
        return command

    def put_back(self, commands: list[Command]) -> None:
        """Return ``commands`` (taken in this order) to the front of the queue."""
        for command in reversed(commands):
            self.queued.insert(0, command)
            if isinstance(command, SendAudio):
                self._queued_audio += self.seconds(command.audio)

    def refuse(self, command: Command) -> None:
        """A new connection cannot express ``command``: it is reported, not retried."""
        if self._refused is None:
            self._refused = []
        self._refused.append(command)

    def forget_refusals(self) -> None:
        """The connection that refused failed: the next one tries them again."""
        self._refused = None

    def refused_report(self) -> UndeliveredInput | None:
        """The commands refused since the last call, as one report."""
        refused, self._refused = self._refused, None
        return _report(refused or (), 0.0, "refused by the new connection")

    # -- the end ----------------------------------------------------------------------

    def undelivered(self, reason: str, *, closing: bool) -> UndeliveredInput | None:
        """Empty the ledger; the report of what it still held (``None``: nothing).

        ``closing``: the application closed the session, so what was delivered and not
        yet confirmed may well have been processed: only the queue is reported.
        """
        commands: list[Command] = list(self.queued)
        audio = self._queued_audio
        if not closing:  # given up or failed: the turn and unconfirmed input are lost
            commands = [*self.unconfirmed, *commands]
            self._trim()
            audio += self._format.duration(self._retained_bytes)
        self.queued.clear()
        self._queued_audio = 0.0
        self.unconfirmed.clear()
        self.clear_retained()
        report = _report(commands, audio, reason)
        if report is not None:
            logger.warning(
                "undelivered input: %d text(s), %d tool output(s), %.2f s of audio, "
                "%d other command(s) (%s)",
                len(report.texts),
                len(report.tool_outputs),
                report.audio_seconds,
                report.other_commands,
                reason,
            )
        return report
