"""``voxengine demo``: a text turn and a spoken turn, reply audio to a WAV file.

With no flags (and no API key) the demo runs offline through the cascaded pipeline
(:mod:`voxengine.providers.pipeline`) built by :func:`voxengine.cli._offline.offline_provider`:
with the ``local`` extra, the spoken question is synthesised with Piper, streamed in
20 ms chunks into the engine, ended by Silero VAD, recognised by Whisper, answered by
SmolLM2-135M-Instruct through llama.cpp and spoken by Piper sentence by sentence while
the model is still writing; the reply audio goes to ``--out`` and the latency of each
stage is printed. Without the extra it falls back to espeak-ng, PocketSphinx and the
built-in local responder (fixed rules, **not an AI model**), and says so.

One flag changes what answers:

* ``--llm-url URL [--model NAME]``: the same offline speech with an OpenAI-compatible
  chat server as the language model (Ollama, vLLM, llama.cpp, ...); an optional key
  comes from ``$VOXENGINE_LLM_API_KEY``; without ``--model`` the server's first listed
  model is used.
* ``--claude [--model NAME]``: the same offline speech with Claude
  (:class:`~voxengine.providers.pipeline.AnthropicPipelineProvider`;
  ``$ANTHROPIC_API_KEY``, ``$ANTHROPIC_BASE_URL`` for a proxy).
* ``--live``: OpenAI's Realtime API (``$OPENAI_API_KEY``).
* ``--fake``: the bundled fake OpenAI Realtime server over a real WebSocket on
  127.0.0.1 (scripted replies, no key); with ``--live`` the only path ``--record``
  works on, since the pipeline exchanges no wire frames.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from voxengine.audio.format import PCM16_24K
from voxengine.audio.wav import write_wav
from voxengine.cli._common import (
    EXIT_FAILURE,
    CliError,
    HelpFormatter,
    add_deprecated_alias,
    add_logging_options,
    add_out_option,
    add_record_options,
    check_output_path,
    realtime_provider,
    replayable_settings,
)
from voxengine.cli._default import arrow, default_provider
from voxengine.cli._latency import TurnTimer
from voxengine.cli._offline import offline_provider, offline_speech
from voxengine.engine import VoiceEngine, VoiceEngineConfig
from voxengine.events import (
    AudioDelta,
    ItemDone,
    ItemKind,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStatus,
    Role,
    SpeechStopped,
    TextDelta,
    TranscriptDelta,
    TranscriptDone,
)
from voxengine.providers.base import BaseProvider
from voxengine.record.logs import trace_connector
from voxengine.record.recording import Recorder, wrap_provider_connector

__all__ = ["add_parser"]

_CHUNK_SECONDS = 0.02

#: The voice and rate of the question in the fallback (PocketSphinx recognises it reliably).
# espeak-ng varies its waveform from call to call; this voice, rate and question are the
# combination PocketSphinx's default model recognised every time in our trials.
_QUESTION_VOICE = "en-us"
_QUESTION_WPM = 160
#: The spoken question: one the local model answers well, and one the fallback's
#: rules and PocketSphinx handle.
_LOCAL_QUESTION = "What is the capital of France?"
_FALLBACK_QUESTION = "what is the weather like today"

#: Environment variable with the (optional) key for ``--llm-url``.
LLM_KEY_ENV = "VOXENGINE_LLM_API_KEY"

_DESCRIPTION = """\
A short voice conversation: one text turn, then one spoken turn whose reply audio is
written to a WAV file (--out).

By default everything runs offline with no API key, through the cascaded pipeline:
with the 'local' extra, the question (--say) is synthesised with Piper, ended by
Silero VAD, recognised by Whisper, answered by SmolLM2-135M-Instruct (llama.cpp) and
spoken by Piper sentence by sentence; the latency of each stage is printed. Without
the extra (or with VOXENGINE_OFFLINE=fallback) it falls back to espeak-ng,
PocketSphinx and the built-in local responder (fixed rules, NOT an AI model). One
flag swaps in another model or service."""

_EPILOG = f"""\
examples:
  voxengine demo                                          offline, no key
  voxengine demo --say "what day is it today"
  voxengine demo --llm-url http://localhost:11434/v1 --model llama3.2   Ollama
  voxengine demo --claude                                 $ANTHROPIC_API_KEY
  voxengine demo --live                                   $OPENAI_API_KEY
  voxengine demo --fake --record demo.jsonl               bundled fake Realtime server
  voxengine demo -o /tmp/answer.wav                       reply audio elsewhere

