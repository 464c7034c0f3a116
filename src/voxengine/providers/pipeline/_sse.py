"""Server-sent events (the ``text/event-stream`` format both LLM APIs stream in).

:class:`SSEDecoder` follows the WHATWG HTML "event stream interpretation" rules for
the fields these APIs use: ``event``, ``data`` (several lines joined with ``\\n``),
``id``; comment lines (``:``) and unknown fields are ignored; a blank line dispatches.
Pure and sync: feed it the lines of the body without their line endings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

__all__ = ["SSEDecoder", "ServerSentEvent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSentEvent:
    """One dispatched event; ``event`` is ``"message"`` when the stream named none."""

    event: str
    data: str
    id: str | None = None


@final
class SSEDecoder:
    """Incremental event-stream decoder."""

    __slots__ = ("_data", "_event", "_id")

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        """Process one line; returns the event a blank line completes, else None."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def close(self) -> ServerSentEvent | None:
        """End of stream. Per the spec an event without its blank line is discarded."""
        self._event, self._data = "", []
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            self._event = ""
            return None
        event = ServerSentEvent(
            event=self._event or "message", data="\n".join(self._data), id=self._id
        )
        self._event, self._data = "", []
        return event
