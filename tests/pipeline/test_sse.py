"""The event-stream decoder against the WHATWG parsing rules."""

from __future__ import annotations

from voxengine.providers.pipeline._sse import ServerSentEvent, SSEDecoder


def decode(lines: list[str]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [e for line in lines if (e := decoder.feed(line)) is not None]
    assert decoder.close() is None
    return events


def test_named_events_multiline_data_comments_and_ids() -> None:
    events = decode(
        [
            ": keep-alive comment",
            "event: message_start",
            'data: {"a":',
            "data:1}",
            "id: 7",
            "",
            "data: second",
            "retry: 1000",
            "unknown field",
            "",
        ]
    )
    assert events == [
        ServerSentEvent(event="message_start", data='{"a":\n1}', id="7"),
        ServerSentEvent(event="message", data="second", id="7"),
    ]


def test_blank_lines_without_data_dispatch_nothing_and_reset_the_name() -> None:
    assert decode(["event: ping", "", "data: x", ""]) == [
        ServerSentEvent(event="message", data="x")
    ]


def test_only_one_leading_space_is_stripped_and_unterminated_events_are_dropped() -> None:
    assert decode(["data:  two spaces", "", "data: no blank line"]) == [
        ServerSentEvent(event="message", data=" two spaces")
    ]
