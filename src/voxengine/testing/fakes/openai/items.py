"""Conversation items of the fake OpenAI Realtime server.

``conversation.item.create`` / ``retrieve`` / ``delete`` / ``truncate`` (§5, §7).
"""

from __future__ import annotations

import base64
import binascii
import copy
import math

from .audio import _Audio
from .wire import (
    AudioBlob,
    Json,
    bytes_per_ms,
    sample_width,
    split_pieces,
)


class _Items(_Audio):
    """``conversation.item.*`` client events over the default conversation."""

    def _on_item_create(self, event: Json, event_id: str | None) -> None:
        item: Json = copy.deepcopy(event["item"])
        if "id" in item and self._find_item(item["id"]) is not None:
            self._error(
                "invalid_value",
                f"Item with id '{item['id']}' already exists.",
                "item.id",
                event_id,
            )
            return
        audio = bytearray()
        if item["type"] == "message":
            for index, part in enumerate(item["content"]):
                if part["type"] in ("output_audio", "audio") and item["role"] == "assistant":
                    self._error(  # §5: assistant audio cannot be created by the client
                        "invalid_value",
                        "Assistant messages cannot contain audio content created by the client.",
                        f"item.content[{index}].type",
                        event_id,
                    )
                    return
                if part["type"] == "input_audio":
                    try:
                        data = base64.b64decode(part.pop("audio", ""), validate=True)
                        valid = len(data) % sample_width(self._in_encoding) == 0
                    except (binascii.Error, ValueError):
                        data, valid = b"", False
                    if not valid:
                        self._error(
                            "invalid_value",
                            "Invalid audio: not valid base64 audio in the input format.",
                            f"item.content[{index}].audio",
                            event_id,
                        )
                        return
                    audio += data
                    part.setdefault("transcript", None)
        elif item["type"] == "function_call_output" and not any(
            known.get("type") == "function_call" and known.get("call_id") == item["call_id"]
            for known in self.items
        ):
            self._error(  # §9: the output must answer a call in the conversation
                "invalid_value",
                f"Tool call ID '{item['call_id']}' not found in conversation.",
                "item.call_id",
                event_id,
            )
            return
        position = len(self.items)
        anchor = event.get("previous_item_id")
        if anchor == "root":
            position = 0
        elif anchor is not None:
            found = next((i for i, x in enumerate(self.items) if x.get("id") == anchor), None)
            if found is None:
                self._error(
                    "invalid_value",
                    f"Previous item with id '{anchor}' not found.",
                    "previous_item_id",
                    event_id,
                )
                return
            position = found + 1
        if item["type"] == "function_call":
            item.setdefault("call_id", self._new_id("call"))
        item.pop("object", None)
        item = {  # the server's key order: id, type, status, then the rest (§15.2)
            "id": item.pop("id", None) or self._new_id("item"),
            "type": item.pop("type"),
            "status": item.pop("status", "completed"),
            **item,
        }
        previous = self.items[position - 1]["id"] if position > 0 else None
        self.items.insert(position, item)
        if audio:
            self._audio[item["id"]] = AudioBlob(bytes(audio), self._in_encoding)
        self._emit_item_added(item, previous)
        self._emit_item_done(item, previous)
        if audio and all(p.get("transcript") is None for p in item["content"]):
            self._transcribe(item)

    def _item_not_found(self, item_id: str, event_id: str | None) -> None:
        self._error(
            "invalid_value", f"Item with item_id '{item_id}' not found.", "item_id", event_id
        )

    def _on_item_retrieve(self, event: Json, event_id: str | None) -> None:
        item = self._find_item(event["item_id"])
        if item is None:
            self._item_not_found(event["item_id"], event_id)
            return
        full = copy.deepcopy(item)
        blob = self._audio.get(item["id"])
        if blob is not None:  # §5: retrieve includes the audio bytes
            for part in full.get("content", []):
                if part.get("type") in ("input_audio", "output_audio", "audio"):
                    part["audio"] = base64.b64encode(blob.data).decode("ascii")
                    break
        self._emit("conversation.item.retrieved", item=full)

    def _on_item_delete(self, event: Json, event_id: str | None) -> None:
        item = self._find_item(event["item_id"])
        if item is None:
            self._item_not_found(event["item_id"], event_id)
            return
        self.items.remove(item)
        self._audio.pop(item["id"], None)
        self._emit("conversation.item.deleted", item_id=item["id"])

    def _on_item_truncate(self, event: Json, event_id: str | None) -> None:
        # §5 / §15.5: validate, cut audio, drop the unplayed part of the transcript
        item = self._find_item(event["item_id"])
        if item is None:
            self._item_not_found(event["item_id"], event_id)
            return
        if item.get("type") != "message" or item.get("role") != "assistant":
            self._error(
                "invalid_value", "Only assistant messages can be truncated.", "item_id", event_id
            )
            return
        index = event["content_index"]
        content = item["content"]
        blob = self._audio.get(item["id"])
        if (
            index >= len(content)
            or content[index].get("type") not in ("output_audio", "audio")
            or blob is None
        ):
            self._error(
                "invalid_value",
                f"Content part {index} of item '{item['id']}' has no audio to truncate.",
                "content_index",
                event_id,
            )
            return
        end_ms = event["audio_end_ms"]
        length_ms = blob.ms
        if end_ms > length_ms:
            self._error(
                "invalid_value",
                f"Audio content of {math.floor(length_ms)}ms is already shorter than {end_ms}ms.",
                "audio_end_ms",
                event_id,
            )
            return
        width = sample_width(blob.encoding)
        cut = int(end_ms * bytes_per_ms(blob.encoding))
        blob.data = blob.data[: cut - cut % width]
        pieces = split_pieces(content[index].get("transcript") or "")
        keep = math.ceil(len(pieces) * end_ms / length_ms) if length_ms > 0 else 0
        content[index]["transcript"] = "".join(pieces[:keep]).rstrip()
        self._emit(
            "conversation.item.truncated",
            item_id=item["id"],
            content_index=index,
            audio_end_ms=end_ms,
        )
