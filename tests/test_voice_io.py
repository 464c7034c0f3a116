"""VoiceIO alone: what reaches the provider for the audio an application sends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from voxengine import VoiceEngineConfig
from voxengine.audio.format import PCM16_24K, AudioFormat
from voxengine.commands import Command, SendAudio
from voxengine.errors import AudioError
from voxengine.events import Event, Interrupted
from voxengine.providers.base import BaseProvider, ProviderConfig
from voxengine.voice_io import VoiceIO


class Recorder(BaseProvider):
    """A provider written the new way (only ``send``): records every command."""

    name = "recorder"

    def __init__(self) -> None:
        super().__init__(ProviderConfig())
        self.sent: list[Command] = []

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
        return Interrupted(item_id=item_id)

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
