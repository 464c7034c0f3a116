"""Responses of the fake OpenAI Realtime server.

Creation, streaming steps, cancel, usage and rate limits (§8, §9, §15).
"""

from __future__ import annotations

import base64
import copy
import json
import math
from collections.abc import Generator
from typing import Any

from voxengine.testing._faults import FakeServerError
from voxengine.testing._speechlike import (
    encode_from_int16,
    speech_chunks,
)

from .replies import FakeReply, FakeToolCall, FakeTurn
from .state import _State
from .wire import (
    ENCODINGS,
    PCM_FORMAT,
    RATE_LIMIT_TOKENS,
    AudioBlob,
    Json,
    ResponseRun,
    rate,
    response_object,
    split_arguments,
    split_pieces,
    word_tokens,
)


class _Responses(_State):
    """Creates, streams and ends responses; the layer every input layer builds on."""

    def _on_response_create(self, event: Json, event_id: str | None) -> None:
        self._create_response(event.get("response") or {}, event_id)

    def _on_response_cancel(self, event: Json, event_id: str | None) -> None:
        wanted = event.get("response_id")
        if wanted is None:
            run = self._default_run()
        else:
            run = next((r for r in self._runs if r.id == wanted), None)
        if run is None:
            self._error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found.",
                None,
                event_id,
            )
            return
        self._cancel(run, "client_cancelled")

    def _resolve_input(self, entries: list[Json], event_id: str | None) -> list[Json] | None:
        """``response.input`` (§8.1): inline items and references to conversation items."""
        context: list[Json] = []
        for index, entry in enumerate(entries):
            if entry["type"] == "item_reference":
                found = self._find_item(entry["id"])
                if found is None:
                    self._error(
                        "invalid_value",
                        f"Item with id '{entry['id']}' not found.",
                        f"response.input[{index}].id",
                        event_id,
                    )
                    return None
                context.append(found)
            else:
                context.append(entry)
        return context

    def _turn_for(self, context: list[Json]) -> FakeTurn:
        history = tuple(copy.deepcopy(context))
        for item in reversed(context):
            if item.get("type") == "function_call_output":
                return FakeTurn(
                    kind="tool_output", text=item["output"], audio_seconds=0.0, history=history
                )
            if item.get("type") != "message" or item.get("role") == "system":
                continue
            if item.get("role") != "user":
                break
            parts = item.get("content", [])
            texts = [p.get("text", "") for p in parts if p.get("type") == "input_text"]
            if texts:
                return FakeTurn(
                    kind="text", text=" ".join(texts), audio_seconds=0.0, history=history
                )
            blob = self._audio.get(item.get("id", ""))
            transcript = next((p.get("transcript") for p in parts if p.get("transcript")), "")
            return FakeTurn(
                kind="audio",
                text=transcript or "",
                audio_seconds=blob.ms / 1000.0 if blob else 0.0,
                history=history,
            )
        return FakeTurn(kind="text", text="", audio_seconds=0.0, history=history)

    def _input_tokens(
        self, context: list[Json], instructions: str, tools: list[Json]
    ) -> tuple[int, int]:
        """(text, audio) input tokens: words of all text, audio ms/100 user, ms/50 assistant."""
        text = word_tokens(instructions) + (word_tokens(json.dumps(tools)) if tools else 0)
        audio = 0.0
        for item in context:
            blob = self._audio.get(item.get("id", ""))
            if blob is not None:
                audio += blob.ms / (50.0 if item.get("role") == "assistant" else 100.0)
            for part in item.get("content", []):
                text += word_tokens(part.get("text") or "")
                if blob is None:
                    text += word_tokens(part.get("transcript") or "")
            for key in ("name", "arguments", "output"):
                text += word_tokens(str(item.get(key, "")))
        return text, round(audio)

    def _create_response(self, params: Json, event_id: str | None) -> None:
        """Start a response (``response.create`` or VAD ``create_response``, §8.1, §9)."""
        in_conversation = params.get("conversation", "auto") != "none"
        active = self._default_run()
        if in_conversation and active is not None:
            self._error(
                "conversation_already_has_active_response",
                f"Conversation already has an active response in progress: {active.id}. "
                "Wait until the response is finished before creating a new one.",
                None,
                event_id,
            )
            return
        context: list[Json] = list(self.items)
        if "input" in params:
            resolved = self._resolve_input(params["input"], event_id)
            if resolved is None:
                return
            context = resolved
        session = self.session
        modalities: list[str]
        output_format: Any
        if self._ga:
            modalities = params.get("output_modalities") or session["output_modalities"]
            audio_out = {**session["audio"]["output"], **params.get("audio", {}).get("output", {})}
            voice, output_format = audio_out["voice"], audio_out["format"]
            if not self._voice_ok(voice, "response.audio.output.voice", event_id):
                return
            if output_format["type"] == "audio/pcm":
                output_format = {**PCM_FORMAT, **output_format}
            encoding = ENCODINGS[output_format["type"]]
            max_tokens = params.get("max_output_tokens", session["max_output_tokens"])
        else:
            modalities = params.get("modalities") or session["modalities"]
            voice = params.get("voice", session["voice"])
            output_format = params.get("output_audio_format", session["output_audio_format"])
            encoding = ENCODINGS[str(output_format)]
            max_tokens = params.get(
                "max_response_output_tokens",
                params.get("max_output_tokens", session["max_response_output_tokens"]),
            )
        instructions: str = (
            params["instructions"] if "instructions" in params else session["instructions"]
        )
        tools: list[Json] = params["tools"] if "tools" in params else session["tools"]
        text_in, audio_in = self._input_tokens(context, instructions, tools)
        cached = min(self._last_input_tokens, text_in + audio_in) // 64 * 64
        run = ResponseRun(
            id=self._new_id("resp"),
            in_conversation=in_conversation,
            modality="audio" if "audio" in modalities else "text",
            voice=voice,
            output_format=output_format,
            encoding=encoding,
            max_output_tokens=max_tokens,
            metadata=params.get("metadata"),
            input_text_tokens=text_in,
            input_audio_tokens=audio_in,
            cached_tokens=cached,
        )
        self._runs.append(run)
        self._emit("response.created", response=self._response_object(run, "in_progress", None))
        try:
            reply = self.config.responder(self._turn_for(context))
        except Exception as exc:  # §10: response-level failure -> response.done "failed"
            if isinstance(exc, FakeServerError):
                code, message = exc.code, exc.message
            else:  # a responder bug: keep it for the test, fail like a model error
                self.responder_errors.append(exc)
                code, message = "server_error", f"The responder raised {exc!r}."
            self._error(code, message, None, None, error_type="server_error")
            error = {"type": "server_error", "code": code, "message": message}
            self._complete(run, "failed", {"type": "failed", "error": error})
            return
        run.steps = self._response_steps(run, reply)
        self._advance(run)
        if not self.config.paced:
            while not run.done:
                self._advance(run)

    def _response_object(self, run: ResponseRun, status: str, details: Json | None) -> Json:
        return response_object(
            run,
            status,
            details,
            dialect=self.config.dialect,
            conversation_id=self._conversation_id,
            temperature=self.session.get("temperature", 0.8),
        )

    def _advance(self, run: ResponseRun) -> None:
        if run.steps is not None and not run.done:
            next(run.steps, None)

    def _plan(
        self, run: ResponseRun, reply: FakeReply
    ) -> tuple[list[str], list[FakeToolCall], bool]:
        """Apply ``max_output_tokens`` (§8.2 ``incomplete``); returns (pieces, calls, cut)."""
        pieces = split_pieces(reply.text)
        calls = list(reply.tool_calls)
        if run.max_output_tokens == "inf":
            return pieces, calls, False
        budget = int(run.max_output_tokens)
        per_word = 1 + (
            self.config.seconds_per_word * 1000.0 / 50.0 if run.modality == "audio" else 0
        )
        keep = min(len(pieces), int(budget // per_word))
        budget -= math.ceil(keep * per_word)
        if keep < len(pieces):
            return pieces[:keep], [], True
        kept: list[FakeToolCall] = []
        for call in calls:
            cost = word_tokens(call.name) + max(1, len(call.arguments) // 4)
            if cost > budget:
                return pieces, kept, True
            budget -= cost
            kept.append(call)
        return pieces, kept, False

    def _response_steps(self, run: ResponseRun, reply: FakeReply) -> Generator[None, None, None]:
        """The §9 event sequence of one response, suspended at each paced step."""
        pieces, calls, cut = self._plan(run, reply)
        if pieces:
            yield from self._message_steps(run, pieces)
            self._end_message(run, "incomplete" if cut else "completed")
        for call in calls:
            if run.output:
                yield
            self._function_call(run, call)
        if cut:
            self._complete(run, "incomplete", {"type": "incomplete", "reason": "max_output_tokens"})
        else:
            self._complete(run, "completed", None)

    def _add_output_item(self, run: ResponseRun, item: Json) -> None:
        run.output.append(item)
        self._emit(
            "response.output_item.added",
            response_id=run.id,
            output_index=len(run.output) - 1,
            item=item,
        )
        if run.in_conversation:
            previous = self.items[-1]["id"] if self.items else None
            self.items.append(item)
            self._emit_item_added(item, previous)

    def _item_previous(self, item: Json) -> str | None:
        index = next((i for i, x in enumerate(self.items) if x is item), 0)
        return self.items[index - 1]["id"] if index > 0 else None

    def _done_output_item(self, run: ResponseRun, item: Json, output_index: int) -> None:
        if run.in_conversation and any(x is item for x in self.items):
            self._emit_item_done(item, self._item_previous(item))
        self._emit(
            "response.output_item.done", response_id=run.id, output_index=output_index, item=item
        )

    def _message_steps(self, run: ResponseRun, pieces: list[str]) -> Generator[None, None, None]:
        """Assistant message: item/part added, deltas (one step each), §9 / §15.2-15.3."""
        item: Json = {
            "id": self._new_id("item"),
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        run.message = item
        run.message_index = len(run.output)
        self._add_output_item(run, item)
        ids: Json = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": run.message_index,
            "content_index": 0,
        }
        audio = run.modality == "audio"
        part = {"type": "audio", "transcript": ""} if audio else {"type": "text", "text": ""}
        self._emit("response.content_part.added", **ids, part=part)
        if not audio:
            for piece in pieces:
                yield
                run.pieces_sent.append(piece)
                run.output_text_tokens += 1
                self._emit(
                    "response.output_text.delta",
                    **ids,
                    delta=piece,
                    obfuscation=self._obfuscation(),
                )
            yield
            return
        sample_rate = rate(run.encoding)
        words = [piece.strip() for piece in pieces]
        slot = round(self.config.seconds_per_word * sample_rate)
        chunk = max(1, round(self.config.audio_chunk_seconds * sample_rate))
        chunks = speech_chunks(
            words,
            seconds_per_word=self.config.seconds_per_word,
            sample_rate=sample_rate,
            chunk=chunk,
        )
        sent_words = 0
        end = 0
        for samples in chunks:  # rendered one step at a time, as a live server streams
            yield
            end += len(samples)
            while sent_words < len(pieces) and sent_words * slot < end:
                run.pieces_sent.append(pieces[sent_words])
                run.output_text_tokens += 1
                self._emit(
                    "response.output_audio_transcript.delta",
                    **ids,
                    delta=pieces[sent_words],
                    obfuscation=self._obfuscation(),
                )
                sent_words += 1
            piece_bytes = encode_from_int16(samples, run.encoding)
            run.audio_sent += piece_bytes
            self._audio_output_started = True
            self._emit(
                "response.output_audio.delta",
                **ids,
                delta=base64.b64encode(piece_bytes).decode("ascii"),
            )
        yield

    def _end_message(self, run: ResponseRun, status: str) -> None:
        """Close the open assistant message (also on cancel, with status incomplete)."""
        item = run.message
        if item is None:
            return
        run.message = None
        ids: Json = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": run.message_index,
            "content_index": 0,
        }
        text = "".join(run.pieces_sent)
        if run.modality == "audio":
            order = self.config.audio_done_order
            transcript_first = order == "transcript_first" or (
                order == "random" and self._rng.random() < 0.5
            )
            if transcript_first:  # §9: the relative order is not guaranteed
                self._emit("response.output_audio_transcript.done", **ids, transcript=text)
            self._emit("response.output_audio.done", **ids)
            if not transcript_first:
                self._emit("response.output_audio_transcript.done", **ids, transcript=text)
            self._emit(
                "response.content_part.done", **ids, part={"type": "audio", "transcript": text}
            )
            content = {"type": "output_audio" if self._ga else "audio", "transcript": text}
            if run.in_conversation:
                self._audio[item["id"]] = AudioBlob(bytes(run.audio_sent), run.encoding)
        else:
            self._emit("response.output_text.done", **ids, text=text)
            self._emit("response.content_part.done", **ids, part={"type": "text", "text": text})
            content = {"type": "output_text" if self._ga else "text", "text": text}
        item["status"] = status
        item["content"] = [content]
        self._done_output_item(run, item, run.message_index)

    def _function_call(self, run: ResponseRun, call: FakeToolCall) -> None:
        """One function call item, start to finish (§15.4)."""
        item: Json = {
            "id": self._new_id("item"),
            "type": "function_call",
            "status": "in_progress",
            "name": call.name,
            "call_id": self._new_id("call"),
            "arguments": "",
        }
        self._add_output_item(run, item)
        ids: Json = {
            "response_id": run.id,
            "item_id": item["id"],
            "output_index": len(run.output) - 1,
            "call_id": item["call_id"],
        }
        for fragment in split_arguments(call.arguments):
            self._emit("response.function_call_arguments.delta", **ids, delta=fragment)
        self._emit(
            "response.function_call_arguments.done", **ids, name=call.name, arguments=call.arguments
        )
        item["status"] = "completed"
        item["arguments"] = call.arguments
        run.output_text_tokens += word_tokens(call.name) + max(1, len(call.arguments) // 4)
        self._done_output_item(run, item, len(run.output) - 1)

    def _complete(self, run: ResponseRun, status: str, details: Json | None) -> None:
        """``response.done`` then ``rate_limits.updated`` (§9, §14 item 6)."""
        run.done = True
        if run in self._runs:
            self._runs.remove(run)
        response = self._response_object(run, status, details)
        self._emit("response.done", response=response)
        usage = response["usage"]
        self._tokens_used += usage["total_tokens"]
        refill_seconds = self._tokens_used * 60 / RATE_LIMIT_TOKENS  # the limit is per minute
        if run.in_conversation:
            self._last_input_tokens = usage["input_tokens"]
        self._emit(
            "rate_limits.updated",
            rate_limits=[
                {
                    "name": "tokens",
                    "limit": RATE_LIMIT_TOKENS,
                    "remaining": max(0, RATE_LIMIT_TOKENS - self._tokens_used),
                    "reset_seconds": max(0.001, round(refill_seconds, 3)),
                }
            ],
        )

    def _cancel(self, run: ResponseRun, reason: str) -> None:
        """Stop a response: close the open item as incomplete, ``cancelled`` done (§15.5)."""
        if run.steps is not None:
            run.steps.close()
        self._end_message(run, "incomplete")
        self._complete(run, "cancelled", {"type": "cancelled", "reason": reason})
