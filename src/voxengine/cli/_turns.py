"""``voxengine run`` (turns from WAV files and text) and ``voxengine chat`` (stdin text)."""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
import sys
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voxengine.audio.format import AudioFormat
from voxengine.audio.resample import convert
from voxengine.audio.wav import read_wav, write_wav
from voxengine.cli._common import EngineSession, open_engine
from voxengine.cli._errors import EXIT_FAILURE, EXIT_OK, CliError
from voxengine.cli._options import (
    HelpFormatter,
    add_common_options,
    add_deprecated_alias,
    add_out_option,
    check_input_wav,
    check_output_path,
)
from voxengine.cli._transcript import TranscriptPrinter
from voxengine.engine import VoiceEngine
from voxengine.errors import ConfigError
from voxengine.events import AudioDelta, ResponseDone
from voxengine.providers.base import Capability
from voxengine.providers.registry import get_provider

__all__ = ["add_parsers"]

_CHUNK_SECONDS = 0.1
DEFAULT_TRANSCRIBE_MODEL = "gpt-4o-mini-transcribe"


@dataclass(frozen=True, slots=True)
class Turn:
    """One user turn of ``run``: a WAV file or a text message."""

    kind: str  # "audio" or "text"
    value: str


class _AppendTurn(argparse.Action):
    """Collects ``--input`` and ``--text`` in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        turns: list[Turn] = list(getattr(namespace, "turns", None) or [])
        kind = "audio" if option_string in ("-i", "--input") else "text"
        turns.append(Turn(kind, str(values)))
        namespace.turns = turns


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``run`` and ``chat``."""
    run = sub.add_parser(
        "run",
        help="turns from WAV files (and text) to a reply WAV; for scripts and headless machines",
        description="Send each --input WAV (or --text message) as one user turn, in order, "
        "print the transcript, and write the assistant's audio to --out. Exit code 0 when "
        "every turn got a complete reply, 1 otherwise. Without --provider or --fake the "
        "turns go to the offline speech stack 'voxengine demo' uses.",
        epilog=_RUN_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    run.add_argument(
        "-i", "--input", action=_AppendTurn, metavar="IN.wav", help="a spoken turn (repeatable)"
    )
    run.add_argument("--text", action=_AppendTurn, metavar="TEXT", help="a text turn (repeatable)")
    add_out_option(run, help="WAV file for the assistant's audio")
    add_deprecated_alias(run, "--output", "--out")
    run.add_argument(
        "--transcribe",
        default=DEFAULT_TRANSCRIBE_MODEL,
        metavar="MODEL",
        help="model that transcribes the user's audio ('none' to skip)",
    )
    add_common_options(run)
    run.set_defaults(run=lambda a: asyncio.run(_run(a)), turns=[])

    chat = sub.add_parser(
        "chat",
        help="text chat: one user message per stdin line, replies on stdout",
        description="Read user messages from stdin, one per line, and print the replies. "
        "In a terminal it shows a 'you> ' prompt; Ctrl-D ends. Without --provider or --fake "
        "the offline speech stack 'voxengine demo' uses answers.",
        epilog=_CHAT_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    add_out_option(chat, help="ask for spoken replies and save them to this WAV file")
    add_deprecated_alias(chat, "--audio-out", "--out")
    add_common_options(chat)
    chat.set_defaults(run=lambda a: asyncio.run(_chat(a)))


_RUN_EXAMPLES = """\
examples:
  voxengine run --text "what time is it"                  offline, no key
  voxengine run --fake -i question.wav -o answer.wav      the bundled fake OpenAI server
  voxengine run --provider openai -i q1.wav -i q2.wav -o answers.wav   $OPENAI_API_KEY"""

_CHAT_EXAMPLES = """\
examples:
  echo "hello" | voxengine chat                           offline, no key
  voxengine chat --fake                                   the bundled fake OpenAI server
  voxengine chat --provider openai --instructions "Answer in French."   $OPENAI_API_KEY"""

#: The prompt ``chat`` shows in a terminal before each message.
PROMPT = "you> "


def _load_turns(turns: Sequence[Turn], rate: int) -> list[tuple[Turn, bytes]]:
    """Read and convert every WAV before connecting, so a bad file fails early."""
    loaded: list[tuple[Turn, bytes]] = []
    target = AudioFormat(sample_rate=rate)
    for turn in turns:
        if turn.kind == "text":
            loaded.append((turn, b""))
            continue
        audio, fmt = read_wav(turn.value)
        loaded.append((turn, convert(audio, fmt, target)))
    return loaded


async def _respond(engine: VoiceEngine, timeout: float, send: Awaitable[None]) -> ResponseDone:
    """Run ``send`` and wait for the reply it asks for."""
    done = asyncio.ensure_future(engine.events.wait_for(ResponseDone, timeout=timeout))
    try:
        await send
        return await done
    except TimeoutError:
        raise CliError(f"no reply within {timeout:g} s", code=EXIT_FAILURE) from None
    finally:
        done.cancel()


async def _stream_turn(
    session: EngineSession, pcm: bytes, timeout: float, *, record_audio: bool
) -> ResponseDone:
    """Stream ``pcm`` into the input buffer, commit, and wait for the reply."""
    engine = session.engine
    fmt = engine.provider.input_format
    if session.recorder is not None and record_audio:
        session.recorder.record_audio("in", pcm, fmt.sample_rate)

    async def send() -> None:
        step = fmt.bytes_for(_CHUNK_SECONDS)
        for i in range(0, len(pcm), step):
            await engine.send_audio(pcm[i : i + step])
        await engine.commit_audio(respond=True)

    return await _respond(engine, timeout, send())


async def _run(args: argparse.Namespace) -> int:
    turns: list[Turn] = args.turns
    if not turns:
        raise CliError("run needs at least one --input IN.wav (or --text TEXT)")
    for turn in turns:  # every file is checked before a session starts
        if turn.kind == "audio":
            check_input_wav(turn.value)
    check_output_path(args.out)
    transcribe = None if args.transcribe.lower() == "none" else args.transcribe
    settings = {"vad_enabled": False, "input_transcription_model": transcribe}
    meta = {"turns": [[t.kind, t.value] for t in turns]}
    async with open_engine(args, command="run", extra_meta=meta, settings=settings) as session:
        engine = session.engine
        loaded = _load_turns(turns, engine.provider.input_format.sample_rate)
        printer = TranscriptPrinter(sys.stdout, stream=False, show_user_text=True)
        # the printer shows each user line (the text, or the audio's transcript) once
        printer.attach(engine.events)
        reply = bytearray()
        engine.events.on(AudioDelta, lambda e: reply.extend(e.audio))
        incomplete = 0
        async with engine:
            for number, (turn, pcm) in enumerate(loaded, 1):
                if turn.kind == "audio":
                    seconds = engine.provider.input_format.duration(len(pcm))
                    print(f"turn {number}: {turn.value} ({seconds:.1f} s of audio)", flush=True)
                    done = await _stream_turn(
                        session, pcm, args.timeout, record_audio=args.record_audio
                    )
                else:
                    print(f"turn {number}: text", flush=True)  # the printer shows it
                    done = await _respond(engine, args.timeout, engine.send_text(turn.value))
                if done.status.value != "completed":
                    incomplete += 1
            await asyncio.sleep(0.05)  # late transcripts of the last turn
        out_fmt = engine.provider.output_format
        if args.out:
            write_wav(args.out, bytes(reply), out_fmt)
            print(f"wrote {out_fmt.duration(len(reply)):.2f} s of reply audio to {args.out}")
    if incomplete or printer.errors:
        print(f"{incomplete} turn(s) without a complete reply", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _has_text_output(provider: str | None) -> bool:
    """Whether the named provider can answer in text only (an unknown name: yes, so that
    the engine's construction reports it with its suggestions)."""
    if provider is None:
        return True
    try:
        return Capability.TEXT_OUTPUT in get_provider(provider).capabilities
    except ConfigError:
        return True


async def _stdin_lines() -> AsyncIterator[str]:
    """Lines of stdin without blocking the loop (pipes and terminals); files are read whole."""
    fd = sys.stdin.fileno()
    if stat.S_ISREG(os.fstat(fd).st_mode):
        for line in sys.stdin.read().splitlines():
            yield line
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        while raw := await reader.readline():
            yield raw.decode("utf-8", "replace").rstrip("\r\n")
    finally:
        transport.close()


async def _chat(args: argparse.Namespace) -> int:
    audio_out: str | None = args.out
    check_output_path(audio_out)
    # spoken replies when asked for, or when the provider has no text-only replies
    # (Gemini Live): their transcripts are printed the same way
    speak = bool(audio_out) or not _has_text_output(args.provider)
    settings = {"output_modality": "audio" if speak else "text", "vad_enabled": False}
    interactive = sys.stdin.isatty()
    async with open_engine(args, command="chat", settings=settings) as session:
        engine = session.engine
        printer = TranscriptPrinter(sys.stdout, stream=True, show_user_text=not interactive)
        printer.attach(engine.events)
        reply = bytearray()
        engine.events.on(AudioDelta, lambda e: reply.extend(e.audio))
        async with engine:
            if interactive:
                print(f"connected to {session.where}; type a message, Ctrl-D to end", flush=True)
                print(PROMPT, end="", flush=True)
            async for line in _stdin_lines():
                text = line.strip()
                if text:
                    await _respond(engine, args.timeout, engine.send_text(text))
                if interactive:
                    print(PROMPT, end="", flush=True)
            if interactive:
                print(flush=True)  # end the prompt line Ctrl-D left
        if audio_out:
            fmt = engine.provider.output_format
            write_wav(Path(audio_out), bytes(reply), fmt)
            print(f"wrote {fmt.duration(len(reply)):.2f} s of reply audio to {audio_out}")
    return EXIT_FAILURE if printer.failed or printer.errors else EXIT_OK
