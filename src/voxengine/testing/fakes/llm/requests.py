"""Request validation of the fake LLM server: bodies, content blocks, tool rules, multipart."""

from __future__ import annotations

import email.parser
import email.policy
from typing import Any

from voxengine.testing._http_server import HttpRequest

from .types import _TOOL_NAME, Api, FakeLLMTurn, Json, _Refusal


def _json_object(request: HttpRequest, api: Api) -> Json:
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise _Refusal(400, "invalid_request_error", "content-type must be application/json")
    try:
        body = request.json()
    except ValueError as exc:
        raise _Refusal(
            400, "invalid_request_error", "There was an error parsing the body as JSON"
        ) from exc
    if not isinstance(body, dict):
        raise _Refusal(400, "invalid_request_error", "the body must be a JSON object")
    return body


def _invalid(message: str, param: str | None = None) -> _Refusal:
    return _Refusal(400, "invalid_request_error", message, param)


def _anthropic_blocks(content: Any, where: str) -> list[Json]:
    if isinstance(content, str):
        if not content:
            raise _invalid(f"{where}: text content blocks must be non-empty")
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not content:
        raise _invalid(f"{where}: content must be a non-empty string or list of blocks")
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        at = f"{where}.content.{j}"
        if kind == "text" and not (isinstance(block.get("text"), str) and block["text"]):
            raise _invalid(f"{at}: text content blocks must be non-empty")
        if kind == "tool_use" and not (
            block.get("id") and block.get("name") and isinstance(block.get("input"), dict)
        ):
            raise _invalid(f"{at}: tool_use blocks need id, name and an object input")
        if kind == "tool_result" and not block.get("tool_use_id"):
            raise _invalid(f"{at}.tool_use_id: Field required")
        if kind not in ("text", "tool_use", "tool_result", "image", "document", "thinking"):
            raise _invalid(
                f"{at}.type: Input tag {kind!r} found using 'type' does not match any of "
                "the expected tags"
            )
    return content


def _anthropic_turn(body: Json) -> FakeLLMTurn:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _invalid("max_tokens: Field required (an integer >= 1)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: at least one message is required")
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 1
    ):
        raise _invalid("temperature: Input should be less than or equal to 1")
    system = body.get("system", "")
    if isinstance(system, list):
        system = " ".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise _invalid("tools: Input should be a valid list")
    for i, spec in enumerate(tools):
        if not isinstance(spec, dict) or not _TOOL_NAME.match(str(spec.get("name", ""))):
            raise _invalid(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        schema = spec.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise _invalid(f"tools.{i}.input_schema: Input should be an object schema")
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")
    ):
        raise _invalid("tool_choice: Input tag does not match any of the expected tags")
    if isinstance(choice, dict) and choice.get("type") == "tool" and not choice.get("name"):
        raise _invalid("tool_choice.tool.name: Field required")
    pending: list[str] = []
    last_user_text = ""
    results: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise _invalid(f"{where}.role: Input should be 'user' or 'assistant'")
        blocks = _anthropic_blocks(message.get("content"), where)
        answered = [b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"]
        missing = [p for p in pending if p not in answered]
        if missing:
            raise _invalid(
                f"{where}: `tool_use` ids were found without `tool_result` blocks immediately "
                f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                "`tool_result` block in the next message."
            )
        unexpected = [a for a in answered if a not in pending]
        if unexpected:
            raise _invalid(
                f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{', '.join(unexpected)}. Each `tool_result` block must have a corresponding "
                "`tool_use` block in the previous message."
            )
        pending = [b["id"] for b in blocks if b.get("type") == "tool_use"]
        if message["role"] == "user":
            last_user_text = " ".join(b["text"] for b in blocks if b.get("type") == "text")
            results = [
                (b["tool_use_id"], _result_text(b.get("content")))
                for b in blocks
                if b.get("type") == "tool_result"
            ]
    if pending and messages[-1].get("role") == "assistant":
        pass  # a trailing assistant turn is a prefill; its calls are not answered yet
    return FakeLLMTurn(
        api="anthropic",
        model=body["model"],
        system=str(system),
        user_text=last_user_text,
        tool_results=tuple(results),
        tool_names=tuple(str(t["name"]) for t in tools),
        message_count=len(messages),
    )


def _result_text(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return str(content or "")


def _chat_turn(body: Json) -> FakeLLMTurn:
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _invalid("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("[] is too short - 'messages'", "messages")
    if body.get("stream_options") is not None and not body.get("stream"):
        raise _invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 2
    ):
        raise _invalid("temperature must be within [0, 2]", "temperature")
    tools = body.get("tools") or []
    for i, spec in enumerate(tools):
        function = spec.get("function") if isinstance(spec, dict) else None
        if (
            not isinstance(spec, dict)
            or spec.get("type") != "function"
            or not isinstance(function, dict)
        ):
            raise _invalid(
                f"Missing required parameter: 'tools[{i}].function'.", f"tools[{i}].function"
            )
        if not _TOOL_NAME.match(str(function.get("name", ""))):
            raise _invalid(f"Invalid 'tools[{i}].function.name'.", f"tools[{i}].function.name")
    pending: list[str] = []
    system: list[str] = []
    last_user_text = ""
    results: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("system", "developer", "user", "assistant", "tool"):
            raise _invalid(
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                "'user', 'tool', and 'developer'.",
                f"messages[{i}].role",
            )
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in pending:
                raise _invalid(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{i}].role",
                )
            pending.remove(call_id)
            results.append((str(call_id), str(message.get("content", ""))))
            continue
        if pending:
            raise _invalid(
                _unanswered(pending),
                f"messages.[{i}].role",
            )
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(str(content or ""))
        elif role == "user":
            last_user_text = str(content or "")
            results = []
        else:
            calls = message.get("tool_calls") or []
            if content is None and not calls:
                raise _invalid(
                    "assistant messages need content or tool_calls", f"messages.[{i}].content"
                )
            pending = [str(c.get("id")) for c in calls if isinstance(c, dict)]
            results = []
    if pending:
        raise _invalid(
            _unanswered(pending),
            "messages",
        )
    return FakeLLMTurn(
        api="openai",
        model=body["model"],
        system="\n".join(system),
        user_text=last_user_text,
        tool_results=tuple(results),
        tool_names=tuple(str(t["function"]["name"]) for t in tools),
        message_count=len(messages),
    )


def _unanswered(pending: list[str]) -> str:
    return (
        "An assistant message with 'tool_calls' must be followed by tool messages responding to "
        "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(pending)
    )


def _multipart(request: HttpRequest) -> dict[str, bytes]:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise _invalid("content-type must be multipart/form-data")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload
    return fields
