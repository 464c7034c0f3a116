"""Sans-I/O tests of the Gemini reply policy: a new turn during a streaming answer.

Any ``clientContent`` interrupts the model turn in progress (§3.2): under QUEUE the
new message waits for ``turnComplete`` (both get an answer), under INTERRUPT it goes
out at once (the streaming answer ends CANCELLED, "interrupted").
"""

from __future__ import annotations

from voxengine.commands import CreateResponse, SendText
from voxengine.config import ReplyPolicy, SessionConfig
from voxengine.events import ProviderErrorEvent, ResponseDone, ResponseStatus, SessionClosed

from .test_protocol import audio_msg, feed, opened, sent

TURN_COMPLETE = b'{"serverContent":{"turnComplete":true}}'
INTERRUPTED = b'{"serverContent":{"interrupted":true}}'


def user_turn(text: str) -> dict[str, object]:
    return {
        "clientContent": {
            "turns": [{"role": "user", "parts": [{"text": text}]}],
            "turnComplete": True,
        }
    }


def test_queue_defers_a_new_turn_until_the_streaming_one_completes() -> None:
    p = opened()
    p.send(SendText(text="one"))
    p.send(CreateResponse())
    assert sent(p) == [user_turn("one")]
    feed(p, audio_msg())  # the answer to "one" is streaming
    p.send(SendText(text="two"))
    p.send(CreateResponse())
    assert sent(p) == []  # sending now would interrupt the answer
    events = feed(p, TURN_COMPLETE)
    (done,) = [e for e in events if isinstance(e, ResponseDone)]
    assert done.status is ResponseStatus.COMPLETED
    assert sent(p) == [user_turn("two")]


def test_interrupt_sends_at_once_and_the_answer_ends_cancelled() -> None:
    p = opened(SessionConfig(reply_policy=ReplyPolicy.INTERRUPT))
    p.send(SendText(text="one"))
    p.send(CreateResponse())
    sent(p)
    feed(p, audio_msg())
    p.send(SendText(text="two"))
    p.send(CreateResponse())
    assert sent(p) == [user_turn("two")]
    events = feed(p, INTERRUPTED, TURN_COMPLETE)
    (done,) = [e for e in events if isinstance(e, ResponseDone)]
    assert (done.status, done.reason) == (ResponseStatus.CANCELLED, "interrupted")


def test_a_deferred_turn_lost_to_a_close_is_reported() -> None:
    p = opened()
    p.send(SendText(text="one"))
    p.send(CreateResponse())
    sent(p)
    feed(p, audio_msg())
    p.send(SendText(text="two"))
    p.send(CreateResponse())
    p.receive_close(1011, "internal")
    events = p.events_received()
    assert [e.code for e in events if isinstance(e, ProviderErrorEvent)] == [
        "response_request_dropped"
    ]
    assert isinstance(events[-1], SessionClosed)
