"""The watchdog timer: armed only while output is expected, one report per stall."""

from __future__ import annotations

import asyncio
import time

from voxengine.audio.format import PCM16_24K
from voxengine.commands import CreateResponse
from voxengine.config import WatchdogPolicy
from voxengine.events import ResponseDone, ResponseStarted, ResponseStatus
from voxengine.session.tracker import ResponseTracker
from voxengine.session.watchdog import Watchdog


def _watch(
    policy: WatchdogPolicy, abandon: bool = False
) -> tuple[ResponseTracker, Watchdog, list[tuple[float, str | None]]]:
    tracker = ResponseTracker(PCM16_24K)
    reports: list[tuple[float, str | None]] = []

    def on_stall(silent: float, response_id: str | None) -> bool:
        reports.append((silent, response_id))
        return abandon

    dog = Watchdog(tracker, policy, time.monotonic(), on_stall)
    dog.start()
    return tracker, dog, reports


async def _until(condition: object, timeout: float = 10.0) -> None:
    """Poll ``condition()`` (event-driven enough for a timer) until true or ``timeout``."""
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_idle_sessions_schedule_nothing_and_a_request_arms_the_timer() -> None:
    tracker, dog, reports = _watch(WatchdogPolicy(response_stall=0.1, check_interval=0.02))
    assert dog._handle is None  # nothing expected: no timer at all
    tracker.requested(CreateResponse(), time.monotonic())
    assert dog._handle is not None
    await _until(lambda: reports)
    await asyncio.sleep(0.1)  # five more looks
    assert len(reports) == 1  # reported once, not every check_interval
    silent, response_id = reports[0]
    assert silent >= 0.1
    assert response_id is None
    tracker.observe(ResponseStarted(response_id="r1"))  # progress: a new stall may follow
    tracker.observe(ResponseDone(response_id="r1", status=ResponseStatus.COMPLETED))
    await _until(lambda: dog._handle is None)  # the response ended: asleep again
    await asyncio.sleep(0.15)
    assert len(reports) == 1
    dog.stop()


async def test_progress_postpones_the_report_and_stop_cancels_it() -> None:
    tracker, dog, reports = _watch(WatchdogPolicy(response_stall=1.0, check_interval=0.02))
    tracker.observe(ResponseStarted(response_id="r1"))
    started = time.monotonic()
    for _ in range(30):  # 1.5 s of output every 50 ms: longer than the stall limit
        await asyncio.sleep(0.05)
        tracker.progress_at = time.monotonic()
    assert reports == [] or time.monotonic() - started > 20  # (a machine stalled 20x)
    await _until(lambda: reports)
    assert [r for _, r in reports] == ["r1"]
    dog.stop()
    assert dog._handle is None
    assert tracker.on_expecting is None


async def test_abandoning_stops_the_watchdog() -> None:
    tracker, dog, reports = _watch(
        WatchdogPolicy(response_stall=0.05, check_interval=0.01), abandon=True
    )
    tracker.observe(ResponseStarted(response_id="r1"))
    await _until(lambda: reports)
    await asyncio.sleep(0.05)
    assert len(reports) == 1
    assert dog._handle is None
    dog.stop()


async def test_no_stall_limit_means_no_timer() -> None:
    tracker, dog, reports = _watch(WatchdogPolicy(response_stall=None))
    tracker.observe(ResponseStarted(response_id="r1"))
    assert dog._handle is None
    assert tracker.on_expecting is None
    await asyncio.sleep(0.05)
    assert reports == []
