"""The wire JSON codec's contract (voxengine._json)."""

from __future__ import annotations

import json

import pytest

from voxengine import _json


def test_dumps_is_compact_utf8_text_that_round_trips() -> None:
    value = {"type": "conversation.item.create", "text": "héllo ✓", "n": [1, 2.5, None, True]}
    text = _json.dumps(value)
    assert isinstance(text, str)
    assert text == '{"type":"conversation.item.create","text":"héllo ✓","n":[1,2.5,null,true]}'
    assert json.loads(text) == value == _json.loads(text)
    assert _json.loads(text.encode()) == value  # bytes frames too


@pytest.mark.parametrize("bad", ["{", "NaN", '{"a": NaN}', '"\\ud800"', "\ud800", b"\xff\xfe"])
def test_anything_but_strict_json_is_a_value_error(bad: str | bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is the base class
        _json.loads(bad)


def test_dumps_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        _json.dumps({1: "non-string key"})
    with pytest.raises(TypeError):
        _json.dumps({"x": object()})