--llm-url sends ${LLM_KEY_ENV} as a Bearer key when it is set (local servers
usually need none); --claude honours $ANTHROPIC_BASE_URL (a proxy). --record needs
--fake or --live: the pipeline exchanges no wire frames."""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``demo``."""
    demo = sub.add_parser(
        "demo",
        help="a short voice conversation (offline by default), reply audio to a WAV file",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=HelpFormatter,
    )
    backend = demo.add_argument_group(
        "what answers (default: the offline pipeline with the local model SmolLM2)"
    )
    which = backend.add_mutually_exclusive_group()
    which.add_argument(
        "--llm-url",
        metavar="URL",
        help="offline speech with an OpenAI-compatible chat server as the language model, "
        "e.g. http://localhost:11434/v1 (Ollama); a bare host gets /v1",
    )
    which.add_argument(
        "--claude",
        action="store_true",
        help="offline speech with Claude as the language model ($ANTHROPIC_API_KEY)",
    )
    which.add_argument(
        "--live", action="store_true", help="OpenAI's Realtime API ($OPENAI_API_KEY)"
    )
    which.add_argument(
        "--fake",
        action="store_true",
        help="the bundled fake OpenAI Realtime server on 127.0.0.1 (scripted replies, no key)",
    )
    add_deprecated_alias(which, "--fake-openai", "--fake", flag=True)
    backend.add_argument(
        "--model",
        help="model name: for --llm-url (default: the first one the server lists), "
        "--claude (default claude-haiku-4-5) or --live",
    )
    turn = demo.add_argument_group("the conversation")
    turn.add_argument(
        "--mode", choices=["fast", "big", "provider"], default="provider", help="engine mode"
    )
    turn.add_argument(
        "--voice",
        help="assistant voice: OpenAI voice for --live/--fake (default marin), "
        "a Piper .onnx voice file for the pipeline (default en_US-joe-medium; espeak-ng "
        "voice name in the fallback, default en-us)",
    )
    turn.add_argument(
        "--text", metavar="TEXT", default="Hello! What can you do?", help="the text turn"
    )
    turn.add_argument(
        "--say",
        metavar="TEXT",
        default=None,
        help=f"the spoken question, synthesised as speech (default: {_LOCAL_QUESTION!r}; "
        f"in the fallback {_FALLBACK_QUESTION!r})",
    )
    add_out_option(turn, default="reply.wav", help="WAV file for the reply audio")
    turn.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=60.0,
        help="seconds to wait for each reply (default %(default)g)",
    )
    add_record_options(demo)
    add_logging_options(demo)
    demo.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    check_output_path(args.out)
    if args.live or args.fake:
        return asyncio.run(_realtime_demo(args))
    return asyncio.run(_pipeline_demo(args))


# -- the cascaded pipeline (default, --llm-url, --claude) ---------------------------------


@dataclass(frozen=True, slots=True)
class _Pipeline:
    """The provider the options select, and how to describe it."""

    provider: BaseProvider
    banner: str
    note: str
    tokens: bool
    local_speech: bool


def _instructions() -> str:
    now = dt.datetime.now()
    return (
        "You are a friendly, concise voice assistant. Answer in one or two short spoken "
        "sentences, without markdown or lists. "
        f"The local time is {now:%H:%M} on {now:%A, %d %B %Y}."
    )


