"""Checks of the rest of the contract: tools, usage, input validation, errors, event
ordering, session updates, item deletion, context injection and recorded audio."""

from __future__ import annotations

import json
from collections.abc import (
    Awaitable,
    Callable,
    Sequence,
)
from typing import Final

from voxengine.config import SessionConfig, TurnDetection, TurnDetectionConfig
from voxengine.errors import AudioError, ConfigError
from voxengine.events import (
    Event,
    ItemAdded,
    ItemDeleted,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    Role,
    SessionClosed,
    SessionReady,
    SessionUpdated,
    ToolCall,
)
from voxengine.providers.base import Capability
from voxengine.testing.conformance._shared import (
    _check_audio,
    _check_text,
    _fail_unless,
    _finish_response,
    _response_of,
)
from voxengine.testing.conformance.harness import FakeScript
from voxengine.testing.conformance.report import CheckFailed, CheckSkipped, SkipKind
from voxengine.testing.conformance.runner import CheckContext, _describe
from voxengine.testing.conformance.scripts import (
    _TOOL,
    _TOOL_ARGUMENTS,
    _TOOL_NAME,
    _TOOL_OUTPUT,
    _TOOL_REPLY,
    _tool_responder,
)
from voxengine.testing.fakes.openai import (
    FakeReply,
    FakeTurn,
)

__all__ = [
    "check_context_injection",
    "check_event_ordering",
    "check_input_validation",
    "check_item_deletion",
    "check_recorded_audio",
    "check_recoverable_error",
    "check_session_update",
    "check_tool_round_trip",
    "check_usage",
    "event_order_violations",
]


async def check_tool_round_trip(ctx: CheckContext) -> None:
    """A function call round trip completes.

    The model's ToolCall has JSON-object arguments; send_tool_result(respond=False)
    then create_response() gives a completed response built on the tool output.
    """
    live = await ctx.open(SessionConfig(tools=(_TOOL,)), FakeScript(responder=_tool_responder))
    ctx.require(Capability.FUNCTION_CALLING)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("What is the weather in Paris?")
    first = await _finish_response(live, 0)
    calls = [e for e in first.events if isinstance(e, ToolCall)]
    _fail_unless(len(calls) == 1, f"expected one ToolCall; saw {_describe(first.events)}")
    call = calls[0]
    _fail_unless(call.name == _TOOL_NAME, f"ToolCall.name is {call.name!r}, not {_TOOL_NAME!r}")
    try:
        arguments = json.loads(call.arguments)
    except ValueError as exc:
        raise CheckFailed(f"ToolCall.arguments is not JSON: {call.arguments!r}") from exc
    _fail_unless(
        arguments == json.loads(_TOOL_ARGUMENTS),
        f"ToolCall.arguments is {call.arguments!r}, expected {_TOOL_ARGUMENTS!r}",
    )
    _fail_unless(bool(call.call_id), "ToolCall.call_id is empty")
    await live.provider.send_tool_result(call.call_id, _TOOL_OUTPUT, respond=False)
    await live.provider.create_response()
    second = await _finish_response(live, first.done_index + 1)
    text = _check_text(ctx, second)
    _fail_unless(_TOOL_REPLY in text, f"the follow-up {text!r} does not use the tool output")
    ctx.exercise(Capability.FUNCTION_CALLING)


async def check_usage(ctx: CheckContext) -> None:
    """ResponseDone.usage reports positive input, output and total token counts."""
    live = await ctx.open()
    ctx.require(Capability.USAGE)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    await live.provider.send_text("How much does this cost?")
    response = await _finish_response(live, 0)
    usage = response.done.usage
    _fail_unless(usage is not None, "ResponseDone.usage is None")
    assert usage is not None
    _fail_unless(
        usage.total_tokens > 0 and usage.input_tokens > 0 and usage.output_tokens > 0,
        f"usage has non-positive totals: {usage}",
    )
    ctx.exercise(Capability.USAGE)


async def _expect_raise(
    label: str, error: type[Exception], action: Callable[[], Awaitable[None]]
) -> None:
    try:
        await action()
    except error:
        return
    except Exception as exc:
        raise CheckFailed(
            f"{label} raised {type(exc).__name__}: {exc}, not {error.__name__}"
        ) from exc
    raise CheckFailed(f"{label} did not raise {error.__name__}")


