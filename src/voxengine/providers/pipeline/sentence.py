"""Cutting streamed LLM text into sentences to speak, and mapping played audio back to text.

:class:`SentenceSplitter` lets speech start after the first sentence instead of after
the whole reply. :func:`spoken_text` answers "what did the user hear?" after a barge-in,
from the audio duration of each spoken sentence. Pure, sync code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, final

__all__ = ["FIRST_CLAUSE_CHARS", "SentenceSplitter", "SpokenSentence", "speakable", "spoken_text"]

FIRST_CLAUSE_CHARS: Final = 24
"""The default of the pipeline's ``first_clause``: a reply's first piece goes to speech
at a clause break once it holds this many characters (about four words)."""

_TERMINATORS: Final = ".!?…;"
_CLOSERS: Final = "\"')]}\u00bb\u201d\u2019"  # quotes and brackets that may follow an end
_ABBREVIATIONS: Final = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "etc", "e.g", "i.e", "approx", "no", "jr", "sr"}
)
_MARKUP: Final = re.compile(r"[*_`#>|~]+")
_SPACES: Final = re.compile(r"\s+")


@final
class SentenceSplitter:
    """Accumulates text deltas and returns each sentence once it is complete.

    A sentence ends at ``.``, ``!``, ``?``, ``…`` or ``;`` (plus closing quotes or
    brackets) followed by whitespace, or at a line break. A full stop after a common
    abbreviation ("Dr.", "e.g.") or a single letter ("J.") does not end a sentence;
    digits around a point ("3.5") never do, because whitespace must follow, and nor does
    the point of a list number ("1. Open the door."). A run-on
    sentence longer than ``max_chars`` is cut at its last comma or space so speech is
    not held back.

    With ``first_clause`` set, the *first* piece may also end at a clause break (a
    comma, colon or dash followed by a space) once it holds at least ``first_clause``
    characters: speech can then start after "Paris is the capital of France," instead of
    waiting for the end of the sentence. Later pieces are whole sentences, which sound
    more natural.

    Returned sentences are stripped of surrounding whitespace and never empty.

    Args:
        max_chars: longest text held back waiting for a sentence end (>= 20).
        first_clause: shortest first piece cut at a clause break, in characters
            (0: never cut at one).
    """

    __slots__ = ("_buffer", "_first", "_first_clause", "_max_chars")

    def __init__(self, *, max_chars: int = 240, first_clause: int = 0) -> None:
        if max_chars < 20:
            raise ValueError("max_chars must be at least 20")
        if first_clause < 0:
            raise ValueError("first_clause must be >= 0")
        self._max_chars = max_chars
        self._first_clause = first_clause
        self._first = True
        self._buffer = ""

    def push(self, delta: str) -> list[str]:
        """Add ``delta``; return the sentences it completed, in order."""
        self._buffer += delta
        sentences: list[str] = []
        while True:
            cut = self._find_end(self._buffer)
            if cut is None and self._first and self._first_clause:
                cut = _clause_end(self._buffer, self._first_clause)
            if cut is None and len(self._buffer) > self._max_chars:
                cut = self._fallback_cut(self._buffer)
            if cut is None:
                return sentences
            sentence, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if sentence:
                sentences.append(sentence)
                self._first = False

    def flush(self) -> str | None:
        """End of the reply: return the unfinished last sentence, if any, and reset."""
        rest, self._buffer = self._buffer.strip(), ""
        self._first = True
        return rest or None

    def _find_end(self, text: str) -> int | None:
        """Index just past the first complete sentence in ``text``, or None."""
        for i, char in enumerate(text):
            if char == "\n":
                return i + 1
            if char not in _TERMINATORS:
                continue
            j = i + 1
            while j < len(text) and (text[j] in _TERMINATORS or text[j] in _CLOSERS):
                j += 1
            if j >= len(text):
                return None  # cannot tell yet: "3." may become "3.5"
            if not text[j].isspace():
                continue
            if char == "." and (_is_abbreviation(text[:i]) or text[:i].strip().isdigit()):
                continue  # "Dr. Smith", "e.g. this", a list number "1. First"

            return j
        return None

    def _fallback_cut(self, text: str) -> int:
        window = text[: self._max_chars]
        for mark in (", ", " "):
            at = window.rfind(mark)
            if at > 0:
                return at + len(mark)
        return self._max_chars


def _clause_end(text: str, shortest: int) -> int | None:
    """Index just past the first clause break (``, `` ``: `` `` - `` `` — ``) at or after
    ``shortest`` characters of ``text``, or None."""
    best: int | None = None
    for mark in (", ", ": ", " - ", " \u2014 ", "\u2014 "):
        at = text.find(mark, max(0, shortest - 1))
        if at >= 0 and (best is None or at + len(mark) < best):
            best = at + len(mark)
    return best


def _is_abbreviation(before: str) -> bool:
    """Whether the word ending ``before`` (the text before a full stop) is abbreviated."""
    word = before.rsplit(None, 1)[-1] if before.strip() else ""
    word = word.lstrip(_CLOSERS + "([{\"'").lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def speakable(text: str) -> str:
    """``text`` without Markdown symbols a speech synthesiser would read aloud."""
    return _SPACES.sub(" ", _MARKUP.sub(" ", text)).strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class SpokenSentence:
    """A sentence whose audio was sent: from ``start`` to ``end`` seconds of the item."""

    text: str
    start: float
    end: float


def spoken_text(sentences: list[SpokenSentence], played: float) -> str:
    """The text the user heard when playback stopped at ``played`` seconds.

    Sentences that finished playing are kept whole. Of the sentence playing at
    ``played``, the share of words matching the share of its audio that played is
    kept (an estimate: words are assumed to be evenly spread over the audio).
    """
    kept: list[str] = []
    for sentence in sentences:
        if played >= sentence.end:
            kept.append(sentence.text)
            continue
        if played > sentence.start:
            words = sentence.text.split()
            share = (played - sentence.start) / (sentence.end - sentence.start)
            count = int(len(words) * share)
            if count:
                kept.append(" ".join(words[:count]))
        break
    return " ".join(kept)
