"""The pipeline's user turn alone (``_turn.TurnInput``): buffering, end of turn by the
caller or by the VAD, and the early transcription the ended turn reuses."""

from __future__ import annotations

import asyncio

import pytest

from voxengine.audio.format import PCM16_16K
from voxengine.audio.vad import EnergyVAD, VADConfig
from voxengine.config import TurnDetectionConfig
from voxengine.events import (
    Event,
    InputCleared,
    ProviderErrorEvent,
    SpeechStarted,
    SpeechStopped,
)
from voxengine.providers.pipeline._turn import EARLY_TRANSCRIPTION_AFTER, Speculate, TurnInput
from voxengine.providers.pipeline.speculation import ReplyInputs, Speculation
from voxengine.providers.pipeline.stages import GenerationSettings, Transcript
from voxengine.testing._speechlike import silence_pcm16, tone_pcm16

RATE = PCM16_16K.sample_rate


class CountingSTT:
    """Hears "words" in any audio; counts its calls."""

    label = "counting"

    def __init__(self, *, hang: bool = False) -> None:
        self.calls: list[int] = []
        self.cancelled = 0
        self._hang = hang

    async def open(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def transcribe(self, pcm: bytes, sample_rate: int) -> Transcript:
        assert sample_rate == RATE
        self.calls.append(len(pcm))
        try:
            await asyncio.sleep(3600 if self._hang else 0)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return Transcript(text=f"{len(pcm)} bytes")


class Turns:
    """A TurnInput with everything it reports collected."""

    def __init__(
        self,
        *,
        hang: bool = False,
        speculate: Speculate | None = None,
        early_after: float = EARLY_TRANSCRIPTION_AFTER,
    ) -> None:
        self.stt = CountingSTT(hang=hang)
        self.speculations: list[Speculation | None] = []
        self.events: list[Event] = []
        self.speech: list[bool] = []
        self.ended: list[tuple[str, bytes, bool, asyncio.Task[Transcript] | None]] = []
        ids = iter(range(1, 100))
        self.input = TurnInput(
            self.stt,
            emit=self.events.append,
            new_id=lambda prefix: f"{prefix}_{next(ids)}",
            on_speech=self.speech.append,
            on_turn=self._ended,
            speculate=speculate,
            early_after=early_after,
        )

    def _ended(
        self,
        item_id: str,
        pcm: bytes,
        respond: bool,
        early: asyncio.Task[Transcript] | None,
        speculation: Speculation | None,
    ) -> None:
        self.speculations.append(speculation)
        self.ended.append((item_id, pcm, respond, early))


def test_a_manual_turn_goes_out_whole_when_committed() -> None:
    turns = Turns()
    td = TurnDetectionConfig()
    turns.input.take(b"\x01\x00" * 160, td)
    turns.input.take(b"", td)  # nothing
    turns.input.take(b"\x02\x00" * 160, td)
    turns.input.commit()
    [(item_id, pcm, respond, early)] = turns.ended
    assert item_id == "item_1"
    assert pcm == b"\x01\x00" * 160 + b"\x02\x00" * 160
    assert (respond, early) == (False, None)
    assert turns.events == []


def test_committing_nothing_is_an_error_event_and_no_turn() -> None:
    turns = Turns()
    turns.input.take(b"\x01\x00" * 160, TurnDetectionConfig())
    turns.input.commit()
    turns.input.commit()  # the buffer went with the first turn
    assert len(turns.ended) == 1
    [error] = turns.events
    assert isinstance(error, ProviderErrorEvent)
    assert error.code == "input_audio_buffer_commit_empty"


def test_clearing_drops_the_buffered_audio() -> None:
    turns = Turns()
    turns.input.take(b"\x01\x00" * 160, TurnDetectionConfig())
    turns.input.clear()
    turns.input.commit()
    assert turns.ended == []
    assert [type(e) for e in turns.events] == [InputCleared, ProviderErrorEvent]


@pytest.mark.parametrize("interrupt", [True, False])
async def test_the_vad_ends_the_turn_and_reuses_the_early_transcription(interrupt: bool) -> None:
    turns = Turns()
    td = TurnDetectionConfig(silence_duration=0.5, interrupt_response=interrupt)
    vad = EnergyVAD(VADConfig(speech_end=0.5, pre_roll=0.1), RATE)
    turns.input.use_vad(vad)
    audio = silence_pcm16(0.3, sample_rate=RATE) + tone_pcm16(0.5, sample_rate=RATE)
    audio += silence_pcm16(0.8, sample_rate=RATE)
    step = PCM16_16K.bytes_for(0.02)
    for i in range(0, len(audio), step):
        turns.input.take(audio[i : i + step], td)
        await asyncio.sleep(0)  # let an early transcription run, as the event loop would
    assert [type(e) for e in turns.events] == [SpeechStarted, SpeechStopped]
    assert turns.speech == [interrupt]
    [(item_id, pcm, respond, early)] = turns.ended
    assert item_id == turns.events[0].item_id == turns.events[1].item_id  # type: ignore[union-attr]
    assert respond  # create_response is on by default
    # pre-roll (0.1 s), the speech (0.5 s) and the silence that ended it (0.5 s): not
    # the leading silence, nor the silence after the end
    assert PCM16_16K.bytes_for(1.0) <= len(pcm) <= PCM16_16K.bytes_for(1.2)
    assert early is not None  # transcribed during the end-of-turn silence
    transcript = await early
    assert turns.stt.calls == [int(transcript.text.split()[0])]  # one call, reused
    assert turns.speculations == [None]  # no ``speculate`` callback: replies start at the end
    await turns.input.aclose()


class Speculations:
    """A ``speculate`` callback: each speculation it starts only waits for its commit."""

    def __init__(self) -> None:
        self.started: list[tuple[float, str, Speculation]] = []

    def __call__(self, until: float, text: str) -> Speculation:
        inputs = ReplyInputs(messages=(), tools=(), settings=GenerationSettings(), speak=True)
        speculation = Speculation(until=until, inputs=inputs, emit=lambda event: None)
        speculation.start(speculation.committed())
        self.started.append((until, text, speculation))
        return speculation


async def feed(turns: Turns, audio: bytes, td: TurnDetectionConfig) -> None:
    step = PCM16_16K.bytes_for(0.02)
    for i in range(0, len(audio), step):
        turns.input.take(audio[i : i + step], td)
        for _ in range(5):
            await asyncio.sleep(0)  # let an early transcription run and finish


async def test_the_reply_started_in_the_silence_goes_with_the_turn_it_answers() -> None:
    speculate = Speculations()
    turns = Turns(speculate=speculate)
    td = TurnDetectionConfig(silence_duration=0.5)
    turns.input.use_vad(EnergyVAD(VADConfig(speech_end=0.5, pre_roll=0.1), RATE))
    tone = tone_pcm16(0.5, sample_rate=RATE)
    await feed(turns, silence_pcm16(0.3, sample_rate=RATE) + tone, td)
    await feed(turns, silence_pcm16(0.35, sample_rate=RATE), td)  # early, turn not ended
    [(until, text, first)] = speculate.started
    assert text == f"{turns.stt.calls[0]} bytes"  # the early transcript
    assert turns.ended == []
    await feed(turns, tone + silence_pcm16(0.8, sample_rate=RATE), td)  # the user goes on
    assert first.task is not None
    assert first.task.cancelled()  # dropped when voice resumed
    with pytest.raises(RuntimeError):
        first.commit()
    [_, (until, _, second)] = speculate.started
    assert turns.speculations == [second]  # the one made for the turn's real end
    stopped = [e for e in turns.events if isinstance(e, SpeechStopped)]
    assert [e.audio_end for e in stopped] == [until]
    second.commit()  # still held: it can become the reply
    await turns.input.aclose()


async def test_clearing_the_input_drops_the_reply_started_for_it() -> None:
    speculate = Speculations()
    turns = Turns(speculate=speculate)
    td = TurnDetectionConfig(silence_duration=0.5)
    turns.input.use_vad(EnergyVAD(VADConfig(speech_end=0.5, pre_roll=0.1), RATE))
    audio = tone_pcm16(0.5, sample_rate=RATE) + silence_pcm16(0.35, sample_rate=RATE)
    await feed(turns, audio, td)
    [(_, _, speculation)] = speculate.started
    turns.input.clear()
    assert speculation.task is not None
    with pytest.raises(asyncio.CancelledError):
        await speculation.task
    await turns.input.aclose()


async def test_closing_cancels_an_early_transcription_under_way() -> None:
    turns = Turns(hang=True)
    td = TurnDetectionConfig(silence_duration=2.0)
    turns.input.use_vad(EnergyVAD(VADConfig(speech_end=2.0), RATE))
    audio = tone_pcm16(0.5, sample_rate=RATE) + silence_pcm16(1.0, sample_rate=RATE)
    step = PCM16_16K.bytes_for(0.02)
    for i in range(0, len(audio), step):
        turns.input.take(audio[i : i + step], td)
        await asyncio.sleep(0)
    assert len(turns.stt.calls) == 1  # started once the silence passed 40% of 2 s
    await turns.input.aclose()
    assert turns.stt.cancelled == 1
    assert turns.ended == []  # the turn never ended


@pytest.mark.parametrize("early_after", [0.1, 0.15, 0.3])
async def test_the_early_transcription_starts_after_the_configured_silence(
    early_after: float,
) -> None:
    turns = Turns(early_after=early_after)
    td = TurnDetectionConfig(silence_duration=0.5)
    turns.input.use_vad(EnergyVAD(VADConfig(speech_end=0.5, pre_roll=0.1), RATE))
    tone = tone_pcm16(0.5, sample_rate=RATE)
    audio = silence_pcm16(0.3, sample_rate=RATE) + tone + silence_pcm16(0.8, sample_rate=RATE)
    await feed(turns, audio, td)
    assert len(turns.ended) == 1
    early = turns.ended[0][3]
    assert early is not None
    # its one call heard the pre-roll, the speech and ``early_after`` of silence (the
    # energy VAD counts silence in 20 ms frames)
    [heard] = turns.stt.calls
    silence_heard = (heard - PCM16_16K.bytes_for(0.1) - len(tone)) / PCM16_16K.bytes_for(1.0)
    assert early_after <= silence_heard <= early_after + 0.03
    await turns.input.aclose()


async def test_no_early_transcription_when_it_would_come_after_the_end_of_turn() -> None:
    turns = Turns(early_after=0.5)
    td = TurnDetectionConfig(silence_duration=0.5)
    turns.input.use_vad(EnergyVAD(VADConfig(speech_end=0.5, pre_roll=0.1), RATE))
    audio = tone_pcm16(0.5, sample_rate=RATE) + silence_pcm16(0.8, sample_rate=RATE)
    await feed(turns, audio, td)
    assert len(turns.ended) == 1
    assert turns.ended[0][3] is None  # transcribed when the turn ended, not before
    assert turns.stt.calls == []
    await turns.input.aclose()