async def check_input_validation(ctx: CheckContext) -> None:
    """Invalid input raises typed errors before any I/O, and the session stays usable.

    Odd-length audio, non-bytes audio and a wrong ``sample_rate`` raise AudioError;
    empty text raises ConfigError. None of them makes the provider report an error.
    """
    live = await ctx.open()
    provider = live.provider
    await live.wait_for(SessionReady)
    audio_in, text_in = Capability.AUDIO_INPUT, Capability.TEXT_INPUT
    if audio_in not in ctx.capabilities and text_in not in ctx.capabilities:
        raise CheckSkipped(
            "provider declares neither audio_input nor text_input", SkipKind.CAPABILITY
        )
    if audio_in in ctx.capabilities:
        fmt = provider.input_format
        frame = bytes(fmt.bytes_for(0.02))
        wrong = 16_000 if fmt.sample_rate != 16_000 else 24_000
        await _expect_raise(
            "send_audio(3 bytes)", AudioError, lambda: provider.send_audio(b"\0\0\0")
        )
        await _expect_raise(
            "send_audio(str)",
            AudioError,
            lambda: provider.send_audio("audio"),  # type: ignore[arg-type]
        )
        await _expect_raise(
            f"send_audio(sample_rate={wrong})",
            AudioError,
            lambda: provider.send_audio(frame, sample_rate=wrong),
        )
    if text_in in ctx.capabilities:
        await _expect_raise("send_text('')", ConfigError, lambda: provider.send_text(""))
    await live.settle()
    errors = [e for e in live.events if isinstance(e, ProviderErrorEvent | SessionClosed)]
    _fail_unless(
        not errors and provider.is_connected,
        f"invalid input reached the service: {errors!r}",
    )


async def check_recoverable_error(ctx: CheckContext) -> None:
    """A recoverable service error arrives as ProviderErrorEvent and the session stays open.

    The harness's ``trigger_error`` provokes the error; afterwards the provider is
    still connected, reports no SessionClosed and (with TEXT_INPUT) still answers.
    """
    trigger = ctx.harness.trigger_error
    if trigger is None:
        raise CheckSkipped(
            "harness gives no trigger_error to provoke a recoverable error", SkipKind.HARNESS
        )
    live = await ctx.open()
    await live.wait_for(SessionReady)
    await trigger(live.provider)
    index, _ = await live.wait_for(ProviderErrorEvent)
    await live.settle()
    _fail_unless(live.provider.is_connected, "the provider disconnected after a recoverable error")
    _fail_unless(
        not any(isinstance(e, SessionClosed) for e in live.events),
        "SessionClosed after a recoverable error",
    )
    if Capability.TEXT_INPUT in ctx.capabilities:
        await live.provider.send_text("Are you still there?")
        await _finish_response(live, index + 1)


def event_order_violations(events: Sequence[Event]) -> list[str]:
    """Check the ordering invariants every provider's event stream must satisfy.

    * the first event is SessionReady; SessionClosed, if present, occurs once and last;
    * each response id is started once by ResponseStarted and done at most once by
      ResponseDone, after its start;
    * every event that names a response (text/audio/transcript deltas and dones,
      tool calls) comes between that response's ResponseStarted and ResponseDone.

    Returns:
        One message per violation (empty when the stream is well ordered).
    """
    problems: list[str] = []
    if not events:
        return ["no events at all"]
    if not isinstance(events[0], SessionReady):
        problems.append(f"first event is {type(events[0]).__name__}, not SessionReady")
    closed = [i for i, e in enumerate(events) if isinstance(e, SessionClosed)]
    if len(closed) > 1:
        problems.append(f"{len(closed)} SessionClosed events")
    if closed and closed[0] != len(events) - 1:
        after = _describe(events[closed[0] + 1 :])
        problems.append(f"events after SessionClosed: {after}")
    open_ids: set[str] = set()
    finished: set[str] = set()
    for index, event in enumerate(events):
        if isinstance(event, ResponseStarted):
            r = event.response_id
            if r in open_ids or r in finished:
                problems.append(f"#{index}: response {r!r} started twice")
            open_ids.add(r)
        elif isinstance(event, ResponseDone):
            r = event.response_id
            if r not in open_ids:
                state = "done twice" if r in finished else "done before it started"
                problems.append(f"#{index}: response {r!r} {state}")
            open_ids.discard(r)
            finished.add(r)
        else:
            rid = _response_of(event)
            if rid is not None and rid not in open_ids:
                where = (
                    "after its ResponseDone" if rid in finished else "outside any ResponseStarted"
                )
                problems.append(f"#{index}: {type(event).__name__} of response {rid!r} {where}")
    return problems


