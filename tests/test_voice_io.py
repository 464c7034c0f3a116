"""VoiceIO alone: what reaches the provider for the audio an application sends, what
the speaker plays, and barge-in cut at the audio that was played."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from voxengine import VoiceEngineConfig
from voxengine.audio.devices import FileInput, FileOutput
from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.audio.wav import write_wav
from voxengine.commands import Command, CommitAudio, CreateResponse, SendAudio
from voxengine.errors import AudioError, ConfigError
from voxengine.events import (
    AudioDelta,
    AudioDone,
    Event,
    Interrupted,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    SpeechStarted,
    SpeechStopped,
)
from voxengine.providers.base import BaseProvider, ProviderConfig
from voxengine.testing._speechlike import silence_pcm16, tone_pcm16
from voxengine.voice_io import VoiceIO


class Recorder(BaseProvider):
    """A provider written the new way (only ``send``): records every command."""

    name = "recorder"

    def __init__(self) -> None:
        super().__init__(ProviderConfig())
        self.sent: list[Command] = []
        self.interrupts: list[tuple[float | None, str | None, bool]] = []
        self.interrupted = asyncio.Event()

    @property
    def input_format(self) -> AudioFormat:
        return PCM16_24K

    @property
    def output_format(self) -> AudioFormat:
        return PCM16_24K

    @property
    def is_connected(self) -> bool:
        return True

    async def connect(self, retry_count: int = 3) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def send(self, command: Command, *more: Command) -> None:
        self.sent.extend((command, *more))

    async def interrupt(
        self, played: float | None = None, *, item_id: str | None = None, cancel: bool = True
    ) -> Interrupted:
        self.interrupts.append((played, item_id, cancel))
        self.interrupted.set()
        return Interrupted(item_id=item_id, played=played)

    async def events(self) -> AsyncIterator[Event]:
        return
        yield


async def _noop(event: Event) -> None:
    pass


def _voice(provider: Recorder, seconds: list[float]) -> VoiceIO:
    config = VoiceEngineConfig(provider="mock", vad_enabled=False)
    return VoiceIO(provider, config, _noop, on_audio_sent=seconds.append)


async def test_audio_at_the_provider_rate_goes_out_as_is_in_one_command() -> None:
    provider, seconds = Recorder(), []
    voice = _voice(provider, seconds)
    pcm = bytes(range(256)) * 3  # 768 bytes = 384 samples
    await voice.send_audio(bytearray(pcm), sample_rate=24000, channels=1)
    assert provider.sent == [SendAudio(audio=pcm)]
    assert type(provider.sent[0].audio) is bytes  # type: ignore[union-attr]
    assert seconds == [pytest.approx(384 / 24000)]


async def test_stereo_48k_is_downmixed_and_resampled_to_the_provider_format() -> None:
    provider, seconds = Recorder(), []
    voice = _voice(provider, seconds)
    stereo_48k = b"\x10\x00\x10\x00" * 4800  # 0.1 s
    await voice.send_audio(stereo_48k, sample_rate=48000, channels=2)
    await voice.send_audio(stereo_48k, sample_rate=48000, channels=2)
    sent = b"".join(c.audio for c in provider.sent if isinstance(c, SendAudio))
    # At most 0.2 s at 24 kHz mono (the stream resampler holds back its filter delay);
    # unconverted it would be 38 400 bytes, downmixed only 19 200.
    assert 0.15 * 48000 <= len(sent) <= 0.2 * 48000
    assert sum(seconds) == pytest.approx(len(sent) / 48000)


@pytest.mark.parametrize(
    ("audio", "channels"),
    [(b"\x00\x00\x00", 1), ("not bytes", 1), (b"\x00\x00", 2)],
)
async def test_malformed_audio_is_refused_and_nothing_is_sent(audio: object, channels: int) -> None:
    provider = Recorder()
    voice = _voice(provider, [])
    with pytest.raises(AudioError):
        await voice.send_audio(audio, sample_rate=None, channels=channels)  # type: ignore[arg-type]
    assert provider.sent == []


async def test_empty_audio_sends_nothing() -> None:
    provider = Recorder()
    await _voice(provider, []).send_audio(b"", sample_rate=None, channels=1)
    assert provider.sent == []


class Clock:
    """A clock the test moves by hand (the output consumes audio as it advances)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _speaking(voice: VoiceIO, clock: Clock, seconds: float) -> None:
    """The assistant starts a reply and its first ``seconds`` of audio arrive."""
    voice.observe(ResponseStarted(response_id="r1"))
    audio = bytes(PCM16_24K.bytes_for(seconds))
    voice.observe(AudioDelta(response_id="r1", item_id="a1", audio=audio))


