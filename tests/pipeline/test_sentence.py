"""SentenceSplitter, speakable() and spoken_text(): pure text handling."""

from __future__ import annotations

import pytest

from voxengine.providers.pipeline.sentence import (
    SentenceSplitter,
    SpokenSentence,
    speakable,
    spoken_text,
)


def split_stream(text: str, size: int) -> list[str]:
    splitter = SentenceSplitter()
    out: list[str] = []
    for i in range(0, len(text), size):
        out += splitter.push(text[i : i + size])
    rest = splitter.flush()
    return out + ([rest] if rest else [])


def test_sentences_complete_only_when_followed_by_whitespace() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("Hello there!") == []
    assert splitter.push(" How are") == ["Hello there!"]
    assert splitter.push(" you? I am") == ["How are you?"]
    assert splitter.flush() == "I am"
    assert splitter.flush() is None


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1000])
def test_result_does_not_depend_on_chunking(size: int) -> None:
    text = 'It is 3.5 km away. Dr. Smith said "go!" Then, e.g. here, we stop.\nNext line'
    assert split_stream(text, size) == [
        "It is 3.5 km away.",
        'Dr. Smith said "go!"',
        "Then, e.g. here, we stop.",
        "Next line",
    ]


def test_list_numbers_and_initials_do_not_end_sentences() -> None:
    assert split_stream("Steps:\n1. Open it. 2. Close it. J. R. R. Tolkien wrote it.", 4) == [
        "Steps:",
        "1. Open it.",
        "2. Close it.",
        "J. R. R. Tolkien wrote it.",
    ]


def test_other_terminators_and_closing_quotes() -> None:
    assert split_stream("Wait… really?! (Yes.) Fine; go", 5) == [
        "Wait…",
        "really?!",
        "(Yes.)",
        "Fine;",
        "go",
    ]


def test_run_on_text_is_cut_at_a_comma_or_space() -> None:
    splitter = SentenceSplitter(max_chars=40)
    out = splitter.push("one two three four, five six seven eight nine ten eleven twelve")
    assert out == ["one two three four,", "five six seven eight nine ten eleven"]
    assert splitter.flush() == "twelve"
    assert all(len(s) <= 40 for s in out)
    with pytest.raises(ValueError, match="max_chars"):
        SentenceSplitter(max_chars=5)


def test_speakable_strips_markdown() -> None:
    assert speakable("**Bold** and `code` # heading\n> quote") == "Bold and code heading quote"


def test_spoken_text_keeps_whole_and_partial_sentences() -> None:
    sentences = [
        SpokenSentence(text="One two three four.", start=0.0, end=2.0),
        SpokenSentence(text="Five six seven eight.", start=2.0, end=4.0),
    ]
    assert spoken_text(sentences, 0.0) == ""
    assert spoken_text(sentences, 2.0) == "One two three four."
    assert spoken_text(sentences, 3.0) == "One two three four. Five six"
    assert spoken_text(sentences, 10.0) == "One two three four. Five six seven eight."
    assert spoken_text(sentences, 0.4) == ""


def test_the_first_piece_may_end_at_a_clause_break() -> None:
    text = "Sure, the capital of France is Paris, a city on the Seine. It is old, and big."
    splitter = SentenceSplitter(first_clause=24)
    pieces: list[str] = []
    for word in text.split(" "):  # streamed word by word, like a model
        pieces += splitter.push(word + " ")
    assert splitter.flush() is None
    # "Sure," is too short to speak alone; later sentences stay whole despite commas
    assert pieces == [
        "Sure, the capital of France is Paris,",
        "a city on the Seine.",
        "It is old, and big.",
    ]
    # without the option, and after flush() (a new reply), sentences as before
    whole = "Sure, the capital of France is Paris, a city on the Seine."
    assert SentenceSplitter().push(text)[0] == whole
    again = SentenceSplitter(first_clause=24)
    again.push("The capital of France is Paris, on the Seine")
    assert again.flush() == "on the Seine"
    assert again.push("One, two three four five six seven, eight") == [
        "One, two three four five six seven,"
    ]
    with pytest.raises(ValueError, match="first_clause"):
        SentenceSplitter(first_clause=-1)
