"""A protocol-faithful fake of the Gemini Live server, as a sans-I/O state machine.

One :class:`FakeGeminiServer` models the server side of ONE ``BidiGenerateContent``
WebSocket connection of the Developer API, built from the fake-server checklist of the
shared notes (``gemini-live.md`` §11) and the transcripts of §12. It does no I/O: a
driver calls :meth:`~FakeGeminiServer.receive_connect` with the upgrade request, feeds
every frame to :meth:`~FakeGeminiServer.receive_message`, sends what
:meth:`~FakeGeminiServer.data_to_send` returns (binary frames by default, like the real
server, §1) and closes once :meth:`~FakeGeminiServer.close_to_send` returns a code.
``voxengine.testing.run_fake_gemini_server`` is such a driver.

What it checks (§11): the endpoint path and API key (bad key → close 1007 when the
first message arrives; the upgrade itself succeeds), ``setup``
first and exactly once (else 1007), the model (unknown → 1008), every setup field
name (unknown → 1007, like the proto parser), one top-level key per message and one
field per ``realtimeInput``; camelCase and snake_case are both accepted at every level.
What it does: text turns (``clientContent``/``realtimeInput.text``), audio turns with
an energy VAD on 16 kHz PCM16 (§5) or ``activityStart``/``activityEnd`` when activity
detection is disabled, barge-in (``interrupted`` → ``toolCallCancellation`` →
``turnComplete``, §12.5), function calls that block until the ``toolResponse``
(§6), input/output transcription, ``usageMetadata``, resumption handles that a later
connection can resume (§7), and ``goAway`` on request.

What the assistant says comes from the same :data:`~voxengine.testing.Responder` as
the fake OpenAI server, so one responder scripts both fakes.

Contract: public methods never raise on anything a *client* sends (bad input closes
the connection with the real close code and reason, §9); they raise ``RuntimeError``
only on driver misuse. A responder exception closes with 1011 and is kept in
:attr:`FakeGeminiServer.responder_errors`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from voxengine import _json
from voxengine.testing._driver import run_until_idle

from .config import _DEFAULT_CONFIG, FakeGeminiConfig, FakeGeminiSessions
from .inputs import _Inputs
from .wire import (
    _AUDIO_ONLY,
    _BAD_KEY,
    _ENUMS,
    _GENERATION_FIELDS,
    _INVALID_ARGUMENT,
    _NESTED_FIELDS,
    _PATH,
    _SETUP_FIELDS,
    _TOOL_KINDS,
    Json,
    _Close,
    _normalize,
)


class FakeGeminiServer(_Inputs):
    """Server side of one Gemini Live connection (sans-I/O).

    Attributes:
        config: the shared configuration.
        received: every client message as parsed (original casing), in order.
        setup: the accepted ``setup`` object, camelCased (``{}`` before it arrives).
        history: the conversation as Content turns (``role`` user/model), audio omitted.
        api_version: the version named in the request path.
        resumed_from: the handle this connection resumed, if any.
        responder_errors: exceptions raised by the responder.
        sent: every frame sent, when ``config.record_sent`` is on.
    """

    def __init__(
        self,
        config: FakeGeminiConfig = _DEFAULT_CONFIG,
        sessions: FakeGeminiSessions | None = None,
    ) -> None:
        super().__init__(config, sessions)

    # --- driver API ----------------------------------------------------------------------

    def receive_connect(self, path: str, headers: Mapping[str, str]) -> None:
        """Process the upgrade request (§2, §11 item 1); ``path`` includes the query.

        Raises:
            RuntimeError: called twice.
        """
        if self._state != "new":
            raise RuntimeError("receive_connect() may be called only once")
        self._state = "connected"
        url = urlsplit(path)
        match = _PATH.match(url.path)
        if match is None:
            self._close = (1008, "Requested entity was not found.")
            return
        self.api_version = match.group(1)
        lowered = {name.lower(): value for name, value in headers.items()}
        query = {name: values[-1] for name, values in parse_qs(url.query).items()}
        key = lowered.get("x-goog-api-key") or query.get("key")
        # The upgrade succeeds; the refusal comes in-band, when the setup arrives (§9).
        self._key_ok = bool(key) and (self.config.api_keys is None or key in self.config.api_keys)

    def receive_message(self, data: str | bytes) -> None:
        """Process one client frame (text, or binary UTF-8 JSON).

        Raises:
            RuntimeError: called before :meth:`receive_connect`.
        """
        if self._state == "new":
            raise RuntimeError("receive_connect() must be called first")
        if self._state == "closed" or self._close is not None:
            return
        try:
            self._dispatch(data)
        except _Close as close:
            self._close_with(close.code, close.reason)

    def receive_close(self) -> None:
        """The peer closed (or the transport died): stop and drop pending frames."""
        self._state = "closed"
        if self._turn is not None and self._turn.steps is not None:
            self._turn.steps.close()
        self._turn = None
        self._outbox.clear()

    def data_to_send(self) -> list[str | bytes]:
        """Drain the queued frames (binary unless ``config.binary_frames`` is off)."""
        frames, self._outbox = self._outbox, []
        if self.config.record_sent:
            self.sent += frames
        return frames

    def close_to_send(self) -> tuple[int, str] | None:
        """``(code, reason)`` once the server wants to close, else ``None``."""
        return self._close

    @property
    def response_active(self) -> bool:
        """True while a model turn is generating (not waiting for a tool response)."""
        return self._turn is not None and not self._turn.waiting and not self._turn.done

    def step(self) -> None:
        """Paced mode: send the next message of the running turn (no-op when idle)."""
        if self.response_active and self._close is None:
            assert self._turn is not None
            self._advance(self._turn)

    def run_until_idle(self, max_steps: int = 100_000) -> None:
        """Call :meth:`step` until no turn is generating (what the WebSocket driver does
        with ``pace_seconds=0`` when the client sends nothing meanwhile).

        Raises:
            RuntimeError: still busy after ``max_steps`` steps.
        """
        run_until_idle(self, max_steps)

    def go_away(self, time_left: float = 50.0) -> None:
        """Warn that the connection ends in ``time_left`` seconds (§7, §11 item 10)."""
        if self._state == "open" and self._close is None:
            seconds = f"{time_left:g}s"
            self._send({"goAway": {"timeLeft": seconds}})

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection now with ``code``/``reason`` (e.g. after :meth:`go_away`)."""
        if self._state != "closed" and self._close is None:
            self._close_with(code, reason)

    def _dispatch(self, data: str | bytes) -> None:
        try:
            raw = _json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise _Close(1007, "Invalid JSON payload received.") from None
        if not isinstance(raw, dict):
            raise _Close(1007, "Invalid JSON payload received.")
        self.received.append(raw)
        msg = _normalize(raw)
        if len(msg) != 1:  # §1: exactly one top-level key
            raise _Close(1007, _INVALID_ARGUMENT)
        ((kind, body),) = msg.items()
        if not self._key_ok:
            raise _Close(1007, _BAD_KEY)
        if self._state != "open":
            if kind != "setup":  # §11 item 2
                raise _Close(1007, _INVALID_ARGUMENT)
            self._on_setup(body)
            return
        if kind == "setup":
            raise _Close(1007, _INVALID_ARGUMENT)
        if kind not in _NESTED_FIELDS or not isinstance(body, dict):
            raise _Close(
                1007, f'Invalid JSON payload received. Unknown name "{kind}": Cannot find field.'
            )
        self._check_fields(kind, body)
        if kind == "clientContent":
            self._on_client_content(body)
        elif kind == "realtimeInput":
            self._on_realtime_input(body)
        else:
            self._on_tool_response(body)

    @staticmethod
    def _check_fields(where: str, body: Json) -> None:
        allowed = _NESTED_FIELDS.get(where)
        if allowed is None:
            return
        for name, value in body.items():
            if name not in allowed:
                raise _Close(
                    1007,
                    f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
                    "Cannot find field.",
                )
            if name in _ENUMS and value not in _ENUMS[name]:
                raise _Close(
                    1007,
                    f"Invalid value at '{where}.{name}', \"{value}\"",
                )
            if isinstance(value, dict):
                FakeGeminiServer._check_fields(name, value)

    # --- setup (§3.1) ------------------------------------------------------------------------

    def _on_setup(self, setup: Any) -> None:
        if not isinstance(setup, dict):
            raise _Close(1007, _INVALID_ARGUMENT)
        for name, value in setup.items():
            if name not in _SETUP_FIELDS:
                raise _Close(
                    1007,
                    f"Invalid JSON payload received. Unknown name \"{name}\" at 'setup': "
                    "Cannot find field.",
                )
            if isinstance(value, dict):
                self._check_fields(name, value)
        generation = setup.get("generationConfig", {})
        for name in generation:
            if name not in _GENERATION_FIELDS:
                raise _Close(
                    1007,
                    f'Invalid JSON payload received. Unknown name "{name}" at '
                    "'setup.generation_config': Cannot find field.",
                )
        for tool in setup.get("tools", []):
            if not isinstance(tool, dict) or not set(tool) <= _TOOL_KINDS:
                raise _Close(1007, _INVALID_ARGUMENT)
            for declaration in tool.get("functionDeclarations", []):
                if not isinstance(declaration, dict) or not declaration.get("name"):
                    raise _Close(1007, _INVALID_ARGUMENT)
        model = setup.get("model")
        if not isinstance(model, str) or not model:
            raise _Close(1007, _INVALID_ARGUMENT)
        model_id = model.removeprefix("models/")
        if model_id not in self.config.models:
            raise _Close(
                1008,
                f"models/{model_id} is not found for API version {self.api_version}, or is "
                "not supported for bidiGenerateContent. Call ListModels to see the list of "
                "available models and their supported methods.",
            )
        modalities = generation.get("responseModalities", ["AUDIO"])
        if not isinstance(modalities, list) or len(modalities) != 1:
            raise _Close(1007, _INVALID_ARGUMENT)
        if modalities[0] not in ("AUDIO", "TEXT"):
            raise _Close(1007, _INVALID_ARGUMENT)
        if model_id in _AUDIO_ONLY or ("native-audio" in model_id and modalities[0] != "AUDIO"):
            raise _Close(1007, "Cannot extract voices from a non-audio request.")
        resumption = setup.get("sessionResumption")
        if isinstance(resumption, dict) and resumption.get("handle"):
            handle = resumption["handle"]
            if handle not in self.sessions.history:
                raise _Close(1007, _INVALID_ARGUMENT)
            self.history = copy.deepcopy(self.sessions.history[handle])
            self.resumed_from = handle
        self.setup = setup
        self._state = "open"
        self._send({"setupComplete": {}})