async def check_event_ordering(ctx: CheckContext) -> None:
    """The whole session's event stream obeys :func:`event_order_violations`.

    The session covers connect, a text turn (and a tool round trip with
    FUNCTION_CALLING) and disconnect.
    """
    calling = FakeScript(responder=_tool_responder)
    live = await ctx.open(SessionConfig(tools=(_TOOL,)), calling)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to start a response")
    provider = live.provider
    await provider.send_text("What is the weather in Paris?")
    done_index, _ = await live.wait_for(ResponseDone)
    if Capability.FUNCTION_CALLING in ctx.capabilities:
        _, call = await live.wait_for(ToolCall)
        await provider.send_tool_result(call.call_id, _TOOL_OUTPUT)
        await live.wait_for(ResponseDone, start=done_index + 1)
    await provider.disconnect()
    await live.wait_ended()
    problems = event_order_violations(live.events)
    _fail_unless(not problems, "; ".join(problems[:10]))


async def check_session_update(ctx: CheckContext) -> None:
    """update_session() mid-session is acknowledged with SessionUpdated and no error."""
    live = await ctx.open()
    ctx.require(Capability.SESSION_UPDATE)
    ready, _ = await live.wait_for(SessionReady)
    await live.provider.update_session(SessionConfig(instructions="Answer in one sentence."))
    index, _ = await live.wait_for(SessionUpdated, start=ready + 1)
    errors = [e for e in live.events[: index + 1] if isinstance(e, ProviderErrorEvent)]
    _fail_unless(not errors, f"update_session() caused errors: {errors!r}")
    ctx.exercise(Capability.SESSION_UPDATE)


async def check_item_deletion(ctx: CheckContext) -> None:
    """delete_item() removes a conversation item and the provider reports ItemDeleted."""
    live = await ctx.open()
    ctx.require(Capability.ITEM_DELETION)
    ctx.prerequisite(Capability.TEXT_INPUT, purpose="to create an item")
    await live.provider.send_text("Forget this message.", respond=False)
    _, added = await live.wait_for(ItemAdded, lambda e: e.item.role is Role.USER)
    await live.provider.delete_item(added.item.item_id)
    await live.wait_for(ItemDeleted, lambda e: e.item_id == added.item.item_id)
    ctx.exercise(Capability.ITEM_DELETION)


_NOTE: Final = "The user's name is Ada Lovelace."


def _context_responder(turn: FakeTurn) -> FakeReply:
    seen = "Ada Lovelace" in json.dumps(turn.history)
    return FakeReply(text="Hello Ada." if seen else "I do not know your name.")


async def check_context_injection(ctx: CheckContext) -> None:
    """add_message() adds context without starting a response, and the model sees it.

    No ResponseStarted or ProviderErrorEvent follows add_message(); with TEXT_INPUT, the
    next response's input (as the fake receives it) contains the injected text.
    """
    live = await ctx.open(script=FakeScript(responder=_context_responder))
    ctx.require(Capability.CONTEXT_INJECTION)
    ready, _ = await live.wait_for(SessionReady)
    await live.provider.add_message(_NOTE, role=Role.SYSTEM)
    await live.settle()
    unexpected = [
        e
        for e in live.events
        if isinstance(e, ResponseStarted | ProviderErrorEvent | SessionClosed)
    ]
    _fail_unless(not unexpected, f"add_message() was followed by {unexpected!r}")
    if Capability.TEXT_INPUT in ctx.capabilities:
        await live.provider.send_text("What is my name?")
        text = _check_text(ctx, await _finish_response(live, ready + 1))
        _fail_unless(
            "Hello Ada." in text, f"the injected context did not reach the model: {text!r}"
        )
    ctx.exercise(Capability.CONTEXT_INJECTION)


async def check_recorded_audio(ctx: CheckContext) -> None:
    """send_audio_message() adds a whole utterance; create_response() then answers it."""
    session = SessionConfig(turn_detection=TurnDetectionConfig(mode=TurnDetection.MANUAL))
    live = await ctx.open(session)
    ctx.require(Capability.RECORDED_AUDIO)
    await live.wait_for(SessionReady)
    await live.provider.send_audio_message(ctx.speech(live.provider.input_format))
    await live.provider.create_response()
    response = await _finish_response(live, 0)
    _check_audio(ctx, response, live.provider.output_format)
    _check_text(ctx, response, require=False)
    ctx.exercise(Capability.RECORDED_AUDIO)