async def test_the_users_speech_stops_playback_and_cuts_the_reply_at_what_was_played() -> None:
    provider, clock = Recorder(), Clock()
    voice = _voice(provider, [])
    voice.output = FileOutput(PCM16_24K, clock=clock)
    await voice.output.start()
    await _speaking(voice, clock, 2.0)
    clock.now += 0.5  # half a second of the reply reached the speaker
    voice.observe(SpeechStarted(item_id=None))
    await asyncio.wait_for(provider.interrupted.wait(), 5)
    [(played, item_id, cancel)] = provider.interrupts
    assert item_id == "a1"
    assert played == pytest.approx(0.5, abs=0.01)
    assert cancel  # no provider VAD here to cancel by itself
    assert voice.output.pending == 0  # the rest of the reply was dropped at once
    clock.now += 1.0
    assert len(voice.output.audio) == PCM16_24K.bytes_for(0.5)  # nothing more played


async def test_barge_in_leaves_the_cancel_to_a_provider_whose_vad_interrupts() -> None:
    provider, clock = Recorder(), Clock()
    config = VoiceEngineConfig(provider="mock", vad_enabled=True, vad_type="server")
    voice = VoiceIO(provider, config, _noop)
    voice.output = FileOutput(PCM16_24K, clock=clock)
    await voice.output.start()
    await _speaking(voice, clock, 1.0)
    voice.observe(SpeechStarted(item_id=None))
    await asyncio.wait_for(provider.interrupted.wait(), 5)
    assert [cancel for _, _, cancel in provider.interrupts] == [False]


async def test_speech_while_nothing_is_audible_interrupts_nothing() -> None:
    provider, clock = Recorder(), Clock()
    voice = _voice(provider, [])
    voice.output = FileOutput(PCM16_24K, clock=clock)
    await voice.output.start()
    await _speaking(voice, clock, 0.2)
    voice.observe(ResponseDone(response_id="r1", status=ResponseStatus.COMPLETED))
    clock.now += 1.0  # the reply has finished playing
    voice.observe(SpeechStarted(item_id=None))
    await voice.close()  # waits for any barge-in task
    assert provider.interrupts == []


async def test_reply_audio_is_resampled_to_the_output_and_its_tail_played_at_the_end() -> None:
    provider = Recorder()
    voice = _voice(provider, [])
    voice.output = FileOutput(AudioFormat(sample_rate=48_000), realtime=False)
    voice.attach(provider)  # the output resampler follows the provider's rate
    voice.observe(ResponseStarted(response_id="r1"))
    for _ in range(5):
        voice.observe(AudioDelta(response_id="r1", item_id="a1", audio=tone_pcm16(0.1)))
    before_end = len(voice.output.audio)
    voice.observe(AudioDone(response_id="r1", item_id="a1"))
    played = voice.output.audio
    assert len(played) > before_end  # the resampler's held-back tail came out at the end
    # 0.5 s at 48 kHz, give or take the filter's few samples
    assert len(played) == pytest.approx(2 * 48_000 * 0.5, abs=2 * 64)


async def test_reply_audio_with_no_output_is_ignored() -> None:
    voice = _voice(Recorder(), [])
    voice.observe(AudioDelta(response_id="r1", item_id="a1", audio=tone_pcm16(0.1)))
    assert voice.output is None
    assert voice.playback.queued == 0


async def test_client_vad_ends_the_turn_and_asks_for_the_reply() -> None:
    provider, requests, emitted = Recorder(), [], []

    async def emit(event: Event) -> None:
        emitted.append(event)

    config = VoiceEngineConfig(provider="mock", vad_enabled=True, vad_type="client")
    voice = VoiceIO(provider, config, emit, on_request=lambda: requests.append(1))
    turn = silence_pcm16(0.3) + tone_pcm16(0.6) + silence_pcm16(1.0)
    step = PCM16_24K.bytes_for(0.02)
    for i in range(0, len(turn), step):
        await voice.send_audio(turn[i : i + step], sample_rate=None, channels=1)
    assert [type(e) for e in emitted] == [SpeechStarted, SpeechStopped]
    kinds = [type(c) for c in provider.sent]
    assert kinds[-2:] == [CommitAudio, CreateResponse]
    assert set(kinds[:-2]) == {SendAudio}
    assert requests == [1]
    sent = b"".join(c.audio for c in provider.sent if isinstance(c, SendAudio))
    # the speech with its pre-roll, not the leading silence before it
    assert PCM16_24K.bytes_for(0.6) <= len(sent) < len(turn)


async def test_listening_streams_the_input_until_it_ends(tmp_path: Path) -> None:
    provider = Recorder()
    voice = _voice(provider, [])
    with pytest.raises(ConfigError, match="no audio input"):
        await voice.start_listening()
    wav = tmp_path / "in.wav"
    write_wav(wav, tone_pcm16(0.2), PCM16_24K)
    voice.input = FileInput(wav, PCM16_24K, realtime=False, trailing_silence=0.0)
    await voice.start_listening()
    await asyncio.wait_for(voice.wait_listening_done(), 10)
    sent = b"".join(c.audio for c in provider.sent if isinstance(c, SendAudio))
    assert sent == tone_pcm16(0.2)
