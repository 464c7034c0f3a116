"""Sans-I/O tests of the reply policy: one response at a time (§8.1, §9).

A reply requested while a response is active must still get its own reply (QUEUE) or
cancel the active one first (INTERRUPT); a request refused as a race is asked again;
a request that cannot be sent any more is reported by a typed event.
"""

from __future__ import annotations

import json
from typing import Any

from voxengine.commands import CreateResponse, SendText, SendToolResult, UpdateSession
from voxengine.config import ReplyPolicy, SessionConfig
from voxengine.events import ProviderErrorEvent, ResponseDone, ResponseStarted, SessionClosed
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol

from .test_protocol import feed, opened, sent


def created(response_id: str) -> str:
    return json.dumps(
        {
            "type": "response.created",
            "event_id": f"ev_{response_id}_c",
            "response": {"object": "realtime.response", "id": response_id, "status": "in_progress"},
        }
    )


def done(response_id: str, status: str = "completed") -> str:
    return json.dumps(
        {
            "type": "response.done",
            "event_id": f"ev_{response_id}_d",
            "response": {
                "object": "realtime.response",
                "id": response_id,
                "status": status,
                "output": [],
            },
        }
    )


def refused(code: str, event_id: str) -> str:
    return json.dumps(
        {
            "type": "error",
            "event_id": "ev_err",
            "error": {
                "type": "invalid_request_error",
                "code": code,
                "message": "m",
                "param": None,
                "event_id": event_id,
            },
        }
    )


def types(p: OpenAIRealtimeProtocol) -> list[str]:
    return [m["type"] for m in sent(p)]


def test_two_messages_in_a_row_each_get_their_reply() -> None:
    p = opened()
    p.send(SendText(text="one"))
    p.send(CreateResponse())
    p.send(SendText(text="two"))
    p.send(CreateResponse())
    # the second message goes out at once; its response.create waits
    assert types(p) == ["conversation.item.create", "response.create", "conversation.item.create"]
    assert p.queued_replies == 1
    feed(p, created("resp_1"))
    assert types(p) == []
    events = feed(p, done("resp_1"))
    assert [type(e) for e in events] == [ResponseDone]
    assert types(p) == ["response.create"]
    assert p.queued_replies == 0
    feed(p, created("resp_2"), done("resp_2"))
    assert types(p) == []


def test_reply_requested_during_a_vad_response_waits_for_it() -> None:
    p = opened()
    assert [type(e) for e in feed(p, created("resp_vad"))] == [ResponseStarted]
    p.send(SendToolResult(call_id="call_1", output="{}"))
    p.send(CreateResponse())
    assert types(p) == ["conversation.item.create"]
    feed(p, done("resp_vad"))
    assert types(p) == ["response.create"]


def test_create_refused_by_a_race_is_queued_again_not_reported() -> None:
    p = opened()
    p.send(CreateResponse())
    (create,) = sent(p)
    # server VAD started a response just before ours arrived, then refused ours
    events = feed(
        p,
        created("resp_vad"),
        refused("conversation_already_has_active_response", create["event_id"]),
    )
    assert [type(e) for e in events] == [ResponseStarted]
    assert types(p) == []
    assert p.queued_replies == 1
    feed(p, done("resp_vad"))
    assert types(p) == ["response.create"]


def test_other_refusals_are_reported_and_release_the_queue() -> None:
    p = opened()
    p.send(CreateResponse())
    (create,) = sent(p)
    p.send(CreateResponse(instructions="second"))
    assert types(p) == []
    events = feed(p, refused("invalid_value", create["event_id"]))
    assert [e.code for e in events if isinstance(e, ProviderErrorEvent)] == ["invalid_value"]
    (second,) = sent(p)
    assert second["response"]["instructions"] == "second"


def test_interrupt_policy_cancels_then_creates() -> None:
    p = opened(SessionConfig(reply_policy=ReplyPolicy.INTERRUPT))
    assert p.reply_policy is ReplyPolicy.INTERRUPT
    feed(p, created("resp_1"))
    p.send(SendText(text="stop, new question"))
    p.send(CreateResponse())
    p.send(CreateResponse())  # one cancel is enough
    assert types(p) == ["conversation.item.create", "response.cancel"]
    feed(p, done("resp_1", "cancelled"))
    assert types(p) == ["response.create"]
    feed(p, created("resp_2"), done("resp_2"))
    assert types(p) == ["response.create"]


def test_policy_can_change_mid_session_without_a_wire_message() -> None:
    p = opened()
    p.send(UpdateSession(config=SessionConfig(reply_policy=ReplyPolicy.INTERRUPT)))
    assert sent(p) == []
    assert p.reply_policy is ReplyPolicy.INTERRUPT
    p.send(UpdateSession(config=SessionConfig(instructions="x", reply_policy=ReplyPolicy.QUEUE)))
    (update,) = sent(p)
    assert update["type"] == "session.update"
    assert p.reply_policy is ReplyPolicy.QUEUE


def test_queued_requests_lost_to_a_close_are_reported() -> None:
    p = opened()
    feed(p, created("resp_1"))
    p.send(CreateResponse())
    p.send(CreateResponse())
    p.receive_close(1006, "")
    events: list[Any] = p.events_received()
    dropped = [e for e in events if isinstance(e, ProviderErrorEvent)]
    assert [e.code for e in dropped] == ["response_request_dropped"]
    assert "2 requested response(s)" in dropped[0].message
    assert isinstance(events[-1], SessionClosed)