def _llm_base_url(url: str) -> str:
    """``url`` checked, with ``/v1`` added to a bare host."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--llm-url needs an http(s) URL, got {url!r}")
    if parts.path in ("", "/"):
        return urllib.parse.urlunsplit(parts._replace(path="/v1"))
    return url.rstrip("/")


async def _served_model(base_url: str, api_key: str | None) -> str:
    """The first model ``GET {base_url}/models`` lists (OpenAI, Ollama, vLLM, llama.cpp)."""
    import httpx

    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            response = await client.get(f"{base_url}/models", headers=headers)
            response.raise_for_status()
            return str(response.json()["data"][0]["id"])
    except (httpx.ConnectError, httpx.TimeoutException) as exc:
        raise CliError(
            f"cannot reach the LLM server at {base_url}: {exc}",
            code=EXIT_FAILURE,
            hint="is the server running (e.g. 'ollama serve')? Or pass --model to skip the lookup",
        ) from exc
    except (httpx.HTTPError, ValueError, LookupError, TypeError) as exc:
        raise CliError(
            f"no --model given and {base_url}/models does not list one ({exc})",
            hint="pass --model NAME, the model served there (e.g. --model llama3.2)",
        ) from exc


async def _pipeline(args: argparse.Namespace, config: VoiceEngineConfig) -> _Pipeline:
    """The pipeline provider for the options: offline, ``--llm-url`` or ``--claude``."""
    from voxengine.providers.pipeline import (
        AnthropicPipelineConfig,
        AnthropicPipelineProvider,
        OpenAIChatLLM,
    )
    from voxengine.providers.pipeline.llm import DEFAULT_ANTHROPIC_MODEL

    to = arrow()
    session = config.session_config()
    if args.claude:
        if not os.environ.get("ANTHROPIC_API_KEY"):
            raise CliError(
                "--claude needs ANTHROPIC_API_KEY in the environment",
                hint="export ANTHROPIC_API_KEY=..., or drop --claude for the offline demo",
            )
        stt, tts, local = offline_speech(args.voice)
        claude = AnthropicPipelineProvider(
            AnthropicPipelineConfig(
                model=args.model,
                base_url=os.environ.get("ANTHROPIC_BASE_URL") or None,
                stt=stt,
                tts=tts,
                vad_engine="silero" if local else "energy",
                session=session,
            )
        )
        model_name = args.model or DEFAULT_ANTHROPIC_MODEL
        banner = f"pipeline: {stt.label} {to} Claude {model_name} {to} {tts.label}"
        note = "(Claude answers over the Anthropic API; speech stays on this machine)"
        return _Pipeline(claude, banner, note, tokens=True, local_speech=local)
    if args.llm_url:
        base_url = _llm_base_url(args.llm_url)
        key = os.environ.get(LLM_KEY_ENV) or None
        model = args.model or await _served_model(base_url, key)
        llm = OpenAIChatLLM(model=model, base_url=base_url, api_key=key)
        stack = offline_provider(session, llm=llm, voice=args.voice)
        banner = f"pipeline: {stack.stt} {to} {model} at {base_url} {to} {stack.tts}"
        note = "(an OpenAI-compatible chat server answers; speech stays on this machine)"
        return _Pipeline(stack.provider, banner, note, tokens=True, local_speech=stack.local)
    if args.model:
        raise CliError("--model needs --llm-url, --claude or --live")
    chosen = default_provider(session, voice=args.voice)
    return _Pipeline(
        chosen.provider, chosen.banner, chosen.note, tokens=chosen.local, local_speech=chosen.local
    )


async def _spoken_question(text: str, *, local: bool) -> tuple[bytes, int, str]:
    """``text`` spoken by Piper (``local``) or espeak-ng: PCM16, its rate, the voice."""
    from voxengine.providers.pipeline import EspeakTTS, PiperTTS, TextToSpeech

    # Piper without its sampling noise: the same audio on every run (with it, Whisper
    # base heard "France" as "friends" in about one rendering in six; docs/local.md)
    tts: TextToSpeech = (
        PiperTTS(noise_scale=0.0, noise_w_scale=0.0)
        if local
        else EspeakTTS(voice=_QUESTION_VOICE, words_per_minute=_QUESTION_WPM)
    )
    await tts.open()
    try:
        chunks = [chunk async for chunk in tts.synthesize(text)]
    finally:
        await tts.aclose()
    return b"".join(chunks), tts.sample_rate, tts.label


async def _stream(engine: VoiceEngine, pcm: bytes, rate: int) -> None:
    """``pcm`` in 20 ms chunks (faster than real time), then 1 s of silence."""
    step = 2 * round(rate * _CHUNK_SECONDS)
    for audio in (pcm, bytes(2 * rate)):
        for i in range(0, len(audio), step):
            await engine.send_audio(audio[i : i + step], sample_rate=rate)
            await asyncio.sleep(0)


def _next_reply(engine: VoiceEngine, timeout: float) -> asyncio.Future[ResponseDone]:
    """The next ``ResponseDone``, subscribed now (before the request that causes it)."""
    return asyncio.ensure_future(engine.events.wait_for(ResponseDone, timeout=timeout))


async def _reply(
    waiter: asyncio.Future[ResponseDone], timeout: float, errors: list[str]
) -> ResponseDone:
    """What ``waiter`` yields; a timeout or a failed reply is a CLI failure."""
    try:
        done = await waiter
    except TimeoutError:
        print(flush=True)  # end the "assistant: " line before the error
        raise CliError(f"no response within {timeout:g} s", code=EXIT_FAILURE) from None
    if done.status is not ResponseStatus.COMPLETED:
        print(flush=True)
        why = errors[-1] if errors else (done.reason or done.status.value)
        raise CliError(f"the reply {done.status.value}: {why}", code=EXIT_FAILURE)
    return done


class _Printer:
    """Prints reply text as it streams, or holds it back while :meth:`hold` is in force."""

    def __init__(self) -> None:
        self._held: list[str] | None = None

    def write(self, text: str) -> None:
        """Print ``text`` now, or keep it for :meth:`release`."""
        if self._held is not None:
            self._held.append(text)
        else:
            print(text, end="", flush=True)

    def hold(self) -> None:
        """Keep text back until :meth:`release`."""
        self._held = []

    def release(self) -> None:
        """Print what was held and print text as it comes again."""
        held, self._held = self._held or [], None
        print("".join(held), end="", flush=True)


async def _pipeline_demo(args: argparse.Namespace) -> int:
    if args.record:
        raise CliError(
            "--record needs a WebSocket provider: the pipeline sends no wire frames to record",
            hint="add --fake (or --live) to record a session",
        )
    config = VoiceEngineConfig(
        provider="anthropic" if args.claude else "pipeline",
        mode=args.mode,
        instructions=_instructions(),
    )
    chosen = await _pipeline(args, config)
    say = (
        args.say
        if args.say is not None
        else (_LOCAL_QUESTION if chosen.local_speech else _FALLBACK_QUESTION)
    )
    if not say.strip():
        raise CliError("--say needs some words to speak")
    print(f"voxengine demo: mode={args.mode}, {chosen.banner}")
    print(chosen.note)
    question, rate, question_voice = await _spoken_question(say, local=chosen.local_speech)
    engine = VoiceEngine(config, provider=chosen.provider)
    reply_audio = bytearray()
    errors: list[str] = []
    clock = TurnTimer()
    printer = _Printer()
    engine.on_text_response = printer.write
    engine.events.on(ProviderErrorEvent, lambda e: errors.append(e.message))

    def on_audio(event: AudioDelta) -> None:
        if clock.timed:  # the spoken turn's reply only
            reply_audio.extend(event.audio)

    engine.events.on(
        (SpeechStopped, TranscriptDone, TranscriptDelta, TextDelta, AudioDelta), clock.observe
    )
    engine.events.on(AudioDelta, on_audio)
    async with engine:
        print(f"\nuser (text): {args.text}\nassistant: ", end="", flush=True)
        replied = _next_reply(engine, args.timeout)
        await engine.send_text(args.text)
        await _reply(replied, args.timeout, errors)

        seconds = len(question) / (2 * rate)
        print(f"\n\nuser (speech, {seconds:.1f} s, {question_voice}): {say!r}")
        heard = asyncio.ensure_future(
            engine.events.wait_for(
                ItemDone,
                timeout=args.timeout,
                filter=lambda e: e.item.role is Role.USER and e.item.kind is ItemKind.MESSAGE,
            )
        )
        replied = _next_reply(engine, args.timeout)
        printer.hold()  # the reply may start before the transcript is printed
        try:
            await _stream(engine, question, rate)
            try:
                user = (await heard).item
            except TimeoutError:
                raise CliError(
                    f"no end of speech or transcript within {args.timeout:g} s",
                    code=EXIT_FAILURE,
                ) from None
            print(f"recognised: {user.text!r}")
            if not user.text:
                raise CliError(
                    "speech recognition heard nothing in the question", code=EXIT_FAILURE
                )
            print("assistant: ", end="", flush=True)
            printer.release()
            done = await _reply(replied, args.timeout, errors)
        finally:
            heard.cancel()
            replied.cancel()
    out = Path(args.out)
    write_wav(out, bytes(reply_audio), PCM16_24K)
    print(f"\n\nwrote {PCM16_24K.duration(len(reply_audio)):.2f} s of reply audio to {out}")
    stages = clock.report()
    if stages:
        print("latency of the spoken turn, by stage:")
        print("\n".join(stages))
    if chosen.tokens and done.usage is not None:
        print(f"tokens (spoken turn): {done.usage.input_tokens} in, {done.usage.output_tokens} out")
    return 0


# -- realtime providers over a WebSocket (--live, --fake) --------------------------


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


async def _realtime_demo(args: argparse.Namespace) -> int:
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

                say = args.say if args.say is not None else _FALLBACK_QUESTION
                speech = _user_speech(say.split())
                if recorder is not None and args.record_audio:
                    recorder.record_audio("in", speech, PCM16_24K.sample_rate)
                print(f"\nuser (audio, {PCM16_24K.duration(len(speech)):.1f} s): ", end="")
                print(f"[speech-like audio for {say!r}]\nassistant: ", end="", flush=True)
                done = asyncio.ensure_future(
                    engine.events.wait_for(ResponseDone, timeout=args.timeout)
                )
                step = PCM16_24K.bytes_for(_CHUNK_SECONDS)
                silence = bytes(PCM16_24K.bytes_for(1.0))
                for audio in (speech, silence):
                    for i in range(0, len(audio), step):
                        await engine.send_audio(audio[i : i + step])
                        await asyncio.sleep(0 if not live else _CHUNK_SECONDS)
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
