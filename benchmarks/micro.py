"""Part 3: the audio path, one 20 ms frame at a time, without sockets.

* ``StreamResampler.process`` per 20 ms input frame (48→24, 16→24, 24→16 kHz);
* ``EnergyVAD.process`` per 20 ms frame at 24 kHz (speech-like audio and near-silence),
  and as a ratio to a bare numpy RMS of the same frames (the machine-independent figure);
* outgoing chunk encode: ``OpenAIRealtimeProtocol.send(SendAudio)`` + ``data_to_send()``
  versus the floor's ``orjson.dumps`` + ``binascii`` encode (and stdlib ``json``);
* incoming chunk decode: ``receive_message(frame)`` + ``events_received()`` (the
  ``AudioDelta``) versus the floor ``json.loads`` + ``b64decode``;
* copies: ``tracemalloc`` peak of transient allocations and bytes kept per frame, next to
  the payload sizes (base64 text and PCM), to spot extra copies on the hot path.

Each timing is the median over ``repeats`` runs of ``number`` calls, in µs per call.
"""

from __future__ import annotations

import base64
import binascii
import json
import statistics
import timeit
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from benchmarks.compare import input_chunk
from voxengine.audio.resample import StreamResampler
from voxengine.audio.vad import EnergyVAD
from voxengine.commands import SendAudio
from voxengine.config import SessionConfig
from voxengine.events import AudioDelta
from voxengine.protocols.openai.protocol import OpenAIRealtimeProtocol
from voxengine.testing import synthesize_speech

__all__ = ["run_micro"]

FRAME_SECONDS = 0.02


def _per_call_us(fn: Callable[[], object], number: int, repeats: int) -> float:
    fn()  # warm
    runs = timeit.repeat(fn, number=number, repeat=repeats)
    return statistics.median(runs) / number * 1e6


def _cycler(frames: list[bytes], consume: Callable[[bytes], object]) -> Callable[[], object]:
    """A no-argument callable feeding ``frames`` to ``consume`` in a loop."""
    position = 0

    def step() -> object:
        nonlocal position
        frame = frames[position]
        position = (position + 1) % len(frames)
        return consume(frame)

    return step


def _frames(pcm: bytes, rate: int) -> list[bytes]:
    size = 2 * round(rate * FRAME_SECONDS)
    return [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size)]


def open_protocol() -> OpenAIRealtimeProtocol:
    """A client protocol taken through the handshake, ready for audio."""
    protocol = OpenAIRealtimeProtocol(
        url="ws://127.0.0.1/v1/realtime?model=gpt-realtime",
        headers={"Authorization": "Bearer sk-bench"},
        session=SessionConfig(),
    )
    protocol.receive_message('{"type":"session.created","session":{"id":"s","model":"m"}}')
    protocol.receive_message('{"type":"session.updated","session":{}}')
    protocol.data_to_send()
    protocol.events_received()
    return protocol


def audio_delta_frame(pcm: bytes) -> str:
    """A GA ``response.output_audio.delta`` frame as the fake server writes it."""
    return json.dumps(
        {
            "type": "response.output_audio.delta",
            "event_id": "event_0042",
            "response_id": "resp_0001",
            "item_id": "item_0003",
            "output_index": 0,
            "content_index": 0,
            "delta": base64.b64encode(pcm).decode("ascii"),
            "bench_sent": 1234.5678,
        },
        separators=(",", ":"),
    )


def _allocations(fn: Callable[[], Any], count: int = 200) -> dict[str, float]:
    """Peak transient and kept bytes per call of ``fn`` (results kept alive)."""
    kept: list[Any] = []
    fn()
    tracemalloc.start()
    try:
        peaks = []
        base = tracemalloc.get_traced_memory()[0]
        for _ in range(count):
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            kept.append(fn())
            peak = tracemalloc.get_traced_memory()[1]
            peaks.append(peak - before)
        retained = (tracemalloc.get_traced_memory()[0] - base) / count
    finally:
        tracemalloc.stop()
    return {"peak_bytes": statistics.median(peaks), "kept_bytes": retained}


