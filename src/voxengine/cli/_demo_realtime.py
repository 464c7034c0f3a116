"""``voxengine demo`` with a realtime provider over a WebSocket: ``--live`` or ``--fake``.

:func:`realtime_demo` talks to OpenAI's Realtime API (``--live``) or to the bundled
fake server on 127.0.0.1 (``--fake``): one text turn, then speech-like audio, the
reply audio to ``--out``; ``--record`` records the session's wire frames.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from voxengine.audio.format import PCM16_24K
from voxengine.audio.wav import write_wav
from voxengine.cli._common import realtime_provider, replayable_settings
from voxengine.cli._demo_pipeline import CHUNK_SECONDS, FALLBACK_QUESTION
from voxengine.cli._errors import EXIT_FAILURE, CliError
from voxengine.engine import VoiceEngine, VoiceEngineConfig
from voxengine.events import AudioDelta, ResponseDone
from voxengine.record.logs import trace_connector
from voxengine.record.recording import Recorder, wrap_provider_connector

__all__ = ["realtime_demo"]


@contextlib.asynccontextmanager
async def _endpoint(live: bool) -> AsyncIterator[tuple[str | None, str | None]]:
    """(base_url, api_key) of the service to talk to."""
    if live:
        yield None, None  # the provider's defaults: OpenAI and $OPENAI_API_KEY
        return
    from voxengine.testing import run_fake_openai_server

    async with run_fake_openai_server() as server:
        yield server.url, "sk-local-fake-server"


def _user_speech(words: Sequence[str]) -> bytes:
    from voxengine.testing import synthesize_speech

    return synthesize_speech(" ".join(words), sample_rate=PCM16_24K.sample_rate)


def _recorder(args: argparse.Namespace, config: VoiceEngineConfig) -> Recorder | None:
    if not args.record:
        return None
    meta = {"command": "demo", "engine": replayable_settings(config), "text": args.text}
    return Recorder(args.record, redact_audio=args.redact_audio, meta=meta)


async def realtime_demo(args: argparse.Namespace) -> int:
    live = bool(args.live)
    if live and not os.environ.get("OPENAI_API_KEY"):
        raise CliError(
            "--live needs OPENAI_API_KEY in the environment",
            hint="export OPENAI_API_KEY=sk-... (an OpenAI API key), or drop --live for the "
            "offline demo",
        )
    async with _endpoint(live) as (base_url, api_key):
        where = "OpenAI Realtime API" if live else f"bundled fake OpenAI server at {base_url}"
        print(f"voxengine demo: mode={args.mode}, talking to the {where}")
        if not live:
            print("(no API key needed: the fake server's replies are scripted, not AI)")
        config = VoiceEngineConfig(
            provider="openai",
            mode=args.mode,
            api_key=api_key,
            base_url=base_url,
            model=args.model,
            voice=args.voice or "marin",
            instructions="You are a friendly, concise voice assistant.",
        )
        engine = VoiceEngine(config)
        if args.verbose >= 2:
            wrap_provider_connector(realtime_provider(engine), trace_connector)
        recorder = _recorder(args, config)
        if recorder is not None:
            wrap_provider_connector(realtime_provider(engine), recorder.wrap)
        reply_audio = bytearray()
        engine.on_text_response = lambda text: print(text, end="", flush=True)
        engine.events.on(AudioDelta, lambda e: reply_audio.extend(e.audio))
        try:
            if recorder is not None and args.record_audio:
                rate = PCM16_24K.sample_rate
                engine.events.on(AudioDelta, lambda e: recorder.record_audio("out", e.audio, rate))
            async with engine:
                print(f"\nuser (text): {args.text}\nassistant: ", end="", flush=True)
                await engine.send_text(args.text)
                await engine.events.wait_for(ResponseDone, timeout=args.timeout)

                say = args.say if args.say is not None else FALLBACK_QUESTION
                speech = _user_speech(say.split())
                if recorder is not None and args.record_audio:
                    recorder.record_audio("in", speech, PCM16_24K.sample_rate)
                print(f"\nuser (audio, {PCM16_24K.duration(len(speech)):.1f} s): ", end="")
                print(f"[speech-like audio for {say!r}]\nassistant: ", end="", flush=True)
                done = asyncio.ensure_future(
                    engine.events.wait_for(ResponseDone, timeout=args.timeout)
                )
                step = PCM16_24K.bytes_for(CHUNK_SECONDS)
                silence = bytes(PCM16_24K.bytes_for(1.0))
                for audio in (speech, silence):
                    for i in range(0, len(audio), step):
                        await engine.send_audio(audio[i : i + step])
                        await asyncio.sleep(0 if not live else CHUNK_SECONDS)
                await done
                usage = engine.get_usage()
                metrics = engine.get_metrics() if args.mode != "fast" else None
        except TimeoutError:
            raise CliError(f"no response within {args.timeout:g} s", code=EXIT_FAILURE) from None
        finally:
            if recorder is not None:
                recorder.close()
        out = Path(args.out)
        write_wav(out, bytes(reply_audio), PCM16_24K)
        print(f"\n\nwrote {PCM16_24K.duration(len(reply_audio)):.2f} s of reply audio to {out}")
        print(f"tokens: {usage.input_tokens} in, {usage.output_tokens} out")
        if metrics is not None and metrics.time_to_first_audio is not None:
            print(f"time to first audio (last turn): {metrics.time_to_first_audio * 1000:.1f} ms")
    return 0
