"""Checks of a session's life and its turns: connect, text and audio in and out, VAD and
manual turns, transcription, interruption and truncation."""

from __future__ import annotations

from collections.abc import (
    Awaitable,
    Callable,
)

from voxengine.config import Modality, SessionConfig, TurnDetection, TurnDetectionConfig
from voxengine.errors import InvalidState
from voxengine.events import (
    AudioDelta,
    BaseEvent,
    Interrupted,
    ItemTruncated,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SessionClosed,
    SessionReady,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TextDone,
    TranscriptDelta,
    TranscriptDone,
)
from voxengine.providers.base import Capability
from voxengine.testing.conformance._shared import (
    _check_audio,
    _check_text,
    _fail_unless,
    _finish_response,
    _stream_speech,
)
from voxengine.testing.conformance.harness import FakeScript
from voxengine.testing.conformance.report import CheckFailed
from voxengine.testing.conformance.runner import CheckContext, _describe
from voxengine.testing.conformance.scripts import LONG_REPLY, REPLY_TEXT, _replying

__all__ = [
    "check_audio_output",
    "check_audio_turn",
    "check_connect",
    "check_disconnect",
    "check_input_transcription",
    "check_interruption",
    "check_manual_turn",
    "check_semantic_vad_turn",
    "check_text_output",
    "check_text_turn",
    "check_truncation",
]


async def check_connect(ctx: CheckContext) -> None:
    """connect() opens the session: is_connected turns True and SessionReady is the first event.

    Before connect() the provider reports ``is_connected`` False.
    """
    live = await ctx.open(connect=False)
    _fail_unless(not live.provider.is_connected, "is_connected is True before connect()")
    await live.connect()
    _fail_unless(live.provider.is_connected, "is_connected is False after connect() returned")
    await live.wait_for(SessionReady)
    _fail_unless(
        isinstance(live.events[0], SessionReady),
        f"first event is {type(live.events[0]).__name__}, not SessionReady",
    )


async def check_disconnect(ctx: CheckContext) -> None:
    """disconnect() ends the session cleanly and for good.

    SessionClosed is the last event, ``events()`` ends, ``is_connected`` is False,
    sending afterwards raises InvalidState, and a second disconnect() is harmless.
    """
    live = await ctx.open()
    provider = live.provider
    await live.wait_for(SessionReady)
    await provider.disconnect()
    await live.wait_ended()
    _fail_unless(
        bool(live.events) and isinstance(live.events[-1], SessionClosed),
        f"the last event is not SessionClosed; saw {_describe(live.events)}",
    )
    _fail_unless(not provider.is_connected, "is_connected is True after disconnect()")
    sends: list[tuple[str, Callable[[], Awaitable[None]]]] = [
        ("create_response()", provider.create_response)
    ]
    if Capability.TEXT_INPUT in ctx.capabilities:
        sends.append(("send_text()", lambda: provider.send_text("hello?")))
    if Capability.AUDIO_INPUT in ctx.capabilities:
        frame = bytes(provider.input_format.bytes_for(0.02))
        sends.append(("send_audio()", lambda: provider.send_audio(frame)))
    for label, send in sends:
        try:
            await send()
        except InvalidState:
            continue
        except Exception as exc:
            raise CheckFailed(
                f"{label} after disconnect raised {type(exc).__name__}, not InvalidState"
            ) from exc
        raise CheckFailed(f"{label} after disconnect did not raise InvalidState")
    await provider.disconnect()  # idempotent


async def check_text_turn(ctx: CheckContext) -> None:
    """A user text message gets a completed response with consistent text.

    send_text() leads to ResponseStarted ... ResponseDone(COMPLETED); the text or
    transcript deltas of each item concatenate to that item's TextDone/TranscriptDone.
    """
    live = await ctx.open()
    ctx.require(Capability.TEXT_INPUT)
    await live.provider.send_text("Hello from the conformance suite.")
    response = await _finish_response(live, 0)
    text = _check_text(ctx, response)
    _fail_unless(REPLY_TEXT in text, f"the reply {text!r} is not the scripted {REPLY_TEXT!r}")
    ctx.exercise(Capability.TEXT_INPUT)


