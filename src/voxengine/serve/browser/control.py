"""The browser protocol's control messages, shared by both transports.

The WebSocket endpoint (:mod:`voxengine.serve.browser.ws`) and the WebRTC endpoint
(:mod:`voxengine.serve.browser.rtc_endpoint`, on its ``events`` data channel) carry
the same JSON messages from the page: ``played`` (``epoch``, ``seconds``), ``text``
(``text``), ``interrupt``, ``ping`` (``id``, answered by ``pong``) and ``bye``. This
module is the one place that gives them meaning, so the two endpoints depend on it and
not on each other (an import-linter contract keeps them apart).

Contract: :func:`handle_control` applies one parsed message to its call; a message
the protocol does not allow raises :class:`~voxengine.serve.errors.CallRefused`
(``MALFORMED`` for a bad field, ``PROTOCOL`` for an unknown type), which ends that
call only. Any other exception is a bug.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from voxengine.serve.call import Call
from voxengine.serve.errors import CallRefused, CloseReason

__all__ = ["MAX_TEXT_CHARS", "PROTOCOL_VERSION", "handle_control"]

PROTOCOL_VERSION: Final = 1
"""The browser protocol's version (the ``hello``'s and ``ready``'s ``protocol``)."""
MAX_TEXT_CHARS: Final = 4096
"""The longest ``text`` message, in characters."""


async def handle_control(call: Call, message: Mapping[str, Any]) -> None:
    """Apply one control message (a JSON object with a string ``"type"``) to ``call``.

    Raises:
        CallRefused: a field out of range (``MALFORMED``) or an unknown type
            (``PROTOCOL``).
    """
    kind = message["type"]
    if kind == "played":
        seconds, epoch = message.get("seconds"), message.get("epoch")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise CallRefused(CloseReason.MALFORMED, "played.seconds must be >= 0")
        if type(epoch) is not int:
            raise CallRefused(CloseReason.MALFORMED, "played.epoch must be an integer")
        call.report_played(float(seconds), epoch)
    elif kind == "text":
        text = message.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
            raise CallRefused(CloseReason.MALFORMED, f"text must be 1..{MAX_TEXT_CHARS} chars")
        await call.receive_text(text)
    elif kind == "interrupt":
        await call.interrupt()
    elif kind == "ping":
        call.send_event({"type": "pong", "id": message.get("id")})
    elif kind == "bye":
        await call.close(CloseReason.NORMAL, "hang-up")
    else:
        raise CallRefused(CloseReason.PROTOCOL, f"unknown message type {kind[:40]!r}")
