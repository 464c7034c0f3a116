"""Client input of the fake Gemini Live server: content, realtime audio and VAD, tool responses."""

from __future__ import annotations

import copy
import json
import math
import re

import numpy as np

from voxengine.audio.resample import StreamResampler
from voxengine.testing._speechlike import decode_to_float
from voxengine.testing.fakes.openai.replies import FakeTurn

from .turns import _Turns
from .wire import (
    _INPUT_RATE,
    _INVALID_ARGUMENT,
    _MAX_INPUT_RATE,
    _MIN_INPUT_RATE,
    Json,
    _Close,
    _decode_base64,
)


class _Inputs(_Turns):
    """``clientContent``, ``realtimeInput`` (audio, VAD, activity) and ``toolResponse``."""

    # --- client content (§3.2) ---------------------------------------------------------------

    def _on_client_content(self, body: Json) -> None:
        turns = body.get("turns", [])
        if not isinstance(turns, list):
            raise _Close(1007, _INVALID_ARGUMENT)
        if self._turn is not None:  # §3.2: any clientContent interrupts the generation
            self._interrupt()
        for turn in turns:
            if not isinstance(turn, dict) or turn.get("role", "user") not in ("user", "model"):
                raise _Close(1007, _INVALID_ARGUMENT)
            self.history.append(self._stored(turn))
        if body.get("turnComplete") is True:
            self._respond(self._turn_for_history())

    def _stored(self, content: Json) -> Json:
        """A Content turn for :attr:`history`, with inline audio replaced by its length."""
        parts: list[Json] = []
        for part in content.get("parts", []):
            if not isinstance(part, dict):
                raise _Close(1007, _INVALID_ARGUMENT)
            inline = part.get("inlineData")
            if isinstance(inline, dict):
                audio = self._decode_audio(inline)
                parts.append({"audioSeconds": len(audio) / 2 / _INPUT_RATE})
            else:
                parts.append(copy.deepcopy(part))
        return {"role": content.get("role", "user"), "parts": parts}

    def _turn_for_history(self) -> FakeTurn:
        history = tuple(copy.deepcopy(self.history))
        for content in reversed(self.history):
            if content["role"] != "user":
                break
            texts = [p["text"] for p in content["parts"] if isinstance(p.get("text"), str)]
            if texts:
                return FakeTurn(
                    kind="text", text=" ".join(texts), audio_seconds=0.0, history=history
                )
            seconds = sum(p.get("audioSeconds", 0.0) for p in content["parts"])
            if seconds:
                return FakeTurn(kind="audio", text="", audio_seconds=seconds, history=history)
        return FakeTurn(kind="text", text="", audio_seconds=0.0, history=history)

    # --- realtime input (§3.3, §5) -----------------------------------------------------------

    def _decode_audio(self, blob: Json) -> bytes:
        """PCM16 of an ``audio/pcm[;rate=N]`` blob, resampled to 16 kHz (§1, §3.3).

        Like the proto JSON parser, ``data`` may use the standard or the URL-safe
        base64 alphabet (the ``google-genai`` SDK sends URL-safe), padded or not.
        """
        mime = blob.get("mimeType", "")
        if not isinstance(mime, str) or not mime.startswith("audio/pcm"):
            raise _Close(1007, _INVALID_ARGUMENT)
        found = re.search(r"rate=(\d+)", mime)
        rate = int(found.group(1)) if found is not None else _INPUT_RATE
        if not _MIN_INPUT_RATE <= rate <= _MAX_INPUT_RATE:
            raise _Close(1007, _INVALID_ARGUMENT)
        audio = _decode_base64(blob.get("data", ""))
        if len(audio) % 2:
            raise _Close(1007, _INVALID_ARGUMENT)
        if rate == _INPUT_RATE:
            return audio
        resampler = self._resamplers.get(rate)
        if resampler is None:
            resampler = self._resamplers[rate] = StreamResampler(rate, _INPUT_RATE)
        return resampler.process(audio)

    def _on_realtime_input(self, body: Json) -> None:
        if len(body) != 1:  # §3.3: one field per message
            raise _Close(1007, _INVALID_ARGUMENT)
        ((kind, value),) = body.items()
        if kind in ("activityStart", "activityEnd") and not self._manual:
            raise _Close(
                1007,
                "Explicit activity control is not supported when automatic "
                "activity detection is enabled.",
            )
        if kind == "audioStreamEnd" and self._manual:
            raise _Close(1007, _INVALID_ARGUMENT)
        if kind == "audio":
            self._on_audio(self._decode_audio(value if isinstance(value, dict) else {}))
        elif kind == "mediaChunks":
            for chunk in value if isinstance(value, list) else []:
                blob = chunk if isinstance(chunk, dict) else {}
                if str(blob.get("mimeType", "")).startswith("audio/"):
                    self._on_audio(self._decode_audio(blob))
        elif kind == "activityStart":
            if self._activity is None:  # §3.3: nested starts are ignored
                if self._turn is not None and self._barge_in:
                    self._interrupt()
                self._activity = bytearray()
        elif kind == "activityEnd":
            self._end_activity()
        elif kind == "audioStreamEnd":
            if self._speech is not None:
                self._user_audio_turn(bytes(self._speech))
        elif kind == "text":
            if not isinstance(value, str):
                raise _Close(1007, _INVALID_ARGUMENT)
            if self._turn is not None and self._barge_in:
                self._interrupt()
            self.history.append({"role": "user", "parts": [{"text": value}]})
            self._respond(self._turn_for_history())
        # video frames are accepted and ignored

    def _end_activity(self) -> None:
        if self._activity is None:
            return
        audio, self._activity = bytes(self._activity), None
        if not audio:  # §3.3 pitfall: an empty activity is a failed precondition
            self._send({"serverContent": {"turnComplete": True}})
            raise _Close(1007, "Precondition check failed.")
        self._user_audio_turn(audio)

    def _on_audio(self, audio: bytes) -> None:
        if self._manual:
            if self._activity is not None:  # §3.3: audio outside an activity is ignored
                self._activity += audio
            return
        samples = np.concatenate([self._pending, decode_to_float(audio, "pcm16")])
        window = _INPUT_RATE // 100
        threshold = self.config.vad_threshold
        if self._detection.get("startOfSpeechSensitivity") == "START_SENSITIVITY_LOW":
            threshold *= 2
        silence_ms = float(
            self._detection.get("silenceDurationMs", self.config.silence_duration * 1000)
        )
        count = len(samples) // window
        for index in range(count):
            chunk = samples[index * window : (index + 1) * window]
            loud = math.sqrt(float(np.mean(chunk * chunk))) > threshold
            pcm = (np.round(chunk * 32768.0).clip(-32768, 32767).astype("<i2")).tobytes()
            if self._speech is None:
                if loud:
                    self._speech = bytearray(pcm)
                    self._silence_ms = 0.0
                    if self._turn is not None and self._barge_in:
                        self._interrupt()
                continue
            self._speech += pcm
            self._silence_ms = 0.0 if loud else self._silence_ms + 10.0
            if self._silence_ms >= silence_ms:
                self._user_audio_turn(bytes(self._speech))
        self._pending = samples[count * window :].copy()

    def _user_audio_turn(self, audio: bytes) -> None:
        """The user finished speaking: transcribe (if enabled) and answer (§12.3)."""
        self._speech = None
        self._silence_ms = 0.0
        seconds = len(audio) / 2 / _INPUT_RATE
        self.history.append({"role": "user", "parts": [{"audioSeconds": seconds}]})
        if "inputAudioTranscription" in self.setup:
            self._send(
                {"serverContent": {"inputTranscription": {"text": f"({seconds:.1f} s of audio)"}}}
            )
        if self._turn is None:
            self._respond(self._turn_for_history())

    # --- tool responses (§3.4, §6) -----------------------------------------------------------

    def _on_tool_response(self, body: Json) -> None:
        responses = body.get("functionResponses")
        if not isinstance(responses, list) or not responses:
            raise _Close(1007, _INVALID_ARGUMENT)
        turn = self._turn
        for response in responses:
            if not isinstance(response, dict) or not response.get("id"):
                raise _Close(1007, _INVALID_ARGUMENT)  # §6 item 5: id is required
            call_id = response["id"]
            if turn is None or call_id not in turn.pending_calls:
                raise _Close(1008, f"Function response id {call_id!r} does not match a call.")
            name = turn.pending_calls.pop(call_id)
            output = response.get("response", {})
            self.history.append(
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"id": call_id, "name": name, "response": output}}
                    ],
                }
            )
            turn.answers.append(output)
        assert turn is not None
        if not turn.pending_calls and turn.waiting:
            text = json.dumps(turn.answers[0] if len(turn.answers) == 1 else turn.answers)
            reply_turn = FakeTurn(
                kind="tool_output", text=text, audio_seconds=0.0, history=tuple(self.history)
            )
            turn.answers = []
            turn.waiting = False
            reply = self._reply(reply_turn)
            if reply is None:
                return
            turn.steps = self._turn_steps(turn, reply)
            self._run(turn)
