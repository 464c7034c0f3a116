"""Session updates of the fake OpenAI Realtime server (§4, §12)."""

from __future__ import annotations

import copy

from .items import _Items
from .wire import (
    PCM_FORMAT,
    Json,
    turn_detection_with_defaults,
)


class _Session(_Items):
    """``session.update`` (partial update, semantic checks, full echo) and ``session.close``."""

    def _on_session_update(self, event: Json, event_id: str | None) -> None:
        # §4 / §14 item 4: partial update, semantic checks, full echo in session.updated
        update: Json = event["session"]
        current_voice = (
            self.session["audio"]["output"]["voice"] if self._ga else self.session["voice"]
        )
        if self._ga:
            if update["type"] != "realtime":
                self._error(
                    "invalid_value",
                    "Cannot change the session type of a realtime session.",
                    "session.type",
                    event_id,
                )
                return
            new_voice = update.get("audio", {}).get("output", {}).get("voice", current_voice)
            voice_param = "session.audio.output.voice"
        else:
            new_voice = update.get("voice", current_voice)
            voice_param = "session.voice"
        if not self._voice_ok(new_voice, voice_param, event_id):
            return
        if "model" in update and update["model"] != self.session["model"]:
            self._error(
                "invalid_value", "The session model cannot be changed.", "session.model", event_id
            )
            return
        if new_voice != current_voice and self._audio_output_started:
            self._error(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
                voice_param,
                event_id,
            )
            return
        new = copy.deepcopy(self.session)
        if self._ga:
            for key, value in update.items():
                if key == "audio":
                    for side, settings in value.items():
                        for name, setting in settings.items():
                            if name == "turn_detection":
                                setting = turn_detection_with_defaults(setting, ga=True)
                            elif name == "format" and setting["type"] == "audio/pcm":
                                setting = {**PCM_FORMAT, **setting}
                            new["audio"][side][name] = copy.deepcopy(setting)
                elif key == "tools":
                    new["tools"] = [{"type": "function", **tool} for tool in value]
                else:
                    new[key] = copy.deepcopy(value)
        else:
            for key, value in update.items():
                if key == "turn_detection":
                    value = turn_detection_with_defaults(value, ga=False)
                new[key] = copy.deepcopy(value)
        detection_changed = self._turn_detection != (
            new["audio"]["input"]["turn_detection"] if self._ga else new["turn_detection"]
        )
        self.session = new
        if detection_changed:
            self._vad_reset()
        self._emit("session.updated", session=self.session)

    def _on_session_close(self, event: Json, event_id: str | None) -> None:
        self._close = (1000, "")  # §3: accepted by the live server

    def _on_output_audio_buffer_clear(self, event: Json, event_id: str | None) -> None:
        self._error(  # §5: WebRTC/SIP only
            "invalid_value",
            "output_audio_buffer.clear is only supported for WebRTC and SIP connections.",
            "type",
            event_id,
        )
