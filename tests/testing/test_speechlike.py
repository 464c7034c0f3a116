"""The fake servers' speech-like audio: deterministic, and streamable lazily."""

from __future__ import annotations

import numpy as np
import pytest

from voxengine.testing._speechlike import speech_chunks, synthesize_words

WORDS = ["hello", "there", "general", "hello"]


@pytest.mark.parametrize("chunk", [1, 480, 2400, 7200, 7201, 100_000])
def test_chunks_concatenate_to_the_whole_rendering(chunk: int) -> None:
    whole = synthesize_words(WORDS, seconds_per_word=0.3, sample_rate=24_000)
    chunks = list(speech_chunks(WORDS, seconds_per_word=0.3, sample_rate=24_000, chunk=chunk))
    assert all(len(c) == chunk for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk
    np.testing.assert_array_equal(np.concatenate(chunks), whole)


def test_rendering_is_deterministic_and_word_aligned() -> None:
    first = synthesize_words(WORDS, seconds_per_word=0.3, sample_rate=16_000)
    second = synthesize_words(list(WORDS), seconds_per_word=0.3, sample_rate=16_000)
    np.testing.assert_array_equal(first, second)
    slot = round(0.3 * 16_000)
    assert len(first) == slot * len(WORDS)
    # the same word renders the same slot; different words differ
    np.testing.assert_array_equal(first[:slot], first[3 * slot :])
    assert not np.array_equal(first[:slot], first[slot : 2 * slot])
    # each slot ends in silence (the gap between words)
    assert not first[slot - 100 : slot].any()


def test_cached_slots_cannot_be_modified_through_a_chunk() -> None:
    chunk = next(speech_chunks(["x"], seconds_per_word=0.1, sample_rate=8000, chunk=80))
    with pytest.raises(ValueError, match="read-only"):
        chunk[0] = 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seconds_per_word": 0.0, "sample_rate": 24_000, "chunk": 480},
        {"seconds_per_word": 0.3, "sample_rate": 0, "chunk": 480},
        {"seconds_per_word": 0.3, "sample_rate": 24_000, "chunk": 0},
    ],
)
def test_bad_parameters_raise_value_error(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        list(speech_chunks(["a"], **kwargs))  # type: ignore[arg-type]


def test_no_words_is_no_audio() -> None:
    assert len(synthesize_words([], seconds_per_word=0.3)) == 0
    assert list(speech_chunks([], seconds_per_word=0.3, sample_rate=24_000, chunk=480)) == []