async def check_text_output(ctx: CheckContext) -> None:
    """With text-only output the response is TextDelta ... TextDone and carries no audio."""
    await ctx.capabilities_of_provider()
    ctx.require(Capability.TEXT_OUTPUT)  # before a provider that would refuse the mode
    live = await ctx.open(SessionConfig(modalities=(Modality.TEXT,)))
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("Please answer in text.")
    response = await _finish_response(live, 0)
    _check_text(ctx, response)
    _fail_unless(
        any(isinstance(e, TextDone) and e.text for e in response.events),
        f"no TextDone in a text-only response; saw {_describe(response.events)}",
    )
    _fail_unless(
        not any(isinstance(e, AudioDelta) for e in response.events),
        "a text-only response carried AudioDelta events",
    )


async def check_audio_output(ctx: CheckContext) -> None:
    """Response audio is non-empty whole PCM16 frames at ``output_format``.

    With OUTPUT_TRANSCRIPTION declared, each audio item also has a consistent
    assistant transcript.
    """
    live = await ctx.open()
    ctx.require(Capability.AUDIO_OUTPUT)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("Please answer aloud.")
    response = await _finish_response(live, 0)
    per_item = _check_audio(ctx, response, live.provider.output_format)
    _fail_unless(bool(per_item), f"no AudioDelta in the response; saw {_describe(response.events)}")
    seconds = live.provider.output_format.duration(sum(per_item.values()))
    ctx.notes.append(f"{seconds:.2f} s of audio")
    if Capability.OUTPUT_TRANSCRIPTION in ctx.capabilities:
        _check_text(ctx, response)
        transcribed = {
            e.item_id
            for e in response.events
            if isinstance(e, TranscriptDone) and e.role is Role.ASSISTANT and e.transcript
        }
        _fail_unless(
            set(per_item) <= transcribed,
            f"audio items {sorted(set(per_item) - transcribed)} have no assistant transcript",
        )


async def _vad_turn(ctx: CheckContext, mode: TurnDetection, capability: Capability) -> None:
    await ctx.capabilities_of_provider()
    ctx.require(Capability.AUDIO_INPUT, capability)  # before a provider the mode would refuse
    session = SessionConfig(turn_detection=TurnDetectionConfig(mode=mode))
    live = await ctx.open(session)
    await live.wait_for(SessionReady)
    await _stream_speech(ctx, live, trailing_silence=2.0)
    if Capability.SPEECH_EVENTS in ctx.capabilities:
        started, _ = await live.wait_for(SpeechStarted)
        stopped, _ = await live.wait_for(SpeechStopped, start=started + 1)
        response = await _finish_response(live, stopped + 1)
        first = next(i for i, e in enumerate(live.events) if isinstance(e, ResponseStarted))
        _fail_unless(
            started < stopped < first,
            "expected SpeechStarted < SpeechStopped < ResponseStarted; "
            f"saw {_describe(live.events)}",
        )
        ctx.exercise(Capability.SPEECH_EVENTS)
    else:  # the provider's VAD is silent about speech; the turn must still be answered
        response = await _finish_response(live, 0)
    _check_audio(ctx, response, live.provider.output_format)
    _check_text(ctx, response, require=False)
    ctx.exercise(Capability.AUDIO_INPUT, capability)


async def check_audio_turn(ctx: CheckContext) -> None:
    """Spoken input with server VAD: SpeechStarted, SpeechStopped, then a completed response."""
    await _vad_turn(ctx, TurnDetection.SERVER_VAD, Capability.SERVER_VAD)


async def check_semantic_vad_turn(ctx: CheckContext) -> None:
    """Spoken input with semantic VAD: SpeechStarted, SpeechStopped, then a completed response."""
    await _vad_turn(ctx, TurnDetection.SEMANTIC_VAD, Capability.SEMANTIC_VAD)


async def check_manual_turn(ctx: CheckContext) -> None:
    """Push-to-talk: send_audio, commit_audio and create_response produce a response.

    With turn detection MANUAL the provider reports no SpeechStarted.
    """
    session = SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL))
    live = await ctx.open(session)
    ctx.require(Capability.MANUAL_TURNS, Capability.AUDIO_INPUT)
    await live.wait_for(SessionReady)
    await _stream_speech(ctx, live, trailing_silence=0.2)
    await live.provider.commit_audio()
    await live.provider.create_response()
    response = await _finish_response(live, 0)
    _fail_unless(
        not any(isinstance(e, SpeechStarted) for e in live.events),
        "SpeechStarted was reported although turn detection is MANUAL",
    )
    _check_audio(ctx, response, live.provider.output_format)
    _check_text(ctx, response, require=False)
    ctx.exercise(Capability.MANUAL_TURNS, Capability.AUDIO_INPUT)


