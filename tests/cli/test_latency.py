"""Per-stage latency of a turn, from milestones on a fake clock."""

from __future__ import annotations

import pytest

from voxengine.cli._latency import TurnTimer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_cascaded_turn_splits_into_stages() -> None:
    clock = Clock()
    timer = TurnTimer(clock)
    assert timer.result() is None
    clock.now = 10.0
    timer.turn_ended()
    clock.now = 10.2
    timer.heard()
    clock.now = 10.5
    timer.first_text()
    clock.now = 10.6
    timer.first_audio()
    clock.now = 11.0
    timer.first_audio()  # later chunks change nothing
    stages = timer.result()
    assert stages is not None
    assert stages.stt == pytest.approx(0.2)
    assert stages.llm == pytest.approx(0.3)
    assert stages.tts == pytest.approx(0.1)
    assert stages.first_audio == pytest.approx(0.6)
    assert stages.describe() == "STT 200 ms | LLM 300 ms | TTS 100 ms | first audio 600 ms"


def test_a_transcript_after_the_reply_leaves_the_stages_it_cannot_split_unknown() -> None:
    clock = Clock()
    timer = TurnTimer(clock)
    timer.turn_ended()
    clock.now = 0.3
    timer.first_audio()  # speech-to-speech: audio first ...
    clock.now = 0.4
    timer.first_text()
    clock.now = 0.9
    timer.heard()  # ... the user's transcript last
    stages = timer.result()
    assert stages is not None
    assert stages.stt is None  # recognised after the reply began: not a stage before it
    assert stages.llm == pytest.approx(0.4)
    assert stages.tts is None  # text after audio: no synthesis stage to show
    assert stages.first_audio == pytest.approx(0.3)
    assert "TTS -" in stages.describe()


def test_a_new_turn_starts_afresh() -> None:
    clock = Clock()
    timer = TurnTimer(clock)
    timer.turn_ended()
    timer.first_audio()
    clock.now = 5.0
    timer.turn_ended()
    assert timer.started
    clock.now = 5.25
    timer.first_audio()
    stages = timer.result()
    assert stages is not None
    assert stages.first_audio == pytest.approx(0.25)
    assert stages.stt is None


def test_events_mark_the_milestones_and_the_first_sentence_splits_the_llm_stage() -> None:
    from voxengine.events import AudioDelta, Role, SpeechStopped, TranscriptDelta, TranscriptDone

    clock = Clock()
    timer = TurnTimer(clock)
    timer.observe(TranscriptDelta(role=Role.ASSISTANT, item_id="a", delta="Before."))
    assert not timer.timed  # nothing before the end of the user's turn counts
    timer.observe(SpeechStopped(item_id="u", audio_end=1.0))
    assert timer.timed
    clock.now = 0.2
    timer.observe(TranscriptDone(role=Role.USER, item_id="u", transcript="hi"))
    clock.now = 0.3
    timer.observe(TranscriptDelta(role=Role.ASSISTANT, item_id="a", delta="Hello"))
    clock.now = 0.45
    timer.observe(TranscriptDelta(role=Role.ASSISTANT, item_id="a", delta=" there. And"))
    clock.now = 0.6
    timer.observe(AudioDelta(response_id="r", item_id="a", audio=b"\0\0"))
    stages = timer.result()
    assert stages is not None
    assert (stages.stt, stages.llm) == (pytest.approx(0.2), pytest.approx(0.1))
    assert stages.sentence == pytest.approx(0.15)
    assert stages.tts == pytest.approx(0.15)  # from the first sentence
    lines = timer.report()
    assert [line.split("+")[0].strip() for line in lines[:-1]] == [
        "speech-to-text",
        "LLM first token",
        "LLM first sentence",
        "TTS first audio",
    ]
    assert lines[-1].split() == [
        "time",
        "to",
        "first",
        "audio",
        "600",
        "ms",
        "(end",
        "of",
        "speech",
        "to",
        "first",
        "audio)",
    ]


def test_no_stage_lines_when_the_user_was_recognised_after_the_reply() -> None:
    clock = Clock()
    timer = TurnTimer(clock)
    assert timer.report() == []
    timer.turn_ended()
    clock.now = 0.3
    timer.first_audio()
    clock.now = 0.5
    timer.heard()
    assert timer.report() == []


def test_the_report_counts_the_reply_from_when_the_user_was_heard() -> None:
    clock = Clock()
    timer = TurnTimer(clock)
    timer.turn_ended()
    clock.now = 0.1
    timer.first_text("stray")  # text before the user was heard is not this reply's
    clock.now = 0.2
    timer.heard()
    clock.now = 0.5
    timer.first_text("Sure. And")
    clock.now = 0.7
    timer.first_audio()
    labels = [line.split("+")[0].strip() for line in timer.report()[:-1]]
    assert labels == ["speech-to-text", "LLM first token", "LLM first sentence", "TTS first audio"]
    assert [line.split("+")[1].split()[0] for line in timer.report()[:-1]] == [
        "200",
        "300",
        "0",
        "200",
    ]


def test_a_first_sentence_after_the_first_audio_gives_no_negative_tts_stage() -> None:
    """A pipeline that speaks its first clause before the sentence ends: the audio
    comes before the first complete sentence. The report must not show the synthesis
    as taking negative time (the audio did not wait for that sentence)."""
    clock = Clock()
    timer = TurnTimer(clock)
    timer.turn_ended()
    clock.now = 0.2
    timer.heard()
    clock.now = 0.5
    timer.first_text("Well, let me think")
    clock.now = 0.7
    timer.first_audio()  # the first clause, spoken
    clock.now = 0.9
    timer.first_text(" about that. Yes.")  # the first sentence ends only now
    lines = timer.report()
    assert lines, "the turn was heard and had audio"
    figures = [float(line.split("+")[1].split("ms")[0]) for line in lines if "+" in line]
    assert all(figure >= 0 for figure in figures), lines
    assert not any("first sentence" in line for line in lines)  # after the audio: not a step
    assert "TTS first audio" in lines[-2]
    assert "+   200 ms" in lines[-2]
    assert lines[-1].split()[4] == "700"  # time to first audio, from the end of speech
    stages = timer.result()
    assert stages is not None
    assert stages.tts == pytest.approx(0.2)
    assert stages.sentence is None
