"""OpenAI Realtime server events to voxengine events (openai-realtime.md §6-§8, §12).

Decoding is lenient, as the notes require: unknown fields are ignored, GA and beta
event names are both accepted, and a message of unknown ``type`` becomes an
:class:`~voxengine.events.UnknownEvent`. Handshake and error events are handled by
the protocol state machine, not here.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping
from typing import Any

from voxengine.audio.b64 import b64decode_strict
from voxengine.events import (
    AudioDone,
    ConversationItem,
    Event,
    InputCleared,
    InputCommitted,
    InputTimeout,
    ItemAdded,
    ItemDeleted,
    ItemDone,
    ItemKind,
    ItemTruncated,
    ProviderErrorEvent,
    RateLimit,
    RateLimitsUpdated,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallDelta,
    TranscriptDelta,
    TranscriptDone,
    TranscriptFailed,
    TranscriptSegment,
    Usage,
    _quick_audio_delta,
)

__all__ = ["DECODERS", "decode_audio_delta", "parse_item", "parse_usage"]

Json = Mapping[str, Any]

_a2b = b64decode_strict  # strict base64 (pybase64 when installed): binascii.Error


def _str(msg: Json, key: str) -> str:
    value = msg.get(key)
    return value if isinstance(value, str) else ""


def _opt_str(msg: Json, key: str) -> str | None:
    value = msg.get(key)
    return value if isinstance(value, str) else None


def _int(msg: Json, key: str) -> int:
    value = msg.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _map(msg: Json, key: str) -> Json:
    value = msg.get(key)
    return value if isinstance(value, Mapping) else {}


def _role(value: object) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        return None


def parse_item(item: Json) -> ConversationItem:
    """A wire item (§7) as a :class:`ConversationItem`; unknown kinds read as messages."""
    kind_text = _str(item, "type")
    kind = {
        "function_call": ItemKind.FUNCTION_CALL,
        "function_call_output": ItemKind.FUNCTION_CALL_OUTPUT,
    }.get(kind_text, ItemKind.MESSAGE)
    text: str | None = None
    content = item.get("content")
    if isinstance(content, list):
        pieces = []
        for part in content:
            if isinstance(part, Mapping):
                piece = part.get("text")
                if not isinstance(piece, str):
                    piece = part.get("transcript")
                if isinstance(piece, str):
                    pieces.append(piece)
        text = "".join(pieces) if pieces else None
    return ConversationItem(
        item_id=_str(item, "id"),
        kind=kind,
        role=_role(item.get("role")) if kind is ItemKind.MESSAGE else None,
        status=_opt_str(item, "status"),
        text=text,
        call_id=_opt_str(item, "call_id"),
        name=_opt_str(item, "name"),
        arguments=_opt_str(item, "arguments"),
        output=_opt_str(item, "output"),
    )


def parse_usage(usage: object) -> Usage | None:
    """``response.usage`` (§8.3) as :class:`Usage`; ``None`` when absent."""
    if not isinstance(usage, Mapping):
        return None
    details_in = _map(usage, "input_token_details")
    details_out = _map(usage, "output_token_details")
    cached = _map(details_in, "cached_tokens_details")
    return Usage(
        input_tokens=_int(usage, "input_tokens"),
        output_tokens=_int(usage, "output_tokens"),
        total_tokens=_int(usage, "total_tokens"),
        input_text_tokens=_int(details_in, "text_tokens"),
        input_audio_tokens=_int(details_in, "audio_tokens"),
        input_cached_tokens=_int(details_in, "cached_tokens"),
        input_cached_text_tokens=_int(cached, "text_tokens"),
        input_cached_audio_tokens=_int(cached, "audio_tokens"),
        output_text_tokens=_int(details_out, "text_tokens"),
        output_audio_tokens=_int(details_out, "audio_tokens"),
    )


def _ms(msg: Json, key: str) -> float:
    return _int(msg, key) / 1000.0


def _speech_started(msg: Json) -> list[Event]:
    return [SpeechStarted(item_id=_opt_str(msg, "item_id"), audio_start=_ms(msg, "audio_start_ms"))]


def _speech_stopped(msg: Json) -> list[Event]:
    return [SpeechStopped(item_id=_opt_str(msg, "item_id"), audio_end=_ms(msg, "audio_end_ms"))]


def _committed(msg: Json) -> list[Event]:
    return [
        InputCommitted(
            item_id=_str(msg, "item_id"), previous_item_id=_opt_str(msg, "previous_item_id")
        )
    ]


def _timeout(msg: Json) -> list[Event]:
    return [
        InputTimeout(
            item_id=_str(msg, "item_id"),
            audio_start=_ms(msg, "audio_start_ms"),
            audio_end=_ms(msg, "audio_end_ms"),
        )
    ]


def _segment(msg: Json) -> list[Event]:
    def seconds(key: str) -> float:
        value = msg.get(key)
        return float(value) if isinstance(value, int | float) else 0.0

    return [
        TranscriptSegment(
            item_id=_str(msg, "item_id"),
            segment_id=_str(msg, "id"),
            text=_str(msg, "text"),
            speaker=_str(msg, "speaker"),
            start=seconds("start"),
            end=seconds("end"),
        )
    ]


def _cleared(msg: Json) -> list[Event]:
    return [InputCleared()]


def _item_added(msg: Json) -> list[Event]:
    return [
        ItemAdded(
            item=parse_item(_map(msg, "item")), previous_item_id=_opt_str(msg, "previous_item_id")
        )
    ]


def _item_done(msg: Json) -> list[Event]:
    return [
        ItemDone(
            item=parse_item(_map(msg, "item")), previous_item_id=_opt_str(msg, "previous_item_id")
        )
    ]


def _item_created_beta(msg: Json) -> list[Event]:
    # §12: beta has one `conversation.item.created` where GA has added + done.
    item = parse_item(_map(msg, "item"))
    previous = _opt_str(msg, "previous_item_id")
    events: list[Event] = [ItemAdded(item=item, previous_item_id=previous)]
    if item.status != "in_progress":
        events.append(ItemDone(item=item, previous_item_id=previous))
    return events


def _item_truncated(msg: Json) -> list[Event]:
    return [ItemTruncated(item_id=_str(msg, "item_id"), audio_end=_ms(msg, "audio_end_ms"))]


def _item_deleted(msg: Json) -> list[Event]:
    return [ItemDeleted(item_id=_str(msg, "item_id"))]


def _input_transcript_delta(msg: Json) -> list[Event]:
    return [TranscriptDelta(role=Role.USER, item_id=_str(msg, "item_id"), delta=_str(msg, "delta"))]


def _input_transcript_done(msg: Json) -> list[Event]:
    return [
        TranscriptDone(
            role=Role.USER, item_id=_str(msg, "item_id"), transcript=_str(msg, "transcript")
        )
    ]


def _input_transcript_failed(msg: Json) -> list[Event]:
    error = _map(msg, "error")
    return [
        TranscriptFailed(
            item_id=_str(msg, "item_id"), message=_str(error, "message") or "transcription failed"
        )
    ]


def _response_created(msg: Json) -> list[Event]:
    return [ResponseStarted(response_id=_str(_map(msg, "response"), "id"))]


def _response_done(msg: Json) -> list[Event]:
    response = _map(msg, "response")
    try:
        status = ResponseStatus(response.get("status"))
    except ValueError:
        status = ResponseStatus.FAILED
    details = _map(response, "status_details")
    reason = _opt_str(details, "reason")
    if reason is None and status is ResponseStatus.FAILED:
        reason = _opt_str(_map(details, "error"), "code")
    output = response.get("output")
    items = tuple(
        parse_item(it)
        for it in (output if isinstance(output, list) else [])
        if isinstance(it, Mapping)
    )
    return [
        ResponseDone(
            response_id=_str(response, "id"),
            status=status,
            reason=reason,
            usage=parse_usage(response.get("usage")),
            output=items,
        )
    ]


def _text_delta(msg: Json) -> list[Event]:
    return [
        TextDelta(
            response_id=_str(msg, "response_id"),
            item_id=_str(msg, "item_id"),
            delta=_str(msg, "delta"),
        )
    ]


def _text_done(msg: Json) -> list[Event]:
    return [
        TextDone(
            response_id=_str(msg, "response_id"),
            item_id=_str(msg, "item_id"),
            text=_str(msg, "text"),
        )
    ]


def decode_audio_delta(msg: Json) -> Event:
    """``response.output_audio.delta`` (beta: ``response.audio.delta``) as its one event.

    The hottest decoder (one call per 20 ms of audio), field lookups inlined: an
    :class:`~voxengine.events.AudioDelta`, or a ``malformed_audio``
    :class:`~voxengine.events.ProviderErrorEvent` when ``delta`` is not strict base64
    of whole PCM16 samples.
    """
    delta = msg.get("delta")
    try:
        # b64decode_pcm16, inlined: strict base64 of whole PCM16 samples
        audio = _a2b(delta if isinstance(delta, str) else "")
    except (binascii.Error, ValueError):
        audio = None
    if audio is None or len(audio) & 1:
        return ProviderErrorEvent(
            code="malformed_audio",
            message="server sent an audio delta that is not base64 PCM16; dropped",
            error_type="protocol_violation",
        )
    response_id, item_id = msg.get("response_id"), msg.get("item_id")
    return _quick_audio_delta(
        response_id if isinstance(response_id, str) else "",
        item_id if isinstance(item_id, str) else "",
        audio,
    )


def _audio_delta(msg: Json) -> list[Event]:
    return [decode_audio_delta(msg)]


def _audio_done(msg: Json) -> list[Event]:
    return [AudioDone(response_id=_str(msg, "response_id"), item_id=_str(msg, "item_id"))]


def _transcript_delta(msg: Json) -> list[Event]:
    return [
        TranscriptDelta(
            role=Role.ASSISTANT,
            item_id=_str(msg, "item_id"),
            delta=_str(msg, "delta"),
            response_id=_str(msg, "response_id"),
        )
    ]


def _transcript_done(msg: Json) -> list[Event]:
    return [
        TranscriptDone(
            role=Role.ASSISTANT,
            item_id=_str(msg, "item_id"),
            transcript=_str(msg, "transcript"),
            response_id=_str(msg, "response_id"),
        )
    ]


def _args_delta(msg: Json) -> list[Event]:
    return [
        ToolCallDelta(
            call_id=_str(msg, "call_id"),
            item_id=_str(msg, "item_id"),
            response_id=_str(msg, "response_id"),
            delta=_str(msg, "delta"),
        )
    ]


def _args_done(msg: Json) -> list[Event]:
    return [
        ToolCall(
            call_id=_str(msg, "call_id"),
            name=_str(msg, "name"),
            arguments=_str(msg, "arguments"),
            item_id=_str(msg, "item_id"),
            response_id=_str(msg, "response_id"),
        )
    ]


def _rate_limits(msg: Json) -> list[Event]:
    limits = []
    raw = msg.get("rate_limits")
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, Mapping):
            reset = entry.get("reset_seconds")
            limits.append(
                RateLimit(
                    name=_str(entry, "name"),
                    limit=_int(entry, "limit"),
                    remaining=_int(entry, "remaining"),
                    reset_seconds=float(reset) if isinstance(reset, int | float) else 0.0,
                )
            )
    return [RateLimitsUpdated(limits=tuple(limits))]


def _ignored(msg: Json) -> list[Event]:
    # Structural events whose content reaches the app through other events.
    return []


Decoder = Callable[[Json], list[Event]]

#: Server event ``type`` → decoder; GA names first, then beta aliases (§12, §15.6).
DECODERS: dict[str, Decoder] = {
    "input_audio_buffer.speech_started": _speech_started,
    "input_audio_buffer.speech_stopped": _speech_stopped,
    "input_audio_buffer.committed": _committed,
    "input_audio_buffer.cleared": _cleared,
    "input_audio_buffer.timeout_triggered": _timeout,
    "conversation.item.input_audio_transcription.segment": _segment,
    "conversation.item.added": _item_added,
    "conversation.item.done": _item_done,
    "conversation.item.retrieved": _item_done,
    "conversation.item.truncated": _item_truncated,
    "conversation.item.deleted": _item_deleted,
    "conversation.item.input_audio_transcription.delta": _input_transcript_delta,
    "conversation.item.input_audio_transcription.completed": _input_transcript_done,
    "conversation.item.input_audio_transcription.failed": _input_transcript_failed,
    "response.created": _response_created,
    "response.done": _response_done,
    "response.output_text.delta": _text_delta,
    "response.output_text.done": _text_done,
    "response.output_audio.delta": _audio_delta,
    "response.output_audio.done": _audio_done,
    "response.output_audio_transcript.delta": _transcript_delta,
    "response.output_audio_transcript.done": _transcript_done,
    "response.function_call_arguments.delta": _args_delta,
    "response.function_call_arguments.done": _args_done,
    "rate_limits.updated": _rate_limits,
    "response.output_item.added": _ignored,
    "response.output_item.done": _ignored,
    "response.content_part.added": _ignored,
    "response.content_part.done": _ignored,
    "conversation.created": _ignored,
    # WebRTC/SIP-only playback-buffer notices (§6): nothing to do on a WebSocket.
    "output_audio_buffer.started": _ignored,
    "output_audio_buffer.stopped": _ignored,
    "output_audio_buffer.cleared": _ignored,
    # beta names
    "conversation.item.created": _item_created_beta,
    "response.text.delta": _text_delta,
    "response.text.done": _text_done,
    "response.audio.delta": _audio_delta,
    "response.audio.done": _audio_done,
    "response.audio_transcript.delta": _transcript_delta,
    "response.audio_transcript.done": _transcript_done,
}
