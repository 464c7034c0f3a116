"""Barge-in over a real socket: the caller's reported play position decides where the
assistant's item is truncated (what the caller heard, not what was sent)."""

from __future__ import annotations

from voxengine import VoiceEngine
from voxengine.audio.format import AudioFormat
from voxengine.providers import MockConfig, MockProvider
from voxengine.serve import CallContext
from voxengine.serve.client import open_call
from voxengine.serve.factory import engine_config
from voxengine.serve.output import CallerOutput
from voxengine.testing import synthesize_speech

from .conftest import serve

LONG_REPLY = " ".join(["word"] * 40)  # 40 words x 0.25 s = 10 s of reply audio


def paced_mock(context: CallContext) -> VoiceEngine:
    """The mock, streaming one 100 ms audio chunk every 100 ms: a reply takes as long
    to arrive as to play, like a live service."""
    config = engine_config(context.config)
    provider = MockProvider(
        MockConfig(session=config.session_config(), replies=(LONG_REPLY,), paced_seconds=0.1)
    )
    return VoiceEngine(config, provider=provider)


async def test_speech_during_the_reply_truncates_at_the_played_position() -> None:
    async with (
        serve(make_engine=paced_mock) as served,
        open_call(served.ws, await served.token(), input_sample_rate=16000) as call,
    ):
        await call.send_text("tell me a long story")
        await call.wait_for("response", lambda m: m["state"] == "started", timeout=20)
        # the simulated speaker plays in real time and reports every 50 ms
        heard_before_speech = await call.wait_played(1.0)
        # the caller speaks over the assistant: the fake provider's VAD hears it
        speech = synthesize_speech("stop please", sample_rate=16000)
        await call.stream_pcm(speech, realtime=True)
        clear = await call.wait_for("clear", timeout=20)
        interrupted = await call.wait_for("interrupted", timeout=20)

        assert clear["epoch"] == 1
        heard = call.player.played_at_clear[0]  # what the listener had heard at the clear
        played = interrupted["played"]
        # reports lag the ear by one interval (50 ms; more under load), never lead it
        assert heard_before_speech - 0.3 <= played <= heard + 1e-6
        assert heard - played < 1.0  # at most the reports in flight (generous under load)
        assert played < 9.0  # far from the whole 10 s that was sent or queued

        server = served.engines[0].provider.server
        assert server is not None
        truncations = [e for e in server.received if e["type"] == "conversation.item.truncate"]
        assert len(truncations) == 1
        assert truncations[0]["item_id"] == interrupted["item_id"]
        assert truncations[0]["audio_end_ms"] == round(played * 1000)


async def test_interrupt_message_truncates_at_the_played_position() -> None:
    async with (
        serve(make_engine=paced_mock) as served,
        open_call(served.ws, await served.token()) as call,
    ):
        await call.send_text("tell me a long story")
        await call.wait_played(0.5)
        await call.interrupt()
        interrupted = await call.wait_for("interrupted", timeout=20)
        await call.wait_for("clear", timeout=20)
        assert 0.45 <= interrupted["played"] <= call.player.played_at_clear[0] + 1e-6
        server = served.engines[0].provider.server
        assert server is not None
        truncations = [e for e in server.received if e["type"] == "conversation.item.truncate"]
        assert [t["audio_end_ms"] for t in truncations] == [round(interrupted["played"] * 1000)]
        await call.wait_for("response", lambda m: m["state"] == "done", timeout=20)


def test_caller_output_counts_reports_per_epoch() -> None:
    output = CallerOutput(AudioFormat(sample_rate=8000))
    output.write(bytes(8000 * 2))  # 1 s
    output.report_played(0.25)
    assert output.played == 0.25
    assert output.pending == 0.75
    output.report_played(5.0)  # more than was sent: capped
    assert output.played == 1.0
    output.report_played(0.5)  # going backwards: ignored
    assert output.played == 1.0
    output.mark()
    assert output.played == 0.0
    output.write(bytes(8000))  # 0.5 s more
    assert output.clear() == 0.5  # nothing of it reported: all dropped
    assert output.epoch == 1
    output.report_played(0.3, epoch=0)  # a report from before the clear: ignored
    assert output.played == 0.0
    output.write(bytes(8000))
    output.report_played(0.2, epoch=1)
    assert output.played == 0.2
    assert output.heard_seconds == 1.2
    kinds = [item.kind for item in output.drain_nowait()]
    assert kinds == ["clear", "audio"]  # audio still queued at the clear was never sent
