"""Stall detection for one connection: :class:`Watchdog`.

A response that makes no progress (no output: audio, text, transcripts, function-call
arguments, its start or end; see :class:`~voxengine.session.tracker.ResponseTracker`)
for ``WatchdogPolicy.response_stall`` seconds is reported once to ``on_stall``.

It is one timer, not a task: armed when output becomes expected (a response requested
or started), set for the moment the silence would reach the limit, and re-armed from
the last progress when it fires early; between responses nothing is scheduled. So an
idle session costs no wake-ups and no task, and a streaming one costs no per-frame
work beyond the tracker's time stamp.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import final

from voxengine.config import WatchdogPolicy
from voxengine.session.tracker import ResponseTracker

__all__ = ["Watchdog"]

#: ``on_stall(silent_for, response_id)``: returns True when it abandons the connection
#: (the watchdog then stops).
StallHandler = Callable[[float, "str | None"], bool]


@final
class Watchdog:
    """Watches ``tracker`` (of a session that became current at monotonic ``since``)."""

    __slots__ = ("_handle", "_on_stall", "_policy", "_reported", "_since", "_tracker")

    def __init__(
        self,
        tracker: ResponseTracker,
        policy: WatchdogPolicy,
        since: float,
        on_stall: StallHandler,
    ) -> None:
        self._tracker = tracker
        self._policy = policy
        self._since = since
        self._on_stall = on_stall
        self._handle: asyncio.TimerHandle | None = None
        self._reported = False

    def start(self) -> None:
        """Watch from now on (nothing to do when ``response_stall`` is ``None``)."""
        if self._policy.response_stall is None:
            return
        self._tracker.on_expecting = self._arm
        if self._tracker.expecting_output:
            self._arm()

    def stop(self) -> None:
        """Stop watching; no callback runs after this."""
        if self._tracker.on_expecting == self._arm:
            self._tracker.on_expecting = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _arm(self) -> None:
        if self._handle is None:
            self._check()

    def _schedule(self, delay: float) -> None:
        self._handle = asyncio.get_running_loop().call_later(max(0.0, delay), self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._check()

    def _check(self) -> None:
        stall = self._policy.response_stall
        tracker = self._tracker
        if stall is None or not tracker.expecting_output:
            self._reported = False
            return  # asleep until the next request or response start arms it
        now = time.monotonic()
        since = max(self._since, tracker.progress_at, tracker.requested_at)
        silent = now - since
        if silent < stall:
            self._reported = False
            self._schedule(since + stall - now)
            return
        if not self._reported:
            self._reported = True
            if self._on_stall(silent, tracker.active_response_id):
                return  # the connection is being abandoned
        # reported: look again later, to report a new stall once progress resumed
        self._schedule(self._policy.check_interval)
