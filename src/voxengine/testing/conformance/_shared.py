"""Assertions several checks share: a response's text and audio, streamed speech."""

from __future__ import annotations

from dataclasses import dataclass

from voxengine.audio.format import AudioFormat
from voxengine.events import (
    AudioDelta,
    AudioDone,
    Event,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    TextDelta,
    TextDone,
    ToolCall,
    ToolCallDelta,
    TranscriptDelta,
    TranscriptDone,
)
from voxengine.providers.base import Capability
from voxengine.testing.conformance.report import CheckFailed
from voxengine.testing.conformance.runner import CheckContext, LiveProvider, _describe


def _fail_unless(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


@dataclass(frozen=True, slots=True)
class _Response:
    """One finished response: its id, final event and the events from start to done."""

    response_id: str
    done: ResponseDone
    events: tuple[Event, ...]
    done_index: int


def _response_of(event: Event) -> str | None:
    """The response an output event belongs to (``None`` for other events)."""
    match event:
        case (
            TextDelta(response_id=r)
            | TextDone(response_id=r)
            | AudioDelta(response_id=r)
            | AudioDone(response_id=r)
            | ToolCallDelta(response_id=r)
        ):
            return r
        case (
            TranscriptDelta(role=Role.ASSISTANT, response_id=r)
            | TranscriptDone(role=Role.ASSISTANT, response_id=r)
        ):
            return r
        case ToolCall(response_id=r) if r:
            return r
        case _:
            return None


async def _finish_response(
    live: LiveProvider, start: int, *, status: ResponseStatus | None = ResponseStatus.COMPLETED
) -> _Response:
    """Wait for the next ResponseDone after ``start``; check its ResponseStarted came first."""
    done_index, done = await live.wait_for(ResponseDone, start=start)
    rid = done.response_id
    starts = [
        i
        for i, e in enumerate(live.events[:done_index])
        if isinstance(e, ResponseStarted) and e.response_id == rid
    ]
    _fail_unless(
        bool(starts),
        f"ResponseDone({rid!r}) without a preceding ResponseStarted; saw {_describe(live.events)}",
    )
    early = [e for e in live.events[: starts[0]] if _response_of(e) == rid]
    _fail_unless(
        not early,
        f"{_describe(early)} of response {rid!r} arrived before its ResponseStarted",
    )
    if status is not None:
        _fail_unless(
            done.status is status,
            f"response {rid!r} ended {done.status.value} (reason {done.reason!r}), "
            f"expected {status.value}",
        )
    return _Response(rid, done, tuple(live.events[starts[0] : done_index + 1]), done_index)


def _check_text(ctx: CheckContext, response: _Response, *, require: bool = True) -> str:
    """Deltas of each text/transcript item concatenate to its final text; returns all finals."""
    rid = response.response_id
    pieces: dict[tuple[str, str], list[str]] = {}
    finals: dict[tuple[str, str], str] = {}
    for event in response.events:
        match event:
            case TextDelta(response_id=r, item_id=item, delta=delta) if r == rid:
                pieces.setdefault(("text", item), []).append(delta)
            case TextDone(response_id=r, item_id=item, text=text) if r == rid:
                finals[("text", item)] = text
            case TranscriptDelta(role=Role.ASSISTANT, item_id=item, delta=delta):
                pieces.setdefault(("transcript", item), []).append(delta)
            case TranscriptDone(role=Role.ASSISTANT, item_id=item, transcript=text):
                finals[("transcript", item)] = text
            case _:
                pass
    for key in pieces.keys() | finals.keys():
        kind, item = key
        _fail_unless(key in finals, f"{kind} deltas of item {item!r} never got a final Done event")
        joined = "".join(pieces.get(key, []))
        _fail_unless(
            joined == finals[key],
            f"{kind} deltas of item {item!r} concatenate to {joined!r}, "
            f"but the final text is {finals[key]!r}",
        )
    if require:
        _fail_unless(
            any(finals.values()),
            f"response {rid!r} carried no text or transcript; saw {_describe(response.events)}",
        )
    if any(k == "text" and v for (k, _), v in finals.items()):
        ctx.exercise(Capability.TEXT_OUTPUT)
    if any(k == "transcript" and v for (k, _), v in finals.items()):
        ctx.exercise(Capability.OUTPUT_TRANSCRIPTION)
    return " ".join(v for v in finals.values() if v)


def _check_audio(ctx: CheckContext, response: _Response, fmt: AudioFormat) -> dict[str, int]:
    """Every AudioDelta holds whole, non-empty PCM16 frames; returns bytes per item."""
    per_item: dict[str, int] = {}
    for event in response.events:
        if isinstance(event, AudioDelta) and event.response_id == response.response_id:
            _fail_unless(
                isinstance(event.audio, bytes),
                f"AudioDelta.audio is {type(event.audio).__name__}, not bytes",
            )
            _fail_unless(len(event.audio) > 0, "an AudioDelta carried no audio")
            _fail_unless(
                len(event.audio) % fmt.frame_bytes == 0,
                f"an AudioDelta of {len(event.audio)} bytes is not whole PCM16 frames of "
                f"{fmt.frame_bytes} bytes ({fmt})",
            )
            per_item[event.item_id] = per_item.get(event.item_id, 0) + len(event.audio)
    if per_item:
        ctx.exercise(Capability.AUDIO_OUTPUT)
    return per_item


async def _stream_speech(ctx: CheckContext, live: LiveProvider, *, trailing_silence: float) -> None:
    """Send the harness speech then silence in 20 ms chunks, as a microphone would."""
    fmt = live.provider.input_format
    audio = ctx.speech(fmt) + bytes(fmt.bytes_for(trailing_silence))
    chunk = fmt.bytes_for(0.02)
    for offset in range(0, len(audio), chunk):
        await live.provider.send_audio(audio[offset : offset + chunk], sample_rate=fmt.sample_rate)
