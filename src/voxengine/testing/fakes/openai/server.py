"""A protocol-faithful fake of the OpenAI Realtime server, as a sans-I/O state machine.

One :class:`FakeOpenAIServer` models the server side of ONE WebSocket connection
(protocol notes ``openai-realtime.md``, GA interface; beta/Azure-preview names with
``dialect="beta"``). It does no I/O and imports neither asyncio nor websockets: a
driver feeds it the upgrade request (:meth:`FakeOpenAIServer.receive_connect`) and
every received frame (:meth:`~FakeOpenAIServer.receive_message`), then sends the
frames returned by :meth:`~FakeOpenAIServer.data_to_send` and, once
:meth:`~FakeOpenAIServer.close_to_send` returns a value, closes with that code and
reason. ``voxengine.testing.run_fake_openai_server`` is such a driver.

What the assistant "says" comes from a :data:`Responder` (deterministic by default).
Everything else follows the notes: handshake failures (§2.1), envelope and
validation rules (§3, §10), session object (§4), event order (§9, §15), function
calls (§15.4), server VAD and barge-in (§9, §15.5), usage (§8.3).

Contract: the public methods never raise on anything a *client* sends (bad input
becomes an ``error`` event, exactly like the live server). They raise
``RuntimeError`` only on driver misuse (e.g. ``receive_message`` before
``receive_connect``). Exceptions raised by a responder are caught: the response
ends with ``status: "failed"`` and the exception is kept in
:attr:`FakeOpenAIServer.responder_errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.parse import parse_qs, urlsplit

from voxengine import _json
from voxengine.testing._driver import run_until_idle

from .config import _DEFAULT_CONFIG, FakeOpenAIConfig
from .schema import SchemaError, validate_client_event
from .session import _Session
from .wire import (
    Json,
    default_session,
)


class FakeOpenAIServer(_Session):
    """Server side of one OpenAI Realtime WebSocket connection (sans-I/O).

    Attributes:
        config: the shared configuration.
        received: every parsed client event (valid or not), in arrival order; stays
            empty when ``config.record_received`` is off.
        session: the current effective session object (wire shape of the dialect).
        items: the default conversation, oldest first (wire dicts, audio omitted).
        responder_errors: exceptions raised by the responder (each failed a response).
        sent: every frame sent, in order, when ``config.record_sent`` is on.

    Args:
        config: shared by every connection of one server.
        connection: this connection's index on its server (0 for the first). Server
            ids (``event_``, ``item_``, ``resp_``, ...) carry it from the second
            connection on (``resp_0001``, then ``resp_2_0001``), so that, as on the
            live service, no id repeats across the reconnects of one test.
    """

    def __init__(self, config: FakeOpenAIConfig = _DEFAULT_CONFIG, *, connection: int = 0) -> None:
        super().__init__(config, connection=connection)
        self._handlers: dict[str, Callable[[Json, str | None], None]] = {
            "session.update": self._on_session_update,
            "session.close": self._on_session_close,
            "input_audio_buffer.append": self._on_append,
            "session.input_audio_buffer.append": self._on_append,
            "input_audio_buffer.commit": self._on_commit,
            "input_audio_buffer.clear": self._on_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.retrieve": self._on_item_retrieve,
            "conversation.item.truncate": self._on_item_truncate,
            "conversation.item.delete": self._on_item_delete,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
            "output_audio_buffer.clear": self._on_output_audio_buffer_clear,
        }

    # --- driver API ----------------------------------------------------------------------------

    def receive_connect(self, path: str, headers: Mapping[str, str]) -> None:
        """Process the WebSocket upgrade request (§2, §14 items 1-2).

        ``path`` includes the query string. Header names are matched
        case-insensitively. The upgrade is always accepted; a refusal is an
        ``error`` event followed by :meth:`close_to_send` (3000 auth, 4000 model
        or beta header, as in the §2.1 table).

        Raises:
            RuntimeError: called twice.
        """
        if self._state != "new":
            raise RuntimeError("receive_connect() may be called only once")
        self._state = "open"
        lowered = {name.lower(): value for name, value in headers.items()}
        url = urlsplit(path)
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        key = self._find_api_key(lowered, query)
        if not key:
            self._fatal(
                None,
                "Missing bearer or basic authentication in header",
                3000,
                "invalid_request_error",
            )
            return
        if self.config.api_keys is not None and key not in self.config.api_keys:
            redacted = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
            self._fatal(
                "invalid_api_key",
                f"Incorrect API key provided: {redacted}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                3000,
                "invalid_request_error.invalid_api_key",
            )
            return
        if self.config.dialect == "ga" and "realtime" in lowered.get("openai-beta", ""):
            self._fatal(  # §12: the beta shape is shut down on GA
                "beta_api_shape_disabled",
                "The Realtime Beta API is no longer supported. Please use the GA Realtime API.",
                4000,
                "invalid_request_error.beta_api_shape_disabled",
            )
            return
        if not url.path.rstrip("/").endswith("/realtime"):
            self._fatal(  # the live server answers HTTP 404 here; the fake stays in-band
                "not_found",
                f"Unknown endpoint '{url.path}'; the Realtime API lives at /v1/realtime.",
                4000,
                "invalid_request_error.not_found",
            )
            return
        model = query.get("model") or query.get("deployment")
        if not model:
            self._fatal(
                "missing_model",
                "You must provide a model parameter (e.g. ?model=gpt-realtime).",
                4000,
                "invalid_request_error.missing_model",
            )
            return
        if model not in self.config.models and not model.startswith("gpt-realtime"):
            self._fatal(
                "invalid_model",
                f"Invalid model: {model}. The model does not exist or you do not have access.",
                4000,
                "invalid_request_error.invalid_model",
            )
            return
        self._conversation_id = self._new_id("conv")
        self.session = default_session(
            self.config.dialect, self._new_id("sess"), model, int(self.config.clock()) + 3600
        )
        self._emit("session.created", session=self.session)
        if self.config.dialect == "beta":  # §12: beta announces the conversation
            self._emit(
                "conversation.created",
                conversation={"id": self._conversation_id, "object": "realtime.conversation"},
            )

    def receive_message(self, data: str | bytes) -> None:
        """Process one received WebSocket frame (text or binary).

        Frames arriving after the connection is closing or closed are ignored.

        Raises:
            RuntimeError: called before :meth:`receive_connect`.
        """
        if self._state == "new":
            raise RuntimeError("receive_connect() must be called first")
        if self._state == "closed" or self._close is not None:
            return
        if not isinstance(data, str):  # §3: text frames only
            self._error(
                "invalid_event",
                "Binary frames are not supported; send each event as a JSON text frame.",
            )
            return
        try:
            event = _json.loads(data)
        except ValueError as exc:
            self._error("invalid_json", f"Invalid JSON in client event: {exc}.")
            return
        if not isinstance(event, dict):
            self._error("invalid_type", "Expected a client event: a JSON object with a 'type'.")
            return
        if self.config.record_received:
            self.received.append(event)
        event_id = event.get("event_id")
        event_id = event_id if isinstance(event_id, str) else None
        try:
            validate_client_event(event, self.config.dialect)
        except SchemaError as exc:  # §3 / §10: reject, never close, discard entirely
            self._error(exc.code, exc.message, exc.param, event_id)
            return
        self._handlers[event["type"]](event, event_id)
        if not self.config.paced:  # burst mode: background work finishes in this call too
            while self._jobs and self._close is None:
                self._step_jobs()

    def receive_close(self) -> None:
        """The peer closed (or the transport died): stop everything, drop pending frames."""
        self._state = "closed"
        for run in self._runs:
            if run.steps is not None:
                run.steps.close()
        self._runs.clear()
        for job in self._jobs:
            job.close()
        self._jobs.clear()
        self._outbox.clear()

    def data_to_send(self) -> list[str]:
        """Drain and return the queued outgoing JSON text frames, oldest first."""
        frames, self._outbox = self._outbox, []
        if self.config.record_sent:
            self.sent += frames
        return frames

    def close_to_send(self) -> tuple[int, str] | None:
        """``(code, reason)`` once the server wants to close, else ``None``.

        The driver sends the frames from :meth:`data_to_send` first, then closes.
        """
        return self._close

    def step(self) -> None:
        """Paced mode: advance every active response and background job by one step.

        A step is one audio delta with its transcript deltas (one text delta in
        text modality), one whole function call item, or the closing sequence; a
        pending input transcription waits some steps, then completes in one.
        No-op when nothing is active.
        """
        for run in list(self._runs):
            self._advance(run)
        self._step_jobs()

    def run_until_idle(self, max_steps: int = 100_000) -> None:
        """Call :meth:`step` until no response or job is active (what the WebSocket
        driver does with ``pace_seconds=0`` when the client sends nothing meanwhile).

        Raises:
            RuntimeError: still busy after ``max_steps`` steps.
        """
        run_until_idle(self, max_steps)

    @property
    def response_active(self) -> bool:
        """True while a response has not sent ``response.done`` or a background job
        (an input transcription) is pending: the driver keeps stepping meanwhile."""
        return bool(self._runs or self._jobs)

    def _step_jobs(self) -> None:
        for job in list(self._jobs):
            try:
                next(job)
            except StopIteration:
                self._jobs.remove(job)

    def inject_speech_started(self) -> None:
        """Act as if the VAD detected speech now (§15.5), whatever the audio says.

        Emits ``input_audio_buffer.speech_started`` and, if a response is active
        and ``interrupt_response`` is on (or turn detection is off), cancels it with
        reason ``turn_detected``.
        """
        if self._state != "open" or self._close is not None or self._vad_speaking:
            return
        self._speech_started(self._vad_clock_ms + len(self._vad_pending) * 1000.0 / self._in_rate)

    def expire_session(self) -> None:
        """Hit the 60-minute limit now: ``session_expired`` error, then close 1001 (§2.1)."""
        if self._state != "open" or self._close is not None:
            return
        message = "Your session hit the maximum duration of 60 minutes."
        self._fatal("session_expired", message, 1001, message)

    @staticmethod
    def _find_api_key(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        authorization = headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            return authorization[7:].strip()
        if headers.get("api-key"):  # Azure (§2.2)
            return headers["api-key"].strip()
        if query.get("api-key"):
            return query["api-key"]
        for offered in headers.get("sec-websocket-protocol", "").split(","):
            offered = offered.strip()  # browser-style auth (§2.1)
            if offered.startswith("openai-insecure-api-key."):
                return offered.removeprefix("openai-insecure-api-key.")
        return None
