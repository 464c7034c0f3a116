from __future__ import annotations

import pytest

from voxengine.context import ContextMethod, ContextScheduler, ContextTiming
from voxengine.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_timing_priority_and_delivery() -> None:
    clock = Clock()
    s = ContextScheduler(clock)
    low = s.add("low", timing=ContextTiming.NEXT_PAUSE, priority=1)
    high = s.add("high", timing=ContextTiming.NEXT_PAUSE, priority=5)
    turn = s.add("turn", timing=ContextTiming.NEXT_TURN)
    now = s.add("now")
    assert [e.context_id for e in s.due(ContextTiming.NOW)] == [now.context_id]
    assert [e.text for e in s.due(ContextTiming.NEXT_PAUSE)] == ["high", "low"]
    assert s.due(ContextTiming.NEXT_PAUSE) == []
    assert [e.text for e in s.pending] == ["turn"]
    assert [e.text for e in s.due(ContextTiming.NEXT_TURN)] == ["turn"]
    delivered = s.active()
    assert [e.text for e in delivered] == ["high", "low", "now", "turn"]
    assert all(e.delivered_at == 100.0 for e in delivered)
    assert {low.context_id, high.context_id, turn.context_id} <= {e.context_id for e in delivered}


def test_ttl_drops_undelivered_and_expires_delivered() -> None:
    clock = Clock()
    s = ContextScheduler(clock)
    s.add("stale", timing=ContextTiming.NEXT_PAUSE, ttl=1.0)
    kept = s.add("kept", ttl=5.0)
    s.add("forever")
    assert len(s.due(ContextTiming.NOW)) == 2
    assert s.next_expiry() == 101.0
    clock.now = 102.0
    assert s.due(ContextTiming.NEXT_PAUSE) == []
    assert [e.text for e in s.dropped] == ["stale"]
    assert s.expire() == []
    clock.now = 105.0
    (gone,) = s.expire()
    assert gone.context_id == kept.context_id
    assert [e.text for e in s.active()] == ["forever"]


def test_instructions_block_and_withdraw() -> None:
    s = ContextScheduler(Clock())
    a = s.add("Caller is a premium customer.", method=ContextMethod.INSTRUCTIONS, priority=2)
    s.add("Office closes at 6 pm.", method=ContextMethod.INSTRUCTIONS)
    s.add("a message", method=ContextMethod.SYSTEM_MESSAGE)
    s.due(ContextTiming.NOW)
    assert s.instructions("Be helpful.") == (
        "Be helpful.\n\nContext:\n- Caller is a premium customer.\n- Office closes at 6 pm."
    )
    assert s.withdraw(a.context_id) == a.__class__(**{**_fields(a), "delivered_at": 100.0})
    assert s.instructions("") == "Context:\n- Office closes at 6 pm."
    assert s.withdraw("nope") is None


def _fields(entry: object) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(entry)  # type: ignore[call-overload, no-any-return]


def test_validation() -> None:
    s = ContextScheduler(Clock())
    with pytest.raises(ConfigError):
        s.add("  ")
    with pytest.raises(ConfigError):
        s.add("x", ttl=0)
