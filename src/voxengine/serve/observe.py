"""Per-call structured logs and the server's metrics.

Logs: one JSON object per line on the ``voxengine.serve.calls`` logger (the
application configures handlers; the library never does), always with the call id::

    {"event": "call.started", "call_id": "c-...", "endpoint": "browser", "caller": "..."}
    {"event": "call.first_audio", "call_id": "c-...", "seconds": 0.41}
    {"event": "call.ended", "call_id": "c-...", "reason": "normal", "seconds": 12.3}

Nothing secret goes in: no token, no deployment secret, no API key; free text from
providers passes through :func:`voxengine.redaction.redact`.

Metrics (Prometheus text format at ``/metrics``, via ``prometheus_client`` with one
registry per app): ``voxengine_calls_total{endpoint}``, ``voxengine_calls_active``,
``voxengine_calls_refused_total{reason}``, ``voxengine_calls_ended_total{reason}``,
``voxengine_call_errors_total{kind}``, ``voxengine_time_to_first_audio_seconds``
(histogram: user turn end to the first assistant audio sent).
"""

from __future__ import annotations

import json
import logging
from typing import Any, final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from voxengine.redaction import redact
from voxengine.serve.call import Call
from voxengine.serve.errors import CloseReason

__all__ = ["ServeMetrics", "log_call_event"]

call_log = logging.getLogger("voxengine.serve.calls")


def log_call_event(event: str, call_id: str, **fields: Any) -> None:
    """Write one JSON line ``{"event": ..., "call_id": ..., **fields}`` (INFO)."""
    if not call_log.isEnabledFor(logging.INFO):
        return
    record = {"event": event, "call_id": call_id, **fields}
    call_log.info("%s", redact(json.dumps(record, default=str, separators=(",", ":"))))


@final
class ServeMetrics:
    """The server's counters, and the :class:`~voxengine.serve.call.CallObserver` of its calls."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.calls = Counter("voxengine_calls", "Calls started", ["endpoint"], registry=r)
        self.active = Gauge("voxengine_calls_active", "Calls in progress", registry=r)
        self.refused = Counter(
            "voxengine_calls_refused", "Calls refused before starting", ["reason"], registry=r
        )
        self.ended = Counter("voxengine_calls_ended", "Calls ended", ["reason"], registry=r)
        self.errors = Counter("voxengine_call_errors", "Errors during calls", ["kind"], registry=r)
        self.first_audio_seconds = Histogram(
            "voxengine_time_to_first_audio_seconds",
            "From the end of the user's turn to the first assistant audio sent",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    # -- events --------------------------------------------------------------------------

    def call_started(self, call: Call) -> None:
        """A call was admitted and connected."""
        self.calls.labels(call.context.endpoint).inc()
        self.active.inc()
        log_call_event(
            "call.started",
            call.call_id,
            endpoint=call.context.endpoint,
            caller=call.context.caller,
            provider=call.engine.provider.name,
        )

    def call_ended(self, call: Call, seconds: float) -> None:
        """A started call ended."""
        reason = call.close_reason or CloseReason.NORMAL
        self.active.dec()
        self.ended.labels(reason.wire_name).inc()
        log_call_event(
            "call.ended",
            call.call_id,
            reason=reason.wire_name,
            detail=call.close_detail,
            seconds=round(seconds, 3),
            audio_out_seconds=round(call.output.sent_seconds, 3),
        )

    def call_refused(self, reason: CloseReason, call_id: str, detail: str) -> None:
        """A call was refused before it started."""
        self.refused.labels(reason.wire_name).inc()
        log_call_event("call.refused", call_id, reason=reason.wire_name, detail=detail)

    def first_audio(self, call: Call, seconds: float) -> None:
        """CallObserver: time to first audio of a turn."""
        self.first_audio_seconds.observe(seconds)
        log_call_event("call.first_audio", call.call_id, seconds=round(seconds, 4))

    def provider_error(self, call: Call, code: str | None, message: str) -> None:
        """CallObserver: a recoverable provider error."""
        self.errors.labels("provider").inc()
        log_call_event("call.provider_error", call.call_id, code=code, message=message)

    def caller_error(self, call_id: str, reason: CloseReason, detail: str) -> None:
        """The caller sent something bad; its call ends."""
        self.errors.labels(reason.wire_name).inc()
        log_call_event("call.caller_error", call_id, reason=reason.wire_name, detail=detail)
