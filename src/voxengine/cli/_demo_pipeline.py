"""``voxengine demo`` through the cascaded pipeline: offline, ``--llm-url`` or ``--claude``.

:func:`pipeline_demo` picks the pipeline the options ask for, speaks the question
(Piper, or espeak-ng in the fallback), streams it into a :class:`VoiceEngine` in 20 ms
chunks, prints what was recognised and answered, writes the reply audio and prints the
latency of each stage (see :mod:`voxengine.cli._demo`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from voxengine.audio.format import PCM16_24K
from voxengine.audio.wav import write_wav
from voxengine.cli._default import arrow, default_provider
from voxengine.cli._errors import EXIT_FAILURE, CliError
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

__all__ = [
    "CHUNK_SECONDS",
    "FALLBACK_QUESTION",
    "LLM_KEY_ENV",
    "LOCAL_QUESTION",
    "pipeline_demo",
]

#: Seconds of audio in each chunk streamed into the engine.
CHUNK_SECONDS = 0.02

#: The voice and rate of the question in the fallback (PocketSphinx recognises it reliably).
# espeak-ng varies its waveform from call to call; this voice, rate and question are the
# combination PocketSphinx's default model recognised every time in our trials.
QUESTION_VOICE = "en-us"
QUESTION_WPM = 160
#: The spoken question: one the local model answers well, and one the fallback's
#: rules and PocketSphinx handle.
LOCAL_QUESTION = "What is the capital of France?"
FALLBACK_QUESTION = "what is the weather like today"

#: Environment variable with the (optional) key for ``--llm-url``.
LLM_KEY_ENV = "VOXENGINE_LLM_API_KEY"


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
        else EspeakTTS(voice=QUESTION_VOICE, words_per_minute=QUESTION_WPM)
    )
    await tts.open()
    try:
        chunks = [chunk async for chunk in tts.synthesize(text)]
    finally:
        await tts.aclose()
    return b"".join(chunks), tts.sample_rate, tts.label


async def _stream(engine: VoiceEngine, pcm: bytes, rate: int) -> None:
    """``pcm`` in 20 ms chunks (faster than real time), then 1 s of silence."""
    step = 2 * round(rate * CHUNK_SECONDS)
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


async def pipeline_demo(args: argparse.Namespace) -> int:
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
        else (LOCAL_QUESTION if chosen.local_speech else FALLBACK_QUESTION)
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