def run_micro(number: int = 2000, repeats: int = 7) -> dict[str, Any]:
    """All micro-benchmarks; returns µs per 20 ms frame and the allocation check."""
    speech = synthesize_speech(" ".join(f"w{i}" for i in range(20)))  # 6 s, 24 kHz
    quiet = input_chunk(6.0)
    results: dict[str, Any] = {"number": number, "repeats": repeats}

    resample: dict[str, float] = {}
    for src, dst in ((48_000, 24_000), (16_000, 24_000), (24_000, 16_000)):
        resampler = StreamResampler(24_000, src)  # make input at the source rate
        source = resampler.process(speech) + resampler.flush()
        stream = StreamResampler(src, dst)
        resample[f"{src // 1000}k_to_{dst // 1000}k_us"] = _per_call_us(
            _cycler(_frames(source, src), stream.process), number, repeats
        )
    results["resample_per_frame"] = resample

    vad_speech, vad_quiet = EnergyVAD(), EnergyVAD()
    results["energy_vad_per_frame"] = {
        "speech_us": _per_call_us(
            _cycler(_frames(speech, 24_000), vad_speech.process), number, repeats
        ),
        "quiet_us": _per_call_us(
            _cycler(_frames(quiet, 24_000), vad_quiet.process), number, repeats
        ),
    }

    def numpy_rms(frame: bytes) -> float:
        # the least a level-based VAD must do per frame: int16 -> float, RMS
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        return float(np.sqrt(np.dot(samples, samples) / len(samples)))

    rms = {
        "speech_us": _per_call_us(_cycler(_frames(speech, 24_000), numpy_rms), number, repeats),
        "quiet_us": _per_call_us(_cycler(_frames(quiet, 24_000), numpy_rms), number, repeats),
    }
    results["numpy_rms_per_frame"] = rms
    vad = results["energy_vad_per_frame"]
    results["energy_vad_vs_numpy_rms"] = {
        "speech": vad["speech_us"] / rms["speech_us"],
        "quiet": vad["quiet_us"] / rms["quiet_us"],
    }

    pcm = _frames(speech, 24_000)[10]
    protocol = open_protocol()

    def encode_voxengine() -> list[str | bytes]:
        protocol.send(SendAudio(audio=pcm))
        return protocol.data_to_send()

    def encode_floor_stdlib() -> str:
        audio = base64.b64encode(pcm).decode("ascii")
        return json.dumps({"type": "input_audio_buffer.append", "audio": audio})

    def encode_floor() -> bytes:  # what the benchmark's floor client does
        audio = binascii.b2a_base64(pcm, newline=False).decode("ascii")
        return orjson.dumps({"type": "input_audio_buffer.append", "audio": audio})

    frame = audio_delta_frame(pcm)
    receiver = open_protocol()

    def decode_voxengine() -> list[Any]:
        receiver.receive_message(frame)
        return receiver.events_received()

    def decode_floor() -> bytes:
        return base64.b64decode(json.loads(frame)["delta"])

    def decode_floor_orjson() -> bytes:  # what the benchmark's floor client does
        return binascii.a2b_base64(orjson.loads(frame)["delta"], strict_mode=True)

    delta = json.loads(frame)["delta"]
    events = decode_voxengine()
    assert isinstance(events[0], AudioDelta)
    assert events[0].audio == pcm
    results["encode_per_chunk"] = {
        "voxengine_us": _per_call_us(encode_voxengine, number, repeats),
        "floor_us": _per_call_us(encode_floor, number, repeats),
        "stdlib_json_us": _per_call_us(encode_floor_stdlib, number, repeats),
        "b64encode_only_us": _per_call_us(lambda: base64.b64encode(pcm), number, repeats),
    }
    results["decode_per_chunk"] = {
        "voxengine_us": _per_call_us(decode_voxengine, number, repeats),
        "floor_us": _per_call_us(decode_floor_orjson, number, repeats),
        "stdlib_json_us": _per_call_us(decode_floor, number, repeats),
        "json_loads_only_us": _per_call_us(lambda: json.loads(frame), number, repeats),
        "b64decode_only_us": _per_call_us(lambda: base64.b64decode(delta), number, repeats),
    }
    b64_size = len(base64.b64encode(pcm))
    results["allocations_per_chunk"] = {
        "pcm_bytes": len(pcm),
        "base64_chars": b64_size,
        "frame_chars": len(frame),
        "decode_voxengine": _allocations(decode_voxengine),
        "decode_floor": _allocations(decode_floor_orjson),
        "encode_voxengine": _allocations(encode_voxengine),
        "encode_floor": _allocations(encode_floor),
    }
    return results
