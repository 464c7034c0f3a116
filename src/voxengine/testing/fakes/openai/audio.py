"""Input audio of the fake OpenAI Realtime server.

The input buffer, the server VAD (barge-in) and input transcription (§5, §6, §9).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Generator
from typing import Any

import numpy as np

from voxengine.testing._speechlike import decode_to_float

from .config import _MAX_TRANSCRIPTION_DELAY_STEPS
from .responses import _Responses
from .wire import (
    EAGERNESS_SILENCE_MS,
    MIN_COMMIT_MS,
    AudioBlob,
    Json,
    bytes_per_ms,
    sample_width,
    word_tokens,
)


class _Audio(_Responses):
    """The input audio buffer, its energy VAD (barge-in) and input transcription."""

    # --- input audio buffer and server VAD (§5, §9, §14 item 9) -------------------------------

    def _vad_reset(self) -> None:
        self._vad_pending = np.zeros(0, dtype=np.float64)
        self._vad_clock_ms = self._total_ms
        self._vad_speaking = False
        self._vad_silence_ms = 0.0
        self._vad_item_id = None

    def _on_append(self, event: Json, event_id: str | None) -> None:
        encoding = self._in_encoding
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            self._error("invalid_value", "Invalid 'audio': not valid base64.", "audio", event_id)
            return
        if len(data) % sample_width(encoding):
            self._error(
                "invalid_value",
                "Invalid 'audio': PCM16 audio must contain an even number of bytes.",
                "audio",
                event_id,
            )
            return
        self._buffer += data
        self._total_ms += len(data) / bytes_per_ms(encoding)
        detection = self._turn_detection
        if detection is None:
            self._vad_clock_ms = self._total_ms
            return
        samples = decode_to_float(data, encoding)
        if len(self._vad_pending):
            samples = np.concatenate([self._vad_pending, samples])
        self._run_vad(samples, detection)

    def _run_vad(self, samples: np.ndarray[Any, np.dtype[np.float64]], detection: Json) -> None:
        """Energy VAD over 10 ms windows: speech if RMS > 0.02 * threshold / 0.5."""
        window = self._in_rate // 100
        threshold = 0.02 * float(detection.get("threshold", 0.5)) / 0.5
        if detection["type"] == "server_vad":
            silence_needed = float(detection["silence_duration_ms"])
        else:
            silence_needed = float(EAGERNESS_SILENCE_MS[detection["eagerness"]])
        count = len(samples) // window
        frames = samples[: count * window].reshape(count, window)
        # mean square per window in one call; compared squared, no square root needed
        energy = np.einsum("ij,ij->i", frames, frames) / window
        for loud in (energy > threshold * threshold).tolist():
            start_ms = self._vad_clock_ms
            self._vad_clock_ms += 10.0
            if not self._vad_speaking:
                if loud:
                    self._speech_started(start_ms)
            elif loud:
                self._vad_silence_ms = 0.0
            else:
                self._vad_silence_ms += 10.0
                if self._vad_silence_ms >= silence_needed:
                    self._speech_stopped(self._vad_clock_ms)
        self._vad_pending = samples[count * window :].copy()

    def _speech_started(self, at_ms: float) -> None:
        detection = self._turn_detection or {}
        prefix = float(detection.get("prefix_padding_ms", 300))
        self._vad_speaking = True
        self._vad_silence_ms = 0.0
        self._vad_item_id = self._new_id("item")
        self._vad_start_ms = round(max(self._buffer_start_ms, at_ms - prefix))
        self._emit(
            "input_audio_buffer.speech_started",
            audio_start_ms=self._vad_start_ms,
            item_id=self._vad_item_id,
        )
        active = self._default_run()
        if active is not None and detection.get("interrupt_response", True):
            self._cancel(active, "turn_detected")  # §15.5 barge-in

    def _speech_stopped(self, at_ms: float) -> None:
        detection = self._turn_detection or {}
        item_id = self._vad_item_id or self._new_id("item")
        end_ms = round(at_ms)
        self._emit("input_audio_buffer.speech_stopped", audio_end_ms=end_ms, item_id=item_id)
        per_ms = bytes_per_ms(self._in_encoding)
        width = sample_width(self._in_encoding)

        def offset(ms: float) -> int:
            raw = int((ms - self._buffer_start_ms) * per_ms)
            return max(0, min(len(self._buffer), raw - raw % width))

        data = bytes(self._buffer[offset(self._vad_start_ms) : offset(end_ms)])
        del self._buffer[: offset(end_ms)]
        self._buffer_start_ms = float(end_ms)
        self._vad_speaking = False
        self._vad_item_id = None
        self._commit_user_audio(item_id, data)
        if detection.get("create_response", True) and self._default_run() is None:
            self._create_response({}, None)

    def _on_commit(self, event: Json, event_id: str | None) -> None:
        buffered_ms = len(self._buffer) / bytes_per_ms(self._in_encoding)
        if buffered_ms < MIN_COMMIT_MS:
            self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least "
                f"100ms of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                None,
                event_id,
            )
            return
        item_id = self._vad_item_id or self._new_id("item")
        data = bytes(self._buffer)
        self._clear_buffer()
        self._commit_user_audio(item_id, data)

    def _clear_buffer(self) -> None:
        self._buffer.clear()
        self._buffer_start_ms = self._total_ms
        self._vad_speaking = False
        self._vad_silence_ms = 0.0
        self._vad_item_id = None

    def _on_clear(self, event: Json, event_id: str | None) -> None:
        self._clear_buffer()
        self._emit("input_audio_buffer.cleared")

    def _commit_user_audio(self, item_id: str, data: bytes) -> None:
        """Buffer -> user ``input_audio`` item: committed, item added/done (§9)."""
        previous = self.items[-1]["id"] if self.items else None
        item: Json = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        self.items.append(item)
        self._audio[item_id] = AudioBlob(data, self._in_encoding)
        self._emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        self._emit_item_added(item, previous)
        self._emit_item_done(item, previous)
        self._transcribe(item)

    def _transcribe(self, item: Json) -> None:
        """Input transcription, if configured (§6), timed by ``config.transcription_timing``.

        It runs asynchronously relative to the response (§9): unless the timing is
        ``"before_response"`` it becomes a job that :meth:`step` completes later.
        """
        if self._transcription is None:
            return
        timing = self.config.transcription_timing
        if timing == "before_response":
            self._emit_transcription(item)
            return
        delay = 0
        if timing == "random":
            delay = self._rng.randint(-1, _MAX_TRANSCRIPTION_DELAY_STEPS)
            if delay < 0:  # sometimes it is already done before the response starts
                self._emit_transcription(item)
                return
        self._jobs.append(self._transcription_job(item, delay, timing == "after_response"))

    def _transcription_job(
        self, item: Json, delay: int, after_response: bool
    ) -> Generator[None, None, None]:
        for _ in range(delay):
            yield
        while after_response and self._default_run() is not None:
            yield
        self._emit_transcription(item)

    def _emit_transcription(self, item: Json) -> None:
        """A deterministic transcript ``(N.N s of audio)`` with delta, completed and usage."""
        blob = self._audio.get(item["id"])
        seconds = blob.ms / 1000.0 if blob else 0.0
        transcript = f"({seconds:.1f} s of audio)"
        self._emit(
            "conversation.item.input_audio_transcription.delta",
            item_id=item["id"],
            content_index=0,
            delta=transcript,
            obfuscation=self._obfuscation(),
        )
        extra: Json = {}
        if self._ga:
            audio_tokens = math.ceil(seconds * 10)
            text_tokens = word_tokens(transcript)
            extra["usage"] = {
                "type": "tokens",
                "total_tokens": audio_tokens + text_tokens,
                "input_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                "output_tokens": text_tokens,
            }
        self._emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=item["id"],
            content_index=0,
            transcript=transcript,
            **extra,
        )
        for part in item["content"]:
            if part.get("type") == "input_audio":
                part["transcript"] = transcript
                break