async def check_input_transcription(ctx: CheckContext) -> None:
    """With an input transcription model, the user's committed audio gets a user transcript."""
    session = SessionConfig(
        turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL),
        input_transcription_model="gpt-4o-transcribe",
    )
    live = await ctx.open(session)
    ctx.require(Capability.INPUT_TRANSCRIPTION)
    ctx.prerequisite(Capability.AUDIO_INPUT, Capability.MANUAL_TURNS, purpose="to commit speech")
    await live.wait_for(SessionReady)
    await _stream_speech(ctx, live, trailing_silence=0.2)
    await live.provider.commit_audio()
    _, done = await live.wait_for(
        TranscriptDone, lambda e: e.role is Role.USER, what="a user TranscriptDone"
    )
    _fail_unless(bool(done.transcript), "the user transcript is empty")
    ctx.exercise(Capability.INPUT_TRANSCRIPTION)


async def check_interruption(ctx: CheckContext) -> None:
    """interrupt() during a streaming response stops it.

    interrupt() returns Interrupted, the same event appears in the stream, and the
    response ends CANCELLED (a provider that never ends it must at least send no
    further AudioDelta for the item).
    """
    script = FakeScript(responder=_replying(LONG_REPLY), paced=True)
    live = await ctx.open(script=script)
    ctx.require(Capability.INTERRUPTION)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("Tell me a long story.")
    _, started = await live.wait_for(ResponseStarted)
    rid = started.response_id

    def streaming(e: BaseEvent) -> bool:
        return isinstance(e, AudioDelta | TextDelta | TranscriptDelta) and e.response_id == rid

    _, first = await live.wait_for(BaseEvent, streaming, what=f"a delta of response {rid!r}")
    assert isinstance(first, AudioDelta | TextDelta | TranscriptDelta)
    item_id = first.item_id
    interrupted = await live.provider.interrupt()
    _fail_unless(
        isinstance(interrupted, Interrupted),
        f"interrupt() returned {interrupted!r}, not an Interrupted event",
    )
    await live.wait_for(Interrupted, what="the Interrupted event in events()")

    def audio_of_item() -> int:
        return sum(1 for e in live.events if isinstance(e, AudioDelta) and e.item_id == item_id)

    try:
        _, done = await live.wait_for(ResponseDone, lambda e: e.response_id == rid)
    except CheckFailed:  # never ended: acceptable only if the item's audio stopped
        before = audio_of_item()
        await live.settle(0.5)
        _fail_unless(
            audio_of_item() == before,
            "after interrupt() the response neither ended nor stopped streaming audio",
        )
    else:
        _fail_unless(
            done.status is ResponseStatus.CANCELLED,
            f"after interrupt() the response ended {done.status.value}, not cancelled",
        )
    ctx.exercise(Capability.INTERRUPTION)


async def check_truncation(ctx: CheckContext) -> None:
    """interrupt(played, item_id=..., cancel=False) cuts the assistant item where asked.

    The provider reports ItemTruncated for that item at the requested position.
    """
    live = await ctx.open()
    ctx.require(Capability.TRUNCATION)
    ctx.prerequisite(
        Capability.AUDIO_OUTPUT, Capability.TEXT_INPUT, purpose="to produce assistant audio"
    )
    await live.provider.send_text("Say something I can cut short.")
    response = await _finish_response(live, 0)
    per_item = _check_audio(ctx, response, live.provider.output_format)
    _fail_unless(bool(per_item), "no assistant audio to truncate")
    item_id, size = next(iter(per_item.items()))
    played = round(live.provider.output_format.duration(size) / 2, 2)
    interrupted = await live.provider.interrupt(played, item_id=item_id, cancel=False)
    _fail_unless(
        interrupted.item_id == item_id and interrupted.played == played,
        f"interrupt({played}, item_id={item_id!r}) returned {interrupted!r}",
    )
    _, truncated = await live.wait_for(
        ItemTruncated, lambda e: e.item_id == item_id, start=response.done_index
    )
    _fail_unless(
        abs(truncated.audio_end - played) <= 0.002,
        f"ItemTruncated at {truncated.audio_end} s, requested {played} s",
    )
    ctx.exercise(Capability.TRUNCATION)
