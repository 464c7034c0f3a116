from __future__ import annotations

import asyncio
import sys
import threading
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voxengine.audio import PCM16_16K, PCM16_24K, AudioFormat, read_wav, write_wav
from voxengine.audio.devices import (
    AudioInput,
    AudioOutput,
    ChunkQueue,
    DeviceInfo,
    FileInput,
    FileOutput,
    NullInput,
    NullOutput,
    PlaybackBuffer,
    SoundDeviceInput,
    SoundDeviceOutput,
    list_devices,
)
from voxengine.errors import AudioError, ConfigError


def ramp(seconds: float, fmt: AudioFormat = PCM16_16K, start: int = 0) -> bytes:
    """Distinct, recognisable samples (a sawtooth), so order and offsets can be checked."""
    n = round(seconds * fmt.sample_rate) * fmt.channels
    return ((np.arange(n) + start) % 30_000).astype("<i2").tobytes()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def read_all(source: AudioInput) -> list[bytes]:
    chunks = []
    while chunk := await source.read():
        chunks.append(chunk)
    return chunks


# --------------------------------------------------------------------- FileInput / NullInput


async def test_file_input_converts_chunks_and_ends(tmp_path: Path) -> None:
    stereo48 = AudioFormat(sample_rate=48_000, channels=2)
    write_wav(tmp_path / "in.wav", ramp(0.5, stereo48), stereo48)
    source = FileInput(
        tmp_path / "in.wav", PCM16_24K, chunk=0.02, realtime=False, trailing_silence=0.11
    )
    assert source.format == PCM16_24K
    assert source.duration == pytest.approx(0.61, abs=1e-3)
    with pytest.raises(AudioError, match="not started"):
        await source.read()
    await source.start()
    chunks = await read_all(source)
    assert all(len(c) == 960 for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= 960
    audio = b"".join(chunks)
    assert PCM16_24K.duration(len(audio)) == pytest.approx(0.61, abs=1e-3)
    assert audio.endswith(bytes(PCM16_24K.bytes_for(0.11)))
    assert await source.read() == b""  # stays at the end
    await source.start()  # rewinds
    assert await source.read() == chunks[0]
    await source.stop()
    await source.stop()
    with pytest.raises(AudioError):
        await source.read()


async def test_file_input_is_paced_by_the_loop_clock(tmp_path: Path) -> None:
    write_wav(tmp_path / "in.wav", ramp(0.1), PCM16_16K)
    source = FileInput(tmp_path / "in.wav", PCM16_16K, chunk=0.02, trailing_silence=0.04)
    loop = asyncio.get_running_loop()
    await source.start()
    t0 = loop.time()
    delivered = 0
    while chunk := await source.read():
        delivered += len(chunk)
        # a chunk is never delivered before the clock reaches its end
        assert loop.time() - t0 >= PCM16_16K.duration(delivered) - 0.002
    elapsed = loop.time() - t0
    assert 0.138 <= elapsed < 0.5  # 0.1 s of file + 0.04 s of silence, no drift
    await source.start()
    await asyncio.sleep(0.05)  # a late reader gets the chunks already due at once
    t1 = loop.time()
    assert len(await source.read()) == 640
    assert len(await source.read()) == 640
    assert loop.time() - t1 < 0.015


async def test_stop_wakes_a_waiting_read() -> None:
    source = NullInput(PCM16_16K, chunk=0.5)
    await source.start()
    task = asyncio.create_task(source.read())
    await asyncio.sleep(0.01)
    await source.stop()
    with pytest.raises(AudioError, match="stopped"):
        await task


async def test_null_input_silence_finite_and_endless() -> None:
    finite = NullInput(PCM16_16K, chunk=0.02, realtime=False, duration=0.05)
    await finite.start()
    chunks = await read_all(finite)
    assert [len(c) for c in chunks] == [640, 640, 320]
    assert not any(b"".join(chunks))
    endless = NullInput(PCM16_24K, realtime=False)
    await endless.start()
    for _ in range(100):
        assert await endless.read() == bytes(960)
    assert endless.realtime is False


def test_input_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        NullInput(chunk=0.0)
    with pytest.raises(ConfigError):
        NullInput(duration=-1.0)
    with pytest.raises(AudioError):
        FileInput(tmp_path / "missing.wav")
    write_wav(tmp_path / "in.wav", ramp(0.01), PCM16_16K)
    with pytest.raises(ConfigError):
        FileInput(tmp_path / "in.wav", trailing_silence=-1.0)


# --------------------------------------------------------------------- FileOutput / NullOutput


async def test_realtime_file_output_accounting_with_an_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    out = FileOutput(PCM16_16K, realtime=True, clock=clock)
    first, second = ramp(1.0), ramp(0.5, start=7)
    out.write(first)
    assert (out.played, out.pending) == (0.0, 1.0)  # not started: nothing plays
    clock.now += 5.0
    assert out.played == 0.0
    await out.start()
    clock.now += 0.25
    assert (out.played, out.pending) == (0.25, 0.75)
    out.mark()
    assert out.played == 0.0
    clock.now += 0.25
    assert (out.played, out.pending) == (0.25, 0.5)
    assert out.clear() == 0.5
    assert out.pending == 0.0
    clock.now += 2.0  # underrun: the "speaker" plays silence, which is not counted
    assert out.played == 0.25
    out.write(second)  # starts playing now, not in the past
    assert (out.played, out.pending) == (0.25, 0.5)
    clock.now += 0.05
    assert out.played == pytest.approx(0.3)
    await out.stop()
    clock.now += 10.0
    assert out.pending == pytest.approx(0.45)
    assert out.audio == first[:16_000] + second[:1_600]
    out.save(tmp_path / "out.wav")
    assert read_wav(tmp_path / "out.wav") == (out.audio, PCM16_16K)


async def test_realtime_output_with_the_loop_clock() -> None:
    out: AudioOutput = NullOutput(PCM16_24K)
    await out.start()
    await out.start()  # idempotent
    out.write(ramp(0.2, PCM16_24K))
    await asyncio.sleep(0.03)
    await out.stop()  # freezes the position, so the two reads below agree
    played, pending = out.played, out.pending
    assert 0.02 <= played <= 0.2
    assert round((played + pending) * 24_000) == 4800  # frame-exact
    assert out.clear() == pending


async def test_non_realtime_output_plays_at_once() -> None:
    out = FileOutput(PCM16_24K, realtime=False)
    assert out.realtime is False
    out.write(ramp(0.1, PCM16_24K))  # no start() needed
    assert (out.played, out.pending, out.clear()) == (0.1, 0.0, 0.0)
    out.mark()
    out.write(b"")
    out.write(ramp(0.05, PCM16_24K))
    assert out.played == 0.05
    assert out.audio == ramp(0.1, PCM16_24K) + ramp(0.05, PCM16_24K)
    with pytest.raises(AudioError):
        out.write(b"\x00")
    assert out.format == PCM16_24K


# --------------------------------------------------------------------- thread hand-off helpers


def test_playback_buffer_pull_from_a_device_thread() -> None:
    buffer = PlaybackBuffer(PCM16_16K)
    audio = ramp(1.0)
    pulled: list[bytes] = []

    def writer() -> None:
        for i in range(0, len(audio), 1234):
            buffer.write(audio[i : i + 1234])

    def device() -> None:
        for _ in range(60):  # 60 blocks of 20 ms = 1.2 s > 1.0 s written
            pulled.append(buffer.pull(320))

    threads = [threading.Thread(target=writer)]
    threads[0].start()
    threads[0].join()
    threads.append(threading.Thread(target=device))
    threads[1].start()
    threads[1].join()
    assert all(len(block) == 640 for block in pulled)
    played = b"".join(pulled)
    assert played[: len(audio)] == audio
    assert not any(played[len(audio) :])  # underrun filled with silence
    assert buffer.played_frames == 16_000  # silence not counted
    assert (buffer.played, buffer.pending) == (1.0, 0.0)
    buffer.mark()
    assert buffer.played == 0.0
    assert buffer.read(10) == b""


def test_playback_buffer_concurrent_write_and_pull_keeps_order() -> None:
    buffer = PlaybackBuffer(PCM16_16K)
    audio = ramp(2.0)
    pulled = bytearray()
    done = threading.Event()

    def writer() -> None:
        for i in range(0, len(audio), 962):
            buffer.write(audio[i : i + 962])
        done.set()

    def device() -> None:
        while not (done.is_set() and buffer.pending == 0):
            pulled.extend(buffer.read(160))

    threads = [threading.Thread(target=writer), threading.Thread(target=device)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert bytes(pulled) == audio
    assert buffer.played == 2.0


async def test_chunk_queue_drops_oldest_in_order_from_a_thread() -> None:
    queue = ChunkQueue(asyncio.get_running_loop(), maxsize=4)
    chunks = [bytes([i]) * 4 for i in range(10)]

    def device() -> None:
        for chunk in chunks:
            queue.put_threadsafe(chunk)

    thread = threading.Thread(target=device)
    thread.start()
    thread.join()
    await asyncio.sleep(0)  # the loop runs the scheduled puts, in order
    assert queue.qsize() == 4
    assert queue.dropped_chunks == 6
    assert [await queue.get() for _ in range(4)] == chunks[6:]


async def test_chunk_queue_streams_in_order_and_close_wakes_readers() -> None:
    queue = ChunkQueue(asyncio.get_running_loop(), maxsize=1000)
    chunks = [i.to_bytes(2, "little") for i in range(500)]

    def device() -> None:
        for chunk in chunks:
            queue.put_threadsafe(chunk)

    thread = threading.Thread(target=device)
    thread.start()
    received = [await queue.get() for _ in chunks]
    thread.join()
    assert received == chunks
    assert queue.dropped_chunks == 0
    waiters = [asyncio.create_task(queue.get()) for _ in range(2)]
    await asyncio.sleep(0)
    queue.put_threadsafe(b"late")
    queue.close()
    await asyncio.sleep(0)
    queue.close()
    assert queue.closed
    for waiter in waiters:
        with pytest.raises(AudioError):
            await waiter
    assert queue.qsize() == 1  # "late" arrived after close: discarded
    with pytest.raises(AudioError):
        await queue.get()
    with pytest.raises(ConfigError):
        ChunkQueue(asyncio.get_running_loop(), maxsize=0)


async def test_chunk_queue_close_discards_queued_chunks() -> None:
    queue = ChunkQueue(asyncio.get_running_loop(), maxsize=3)
    for chunk in (b"a", b"b"):
        queue.put_threadsafe(chunk)
    await asyncio.sleep(0)
    assert queue.qsize() == 2
    queue.close()
    with pytest.raises(AudioError):
        await queue.get()


def test_chunk_queue_put_after_the_loop_closed_is_ignored() -> None:
    loop = asyncio.new_event_loop()
    queue = ChunkQueue(loop, maxsize=2)
    loop.close()
    queue.put_threadsafe(b"xx")  # no exception from the device thread


# --------------------------------------------------------------------- sounddevice


class FakeStream:
    def __init__(self, module: FakeSoundDevice, **kwargs: Any) -> None:
        if module.refuse:
            raise module.PortAudioError("Invalid sample rate")
        self.module = module
        self.kwargs = kwargs
        self.callback = kwargs["callback"]
        self.state = "created"
        module.streams.append(self)

    def start(self) -> None:
        self.state = "started"

    def stop(self) -> None:
        if self.module.fail_close:
            raise self.module.PortAudioError("device vanished")
        self.state = "stopped"

    def close(self) -> None:
        self.state = "closed"


class FakeSoundDevice(types.ModuleType):
    """Stands in for the sounddevice module (PortAudio is not needed)."""

    class PortAudioError(Exception):
        pass

    def __init__(self, devices: list[dict[str, Any]]) -> None:
        super().__init__("sounddevice")
        self.devices = devices
        self.default = types.SimpleNamespace(device=[0, 1])
        self.streams: list[FakeStream] = []
        self.refuse = False
        self.fail_close = False
        self.fail_query = False

    def query_devices(self) -> list[dict[str, Any]]:
        if self.fail_query:
            raise self.PortAudioError("Error querying device -1")
        return self.devices

    def RawInputStream(self, **kwargs: Any) -> FakeStream:  # sounddevice's name
        return FakeStream(self, **kwargs)

    def RawOutputStream(self, **kwargs: Any) -> FakeStream:  # sounddevice's name
        return FakeStream(self, **kwargs)


def device(name: str, inputs: int, outputs: int) -> dict[str, Any]:
    return {
        "name": name,
        "max_input_channels": inputs,
        "max_output_channels": outputs,
        "default_samplerate": 48000.0,
    }


@pytest.fixture
def fake_sd(monkeypatch: pytest.MonkeyPatch) -> FakeSoundDevice:
    module = FakeSoundDevice(
        [device("Built-in Mic", 1, 0), device("Speakers", 0, 2), device("USB Headset", 1, 2)]
    )
    monkeypatch.setitem(sys.modules, "sounddevice", module)
    return module


def test_missing_sounddevice_module_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    for make in (SoundDeviceInput, SoundDeviceOutput, list_devices):
        with pytest.raises(ConfigError, match="pip install sounddevice"):
            make()


def test_missing_portaudio_library_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "sounddevice.py").write_text("raise OSError('PortAudio library not found')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    with pytest.raises(ConfigError, match="libportaudio2"):
        SoundDeviceInput()


async def test_no_devices_is_an_audio_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", FakeSoundDevice([]))
    assert list_devices() == []
    with pytest.raises(AudioError, match="no audio input device"):
        await SoundDeviceInput().start()
    with pytest.raises(AudioError, match="no audio output device"):
        await SoundDeviceOutput().start()


async def test_list_devices_and_device_selection(fake_sd: FakeSoundDevice) -> None:
    assert list_devices()[2] == DeviceInfo(
        index=2,
        name="USB Headset",
        max_input_channels=1,
        max_output_channels=2,
        default_sample_rate=48000.0,
    )
    for wanted, expected in [(None, 0), (2, 2), ("USB Headset", 2), ("usb", 2), ("mic", 0)]:
        mic = SoundDeviceInput(input_device=wanted)
        await mic.start()
        assert fake_sd.streams[-1].kwargs["device"] == expected
        await mic.stop()
    fake_sd.default.device = [-1, -1]  # PortAudio's "no default"
    speaker = SoundDeviceOutput(PCM16_16K, output_device=None)
    await speaker.stop()  # not started: nothing to do
    await speaker.start()
    await speaker.start()  # idempotent
    assert fake_sd.streams[-1].kwargs["device"] == 1  # first output device
    await speaker.stop()
    fake_sd.default.device = None  # unusual value: fall back to the first device
    mic = SoundDeviceInput()
    await mic.start()
    assert fake_sd.streams[-1].kwargs["device"] == 0
    fake_sd.fail_close = True
    with pytest.raises(AudioError, match="device vanished"):
        await mic.stop()
    assert fake_sd.streams[-1].state == "closed"
    fake_sd.fail_query = True
    with pytest.raises(AudioError, match="cannot list audio devices"):
        list_devices()
    fake_sd.fail_query = False
    with pytest.raises(AudioError, match="no input device with index 1"):
        await SoundDeviceInput(input_device=1).start()
    with pytest.raises(AudioError, match="'USB Headset'"):
        await SoundDeviceOutput(output_device="hdmi").start()
    fake_sd.refuse = True
    with pytest.raises(AudioError, match="Invalid sample rate"):
        await SoundDeviceInput().start()
    with pytest.raises(AudioError, match="Invalid sample rate"):
        await SoundDeviceOutput().start()


async def test_sounddevice_input_hands_off_from_the_portaudio_thread(
    fake_sd: FakeSoundDevice,
) -> None:
    mic = SoundDeviceInput(PCM16_16K, chunk=0.01, max_queued_chunks=4)
    assert (mic.format, mic.dropped_chunks) == (PCM16_16K, 0)
    await mic.stop()  # not started: nothing to do
    with pytest.raises(AudioError, match="not started"):
        await mic.read()
    await mic.start()
    await mic.start()  # idempotent
    (stream,) = fake_sd.streams
    assert stream.state == "started"
    assert stream.kwargs["blocksize"] == 160
    assert (stream.kwargs["samplerate"], stream.kwargs["dtype"]) == (16_000, "int16")
    blocks = [bytearray([i]) * 320 for i in range(10)]  # PortAudio reuses its buffers

    def portaudio() -> None:
        for i, block in enumerate(blocks):
            stream.callback(block, 160, None, i == 0)  # first block reports an overflow
            block[:] = bytes(320)  # the buffer is overwritten after the callback returns

    thread = threading.Thread(target=portaudio)
    thread.start()
    thread.join()
    await asyncio.sleep(0)
    assert mic.dropped_chunks == 6
    assert mic.status_errors == 1
    assert [await mic.read() for _ in range(4)] == [bytes([i]) * 320 for i in range(6, 10)]
    reader = asyncio.create_task(mic.read())
    await asyncio.sleep(0)
    await mic.stop()
    assert stream.state == "closed"
    with pytest.raises(AudioError):
        await reader
    stream.callback(b"\x00\x00", 1, None, False)  # a late callback after stop is harmless
    await mic.stop()


async def test_sounddevice_output_callback_pulls_exact_frames(fake_sd: FakeSoundDevice) -> None:
    speaker = SoundDeviceOutput(PCM16_16K, chunk=0.02)
    assert speaker.format == PCM16_16K
    audio = ramp(0.05)
    speaker.write(audio)
    await speaker.start()
    (stream,) = fake_sd.streams
    blocks: list[bytes] = []

    def portaudio() -> None:
        for _ in range(4):
            outdata = bytearray(640)
            stream.callback(outdata, 320, None, False)
            blocks.append(bytes(outdata))

    thread = threading.Thread(target=portaudio)
    thread.start()
    thread.join()
    played = b"".join(blocks)
    assert played[: len(audio)] == audio
    assert not any(played[len(audio) :])
    assert (speaker.played, speaker.pending) == (0.05, 0.0)
    speaker.mark()
    speaker.write(audio)
    stream.callback(bytearray(640), 320, None, True)
    assert speaker.status_errors == 1
    assert speaker.played == 0.02
    assert speaker.clear() == pytest.approx(0.03)
    await speaker.stop()
    assert stream.state == "closed"


def test_device_config_errors(fake_sd: FakeSoundDevice) -> None:
    with pytest.raises(ConfigError):
        SoundDeviceInput(max_queued_chunks=0)
    with pytest.raises(ConfigError):
        SoundDeviceOutput(chunk=-1.0)
