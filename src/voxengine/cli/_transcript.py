"""Printing a conversation as lines of text: ``user: ...`` and ``assistant: ...``."""

from __future__ import annotations

from typing import IO, final

from voxengine.bus import EventBus
from voxengine.events import (
    Event,
    ItemDone,
    ItemKind,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStatus,
    Role,
    TextDelta,
    ToolCall,
    TranscriptDelta,
    TranscriptDone,
)

__all__ = ["TranscriptPrinter"]

_FOLLOWED = (
    ItemDone,
    TranscriptDone,
    TextDelta,
    TranscriptDelta,
    ResponseDone,
    ProviderErrorEvent,
    ToolCall,
)


@final
class TranscriptPrinter:
    """Writes user and assistant turns to ``out`` as events arrive.

    User lines come from finished user text messages and from input audio
    transcripts; the assistant's text (or audio transcript) is streamed as it
    arrives when ``stream`` is true, else printed whole when the response ends.
    Provider errors and unfinished responses are printed as ``[...]`` notes.

    Attributes:
        responses: how many responses ended; failed: how many did not complete.
    """

    def __init__(self, out: IO[str], *, stream: bool = True, show_user_text: bool = True) -> None:
        self._out = out
        self._stream = stream
        self._show_user_text = show_user_text
        self._assistant: list[str] = []
        self._open = False
        self.responses = 0
        self.failed = 0
        self.errors: list[str] = []
        self._user_items: set[str] = set()  # user items already printed: each turn once

    def attach(self, bus: EventBus) -> None:
        """Follow ``bus``'s events (as a low-priority handler)."""
        bus.on(
            _FOLLOWED,
            self.observe,
            priority=-50,
        )

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()

    def _line(self, text: str) -> None:
        self._end_assistant()
        self._write(text + "\n")

    def _end_assistant(self) -> None:
        if self._open:
            self._write("\n")
            self._open = False

    def observe(self, event: Event) -> None:
        """Print what ``event`` adds to the conversation."""
        match event:
            case ItemDone(item=item) if (
                self._show_user_text
                and item.kind is ItemKind.MESSAGE
                and item.role is Role.USER
                and item.text
                and item.item_id not in self._user_items
            ):
                self._user_items.add(item.item_id)
                self._line(f"user: {item.text}")
            case TranscriptDone(role=Role.USER, transcript=transcript, item_id=item_id) if (
                transcript and item_id not in self._user_items
            ):  # the transcript of an audio turn; its item (same text) is not printed again
                self._user_items.add(item_id)
                self._line(f"user (transcript): {transcript}")
            case TextDelta(delta=delta) | TranscriptDelta(role=Role.ASSISTANT, delta=delta):
                self._assistant.append(delta)
                if self._stream:
                    if not self._open:
                        self._write("assistant: ")
                        self._open = True
                    self._write(delta)
            case ToolCall(name=name, arguments=arguments):
                self._line(f"[tool call: {name}({arguments})]")
            case ProviderErrorEvent(code=code, message=message):
                self.errors.append(message)
                self._line(f"[provider error {code}: {message}]")
            case ResponseDone(status=status):
                self.responses += 1
                text = "".join(self._assistant)
                self._assistant.clear()
                if self._stream:
                    self._end_assistant()
                elif text:
                    self._line(f"assistant: {text}")
                if status is not ResponseStatus.COMPLETED:
                    self.failed += 1
                    self._line(f"[response {status.value}]")
            case _:
                pass
