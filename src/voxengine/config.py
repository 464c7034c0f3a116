"""Session configuration shared by every provider: frozen and validated at construction.

``None`` in a :class:`SessionConfig` field means "leave the provider's value alone",
both at connect time and in a mid-session update.
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voxengine.errors import ConfigError

__all__ = [
    "Modality",
    "ReconnectPolicy",
    "ReplyPolicy",
    "SessionConfig",
    "ToolSpec",
    "TurnDetection",
    "TurnDetectionConfig",
    "WatchdogPolicy",
]


class Modality(enum.Enum):
    """What the model outputs."""

    AUDIO = "audio"
    TEXT = "text"


class TurnDetection(enum.Enum):
    """Who decides when the user's turn ends.

    SERVER_VAD and SEMANTIC_VAD run at the provider; LOCAL_VAD runs in voxengine and
    commits turns itself; MANUAL leaves commits to the application. Client and
    server VAD never both drive commits: with LOCAL_VAD the provider's VAD is off.
    """

    SERVER_VAD = "server_vad"
    SEMANTIC_VAD = "semantic_vad"
    LOCAL_VAD = "local_vad"
    MANUAL = "manual"


class ReplyPolicy(enum.Enum):
    """What a reply request does while another response is still active.

    A realtime service runs one response at a time per conversation: OpenAI refuses a
    second ``response.create`` (``conversation_already_has_active_response``), so
    without a policy the message that asked for it would never get its own reply
    (a VAD-started reply playing, two ``send_text`` in a row, a tool result sent
    during a response). The client protocol, which sees every response start and
    end, applies the policy:

    * ``QUEUE`` (default): the request waits, in order, until the active response
      is done, then goes out; every request gets its own response.
    * ``INTERRUPT``: the active response is cancelled (its ``ResponseDone`` says
      ``CANCELLED``) and the new request goes out once the cancellation is done.

    A queued request that can no longer be sent (the connection closed first) is
    reported as a ``ProviderErrorEvent`` with code ``response_request_dropped``.
    Gemini Live has no cancel message: its new turn always interrupts the active one
    (the interrupted response ends with ``ResponseDone(CANCELLED, "interrupted")``)
    under ``INTERRUPT``, and waits for the model's turn to complete under ``QUEUE``.
    """

    QUEUE = "queue"
    INTERRUPT = "interrupt"


_EAGERNESS = frozenset({"low", "medium", "high", "auto"})


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnDetectionConfig:
    """Turn detection settings; durations are seconds.

    Raises:
        ConfigError: on out-of-range values.
    """

    mode: TurnDetection = TurnDetection.SERVER_VAD
    threshold: float = 0.5
    prefix_padding: float = 0.3
    silence_duration: float = 0.5
    create_response: bool = True
    interrupt_response: bool = True
    eagerness: str = "auto"
    idle_timeout: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.mode, TurnDetection):
            raise ConfigError(f"mode must be a TurnDetection, got {self.mode!r}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be within 0..1, got {self.threshold}")
        for name in ("prefix_padding", "silence_duration"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name} must be a non-negative number of seconds")
        if self.idle_timeout is not None and self.idle_timeout <= 0:
            raise ConfigError("idle_timeout must be positive seconds or None")
        if self.eagerness not in _EAGERNESS:
            raise ConfigError(f"eagerness must be one of {sorted(_EAGERNESS)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A function the model may call; ``parameters`` is a JSON Schema object.

    Raises:
        ConfigError: if the name is not a valid function name or the schema is not a
            JSON-serialisable object schema.
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "_-" for c in self.name):
            raise ConfigError(f"tool name must match [A-Za-z0-9_-]+, got {self.name!r}")
        if len(self.name) > 64:
            raise ConfigError("tool name must be at most 64 characters")
        if not isinstance(self.parameters, Mapping) or self.parameters.get("type") != "object":
            raise ConfigError(f"tool {self.name!r}: parameters must be an object JSON Schema")
        try:
            json.dumps(self.parameters)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"tool {self.name!r}: parameters are not JSON") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """Settings applied at connect and changeable with ``update_session``.

    Attributes:
        instructions: system prompt.
        voice: provider voice name (e.g. ``"marin"``, ``"alloy"``).
        modalities: output modalities; OpenAI accepts exactly one of AUDIO or TEXT
            (audio always comes with a transcript).
        turn_detection: VAD settings; ``TurnDetectionConfig(mode=MANUAL)`` for push-to-talk.
        input_transcription_model: model that transcribes the user's audio, or ``None``.
        tools: functions the model may call.
        tool_choice: ``"auto"``, ``"none"``, ``"required"`` or a tool name.
        max_output_tokens: cap per response.
        temperature: sampling temperature where the provider supports it.
        reply_policy: what a reply request does while a response is active (see
            :class:`ReplyPolicy`; ``None`` keeps the current one, ``QUEUE`` at first).
            A client-side setting: nothing is sent to the service.
    """

    instructions: str | None = None
    voice: str | None = None
    modalities: tuple[Modality, ...] | None = None
    turn_detection: TurnDetectionConfig | None = None
    input_transcription_model: str | None = None
    tools: tuple[ToolSpec, ...] | None = None
    tool_choice: str | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    reply_policy: ReplyPolicy | None = None

    def __post_init__(self) -> None:
        if self.reply_policy is not None and not isinstance(self.reply_policy, ReplyPolicy):
            raise ConfigError(f"reply_policy must be a ReplyPolicy, got {self.reply_policy!r}")
        if self.modalities is not None and (
            not self.modalities or not all(isinstance(m, Modality) for m in self.modalities)
        ):
            raise ConfigError("modalities must be a non-empty tuple of Modality")
        if self.max_output_tokens is not None and self.max_output_tokens < 1:
            raise ConfigError("max_output_tokens must be at least 1")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise ConfigError("temperature must be within 0..2")
        if self.tools is not None:
            names = [t.name for t in self.tools]
            if len(set(names)) != len(names):
                raise ConfigError(f"duplicate tool names in {names}")
        if (
            self.tool_choice is not None
            and self.tool_choice not in {"auto", "none", "required"}
            and (self.tools is None or self.tool_choice not in {t.name for t in self.tools})
        ):
            raise ConfigError(
                f"tool_choice must be auto, none, required or a tool name, got {self.tool_choice!r}"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconnectPolicy:
    """How a provider recovers from a lost connection.

    Attributes:
        enabled: reconnect after an unexpected drop (never after ``disconnect()``, an
            authentication refusal or a configuration refusal).
        max_attempts: consecutive failed recoveries before the session is given up
            (a :class:`~voxengine.events.SessionClosed` carrying the reason). A
            recovery fails when the new connection cannot be opened, or when it is
            lost again before it was healthy; only a healthy session (one that
            completed a response, or stayed up ``healthy_after`` seconds) resets the
            count. So a server that accepts every handshake and drops right after
            sees at most ``max_attempts + 1`` connections.
        initial_delay: seconds before the first attempt; doubles with each consecutive
            failed recovery up to ``max_delay`` (a server's ``Retry-After`` is honoured
            when longer).
        max_delay: the longest wait between attempts.
        healthy_after: seconds a session must stay up (without completing a response)
            to count as healthy and reset ``max_attempts`` and the backoff.
        audio_buffer: seconds of user audio kept for re-sending: audio sent while
            reconnecting, and audio of the current turn not yet committed. Older
            audio is dropped and reported (:class:`~voxengine.events.AudioDropped`).
    """

    enabled: bool = True
    max_attempts: int = 5
    initial_delay: float = 0.25
    max_delay: float = 8.0
    audio_buffer: float = 30.0
    healthy_after: float = 10.0

    def __post_init__(self) -> None:
        if self.max_attempts < 0:
            raise ConfigError("max_attempts must be >= 0")
        if not (math.isfinite(self.healthy_after) and self.healthy_after > 0):
            raise ConfigError("healthy_after must be positive seconds")
        if not 0 <= self.initial_delay <= self.max_delay:
            raise ConfigError("need 0 <= initial_delay <= max_delay")
        if self.audio_buffer < 0:
            raise ConfigError("audio_buffer must be >= 0 seconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class WatchdogPolicy:
    """Detection of a provider that stops talking.

    Attributes:
        response_stall: seconds without progress while a response is running (or was
            requested) before a :class:`~voxengine.events.StallDetected` event
            (``None``: never). Progress is output of the response: audio, text and
            transcript deltas, function-call arguments, its start and its end;
            keep-alive traffic such as ``rate_limits.updated`` is not progress.
        reconnect: after reporting, abandon the stalled connection and reconnect (the
            response in flight is requested again on the new connection).
        check_interval: how often, in seconds, the watchdog looks again after it
            reported a stall (until the response progresses or ends). Otherwise it
            wakes only when the silence would reach ``response_stall``, and not at all
            between responses.
    """

    response_stall: float | None = 15.0
    reconnect: bool = True
    check_interval: float = 0.25

    def __post_init__(self) -> None:
        if self.response_stall is not None and self.response_stall <= 0:
            raise ConfigError("response_stall must be positive seconds or None")
        if self.check_interval <= 0:
            raise ConfigError("check_interval must be positive seconds")
