"""Model turns of the fake Gemini Live server: state, frame plumbing, replies, usage (§4.1, §12)."""

from __future__ import annotations

import base64
import itertools
import json
import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from voxengine import _json
from voxengine.audio.resample import StreamResampler
from voxengine.testing._speechlike import synthesize_words
from voxengine.testing.fakes.openai.replies import (
    FakeReply,
    FakeToolCall,
    FakeTurn,
)

from .config import FakeGeminiConfig, FakeGeminiSessions
from .wire import (
    _AUDIO_TOKENS_PER_SECOND,
    _OUTPUT_RATE,
    Json,
    _words,
)


@dataclass(eq=False)
class _Turn:
    """One model turn in progress (paced by its step generator)."""

    input_text_tokens: int
    input_audio_tokens: int
    steps: Generator[None, None, None] | None = None
    output_tokens: int = 0
    pending_calls: dict[str, str] = field(default_factory=dict)  # id -> name
    answers: list[Json] = field(default_factory=list)
    waiting: bool = False
    done: bool = False


class _Turns:
    """The connection's state, its frame plumbing and the model turns (§4.1, §12).

    The fake is built in layers, each a class over the one below using only what sits
    below it: this one, then the client inputs (:mod:`.inputs`), then setup and the
    driver API (:class:`~.server.FakeGeminiServer`).
    """

    def __init__(self, config: FakeGeminiConfig, sessions: FakeGeminiSessions | None) -> None:
        self.config = config
        self.sessions = sessions if sessions is not None else FakeGeminiSessions()
        self.received: list[Json] = []
        self.setup: Json = {}
        self.history: list[Json] = []
        self.api_version = ""
        self.resumed_from: str | None = None
        self.responder_errors: list[BaseException] = []
        #: Every frame sent, in order, when ``config.record_sent`` is on.
        self.sent: list[str | bytes] = []
        self._state: Literal["new", "connected", "open", "closed"] = "new"
        self._outbox: list[str | bytes] = []
        self._close: tuple[int, str] | None = None
        self._turn: _Turn | None = None
        self._calls = itertools.count(1)
        # user audio and VAD (§5)
        self._activity: bytearray | None = None  # manual activity in progress
        self._speech: bytearray | None = None  # VAD speech in progress
        self._pending = np.zeros(0, dtype=np.float64)
        self._silence_ms = 0.0
        self._key_ok = False
        self._resamplers: dict[int, StreamResampler] = {}  # per input rate, streaming

    # --- plumbing ----------------------------------------------------------------------------

    def _send(self, msg: Json) -> None:
        text = _json.dumps(msg)
        self._outbox.append(text.encode("utf-8") if self.config.binary_frames else text)

    def _close_with(self, code: int, reason: str) -> None:
        # RFC 6455: a close reason is at most 123 bytes of UTF-8
        reason = reason.encode()[:123].decode("utf-8", "ignore")
        if self._turn is not None and self._turn.steps is not None:
            self._turn.steps.close()
        self._turn = None
        self._close = (code, reason)

    @property
    def _audio_out(self) -> bool:
        modalities = self.setup.get("generationConfig", {}).get("responseModalities", ["AUDIO"])
        return bool(modalities == ["AUDIO"])

    @property
    def _detection(self) -> Json:
        config: Json = self.setup.get("realtimeInputConfig", {})
        detection: Json = config.get("automaticActivityDetection", {})
        return detection

    @property
    def _manual(self) -> bool:
        return self._detection.get("disabled") is True

    @property
    def _barge_in(self) -> bool:
        config = self.setup.get("realtimeInputConfig", {})
        return bool(config.get("activityHandling") != "NO_INTERRUPTION")

    # --- model turns (§4.1, §12) -------------------------------------------------------------

    def _reply(self, turn: FakeTurn) -> FakeReply | None:
        try:
            return self.config.responder(turn)
        except Exception as exc:  # §9: the service reports failures by closing
            self.responder_errors.append(exc)
            self._close_with(1011, "Internal error occurred.")
            return None

    def _input_tokens(self) -> tuple[int, int]:
        text = _words(json.dumps(self.setup.get("systemInstruction", {})))
        text += _words(json.dumps(self.setup.get("tools", [])))
        audio = 0.0
        for content in self.history:
            for part in content["parts"]:
                if "audioSeconds" in part:
                    audio += part["audioSeconds"]
                else:
                    text += _words(json.dumps(part))
        return text, math.ceil(audio * _AUDIO_TOKENS_PER_SECOND)

    def _respond(self, user_turn: FakeTurn) -> None:
        reply = self._reply(user_turn)
        if reply is None:
            return
        text_tokens, audio_tokens = self._input_tokens()
        turn = _Turn(input_text_tokens=text_tokens, input_audio_tokens=audio_tokens)
        turn.steps = self._turn_steps(turn, reply)
        self._turn = turn
        self._run(turn)

    def _run(self, turn: _Turn) -> None:
        self._advance(turn)
        if not self.config.paced:
            while self._turn is turn and not turn.done and not turn.waiting:
                self._advance(turn)

    def _advance(self, turn: _Turn) -> None:
        if turn.steps is not None:
            next(turn.steps, None)

    def _turn_steps(self, turn: _Turn, reply: FakeReply) -> Generator[None, None, None]:
        """§12.2-§12.4: model content, then a blocking toolCall or the turn's end."""
        words = reply.text.split()
        if words:
            yield from self._content_steps(turn, words)
        if reply.tool_calls:
            yield
            self._tool_call(turn, reply.tool_calls)
            return
        yield
        self._send({"serverContent": {"generationComplete": True}})
        yield
        self._finish(turn)

    def _content_steps(self, turn: _Turn, words: list[str]) -> Generator[None, None, None]:
        model_words: list[str] = []
        if not self._audio_out:
            for index, word in enumerate(words):
                yield
                piece = word if index == 0 else f" {word}"
                model_words.append(word)
                turn.output_tokens += 1
                self._send({"serverContent": {"modelTurn": {"parts": [{"text": piece}]}}})
            self.history.append({"role": "model", "parts": [{"text": " ".join(model_words)}]})
            return
        samples = synthesize_words(
            words, seconds_per_word=self.config.seconds_per_word, sample_rate=_OUTPUT_RATE
        )
        data = bytes(samples.astype("<i2").tobytes())
        slot = round(self.config.seconds_per_word * _OUTPUT_RATE)
        chunk = max(1, round(self.config.audio_chunk_seconds * _OUTPUT_RATE))
        transcribe = "outputAudioTranscription" in self.setup
        spoken = 0
        try:
            for start in range(0, len(samples), chunk):
                yield
                end = start + chunk
                chunk_bytes = data[start * 2 : end * 2]
                turn.output_tokens += math.ceil(len(chunk_bytes) / 2 / _OUTPUT_RATE * 25)
                blob = {
                    "mimeType": "audio/pcm;rate=24000",
                    "data": base64.b64encode(chunk_bytes).decode(),
                }
                self._send({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
                fragment = []
                while spoken < len(words) and spoken * slot < end:
                    fragment.append(words[spoken])
                    spoken += 1
                if fragment and transcribe:
                    text = " ".join(fragment)
                    text = text if spoken == len(fragment) else f" {text}"
                    self._send({"serverContent": {"outputTranscription": {"text": text}}})
        finally:  # also on interruption: the model heard itself say this much
            self.history.append({"role": "model", "parts": [{"text": " ".join(words[:spoken])}]})

    def _tool_call(self, turn: _Turn, calls: tuple[FakeToolCall, ...]) -> None:
        """§6: one ``toolCall`` with every call; the turn blocks for the responses."""
        entries = []
        for call in calls:
            call_id = f"function-call-{next(self._calls)}"
            try:
                args = json.loads(call.arguments or "{}")
            except ValueError:
                args = {}
            turn.pending_calls[call_id] = call.name
            turn.output_tokens += _words(call.name) + max(1, len(call.arguments) // 4)
            entries.append({"id": call_id, "name": call.name, "args": args})
            self.history.append(
                {
                    "role": "model",
                    "parts": [{"functionCall": {"id": call_id, "name": call.name, "args": args}}],
                }
            )
        turn.waiting = True
        self._send({"toolCall": {"functionCalls": entries}})

    def _usage(self, turn: _Turn) -> Json:
        """§4.2 Developer API usage for one turn."""
        prompt = turn.input_text_tokens + turn.input_audio_tokens
        prompt_details = [
            {"modality": modality, "tokenCount": count}
            for modality, count in (
                ("TEXT", turn.input_text_tokens),
                ("AUDIO", turn.input_audio_tokens),
            )
            if count
        ]
        usage: Json = {
            "promptTokenCount": prompt,
            "responseTokenCount": turn.output_tokens,
            "totalTokenCount": prompt + turn.output_tokens,
        }
        if prompt_details:
            usage["promptTokensDetails"] = prompt_details
        if turn.output_tokens:
            modality = "AUDIO" if self._audio_out else "TEXT"
            usage["responseTokensDetails"] = [
                {"modality": modality, "tokenCount": turn.output_tokens}
            ]
        return usage

    def _finish(self, turn: _Turn) -> None:
        """``turnComplete`` + ``usageMetadata``, then a resumption handle (§12.2, §11 item 9)."""
        turn.done = True
        if self._turn is turn:
            self._turn = None
        self._send({"serverContent": {"turnComplete": True}, "usageMetadata": self._usage(turn)})
        if "sessionResumption" in self.setup:
            handle = self.sessions.issue(self.history)
            self._send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})

    def _interrupt(self) -> None:
        """§5 / §12.5 barge-in: ``interrupted``, cancel pending calls, ``turnComplete``."""
        turn = self._turn
        if turn is None:
            return
        if turn.steps is not None:
            turn.steps.close()
        self._send({"serverContent": {"interrupted": True}})
        if turn.pending_calls:
            self._send({"toolCallCancellation": {"ids": list(turn.pending_calls)}})
            turn.pending_calls.clear()
        self._finish(turn)
