"""``voxengine console``: a voice conversation in the terminal.

Microphone and speakers through ``sounddevice`` (or WAV files with ``--input`` and
``--out``), push-to-talk (SPACE starts and sends a turn) or always-on listening
(``--always-on``, the provider's VAD finds the turns), typed messages beside voice
(``t``), a live transcript of both sides, an input level meter, the latency of each
stage of a turn and an interrupt key. The view is drawn with ``rich``
(:mod:`voxengine.cli._screen` says why). With an input file and ``--always-on`` the
console ends by itself once the file is over and the last reply has been played.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import Any, final

from voxengine.audio.devices import AudioInput, list_devices
from voxengine.audio.format import AudioFormat
from voxengine.audio.pcm16 import rms
from voxengine.cli._common import EngineSession, open_engine
from voxengine.cli._errors import EXIT_FAILURE, EXIT_OK, CliError
from voxengine.cli._keys import key_reader, stdin_is_terminal
from voxengine.cli._latency import TurnTimer
from voxengine.cli._options import (
    HelpFormatter,
    add_common_options,
    add_deprecated_alias,
    add_out_option,
    check_input_wav,
    check_output_path,
)
from voxengine.cli._screen import ConsoleState, Screen
from voxengine.cli._turns import DEFAULT_TRANSCRIBE_MODEL
from voxengine.engine import VoiceEngine
from voxengine.errors import InvalidState, VoxError
from voxengine.events import (
    AudioDelta,
    Event,
    Interrupted,
    ProviderErrorEvent,
    ResponseDone,
    ResponseStarted,
    ResponseStatus,
    Role,
    SessionClosed,
    SpeechStarted,
    SpeechStopped,
    TextDelta,
    TranscriptDelta,
    TranscriptDone,
    TranscriptFailed,
)
from voxengine.record.recording import Recorder

__all__ = ["MeteredInput", "add_parser"]

_QUIT_KEYS = frozenset({"q", "Q", "\x04", ""})
_END_OF_INPUT = frozenset({"\x04", ""})  # Ctrl-D, or the terminal closed
_ENTER = frozenset({"\r", "\n"})
_BACKSPACE = frozenset({"\x7f", "\x08"})
_ESCAPE = "\x1b"
#: Seconds of quiet after the input file ended before the console ends by itself.
_QUIET_AFTER_INPUT = 1.5
#: Longest quiet wait, after the input file ended, for the last spoken turn's transcript
#: or reply (a provider may send neither).
_HEARING_LIMIT = 60.0
_FOLLOWED = (
    SpeechStarted,
    SpeechStopped,
    TranscriptDelta,
    TranscriptDone,
    TranscriptFailed,
    TextDelta,
    AudioDelta,
    ResponseStarted,
    ResponseDone,
    ProviderErrorEvent,
    Interrupted,
    SessionClosed,
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``console``."""
    console = sub.add_parser(
        "console",
        help="talk through microphone and speakers (or WAV files) with a live transcript",
        description="Voice conversation in the terminal. Keys: SPACE starts/sends a turn "
        "(push-to-talk), t types a message (Enter sends), i interrupts the assistant, q or "
        "Ctrl-C quits. Without --provider or --fake the offline speech stack answers.",
        epilog="examples:\n"
        "  voxengine console                                 microphone, offline stack\n"
        "  voxengine console --fake --always-on -i q.wav -o a.wav   files, fake server\n"
        "  voxengine console --provider openai --always-on   $OPENAI_API_KEY",
        formatter_class=HelpFormatter,
    )
    console.add_argument(
        "--always-on",
        action="store_true",
        help="listen all the time; the provider's VAD finds turns (default: push-to-talk)",
    )
    console.add_argument("-i", "--input", metavar="IN.wav", help="WAV file instead of a microphone")
    add_deprecated_alias(console, "--input-file", "--input")
    add_out_option(console, help="WAV file instead of speakers (with --input)")
    add_deprecated_alias(console, "--output-file", "--out")
    console.add_argument("--input-device", help="microphone index or name (see 'devices')")
    console.add_argument("--output-device", help="speaker index or name (see 'devices')")
    console.add_argument(
        "--transcribe",
        default=DEFAULT_TRANSCRIBE_MODEL,
        metavar="MODEL",
        help="model that transcribes your speech ('none' to skip)",
    )
    console.add_argument("--max-turns", type=int, help="quit after this many replies")
    console.add_argument("--plain", action="store_true", help="no live status area")
    add_common_options(console)
    console.set_defaults(run=lambda a: asyncio.run(_console(a)))


@final
class MeteredInput:
    """An :class:`~voxengine.audio.devices.AudioInput` that reports each chunk's level."""

    def __init__(self, inner: AudioInput, on_chunk: Any) -> None:
        self._inner = inner
        self._on_chunk = on_chunk

    @property
    def format(self) -> AudioFormat:
        """The wrapped input's format."""
        return self._inner.format

    async def start(self) -> None:
        """Start the wrapped input."""
        await self._inner.start()

    async def stop(self) -> None:
        """Stop the wrapped input."""
        await self._inner.stop()

    async def read(self) -> bytes:
        """The next chunk, after reporting it."""
        chunk = await self._inner.read()
        self._on_chunk(chunk)
        return chunk


def _device(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.isdigit() else value


def _check_devices() -> None:
    """Fail before connecting when there is no microphone or speaker."""
    devices = list_devices()  # ConfigError without sounddevice/PortAudio
    hint = "use --input IN.wav --out OUT.wav to run with files"
    if not any(d.max_input_channels for d in devices):
        raise CliError("no microphone found (no audio input device)", hint=hint)
    if not any(d.max_output_channels for d in devices):
        raise CliError("no speaker found (no audio output device)", hint=hint)


@final
class ConsoleApp:
    """Connects engine events, keys and the screen for one console session."""

    def __init__(self, session: EngineSession, screen: Screen, args: argparse.Namespace) -> None:
        self.engine: VoiceEngine = session.engine
        self.recorder: Recorder | None = session.recorder if args.record_audio else None
        self.screen = screen
        self.ptt = not args.always_on
        #: The audio comes from a file (``--input``), which ends.
        self.from_file = bool(args.input)
        self.max_turns: int | None = args.max_turns
        self.state = ConsoleState(mode="push-to-talk" if self.ptt else "always-on")
        self.keys: asyncio.Queue[str] = asyncio.Queue()
        self.failed = False
        #: Set once the user asked to quit (the close that follows is expected).
        self.quitting = False
        self._assistant: list[str] = []
        self._user: list[str] = []
        self._loop = asyncio.get_running_loop()
        self._timer = TurnTimer(self._loop.time)
        self._responding = False
        self._hearing = False  # a spoken turn ended and its transcript is not in yet
        self._cut = False  # the reply in progress was interrupted and already printed
        self._input_ended = False
        self._last_event = self._loop.time()
        self.engine.events.on(
            _FOLLOWED,
            self.observe,
            priority=-50,
        )

    # -- events -----------------------------------------------------------------------

    def _line(self, text: str) -> None:
        self._set_partial()  # the live area below the line must not repeat it
        self.screen.line(text, self.state)

    def _set_partial(self) -> None:
        if self._assistant:
            self.state.partial = "assistant: " + "".join(self._assistant)
        elif self._user:
            self.state.partial = "you: " + "".join(self._user)
        else:
            self.state.partial = ""

    def observe(self, event: Event) -> None:
        """Update the view from one engine event."""
        self._last_event = self._loop.time()
        match event:
            case SpeechStarted():
                self.state.speech = True
            case SpeechStopped():
                self.state.speech = False
                self._hearing = True
                self._timer.turn_ended()
            case TranscriptDelta(role=Role.USER, delta=delta):
                self._user.append(delta)
            case TranscriptFailed():
                self._hearing = False
            case TranscriptDone(role=Role.USER, transcript=transcript):
                self._hearing = False
                self._user.clear()
                self._timer.heard()
                self._line(f"you: {transcript}")
            case TextDelta(delta=delta) | TranscriptDelta(role=Role.ASSISTANT, delta=delta):
                self._timer.first_text()
                if not self._cut:  # the rest of an interrupted reply is not shown
                    self._assistant.append(delta)
            case AudioDelta(audio=audio):
                self._timer.first_audio()
                if self.recorder is not None:
                    rate = self.engine.provider.output_format.sample_rate
                    self.recorder.record_audio("out", audio, rate)
            case ResponseStarted():
                self._responding = True
                self._hearing = False
                self._cut = False
            case ResponseDone(status=status):
                self._response_done(status)
            case ProviderErrorEvent(code=code, message=message):
                self._line(f"[provider error {code}: {message}]")
            case Interrupted(played=played):
                heard = f" after {played:.1f} s" if played is not None else ""
                cut = "".join(self._assistant)
                self._assistant.clear()  # (before _line: no partial repeating the line)
                if cut:  # the cut reply first, then the note about it
                    self._line(f"assistant: {cut}...")
                self._cut = True  # what still arrives of the cut reply is not shown
                self._line(f"[interrupted{heard}]")
            case SessionClosed(code=code, reason=reason) if not self.quitting:
                self._line(f"[session closed: {code} {reason}]".rstrip())
                self.failed = True
                self.keys.put_nowait("")
            case _:
                pass
        self._set_partial()

    def _response_done(self, status: ResponseStatus) -> None:
        self._responding = False
        text = "".join(self._assistant)
        self._assistant.clear()
        self.state.turns += 1
        stages = self._timer.result()
        first = stages.first_audio if stages is not None else None
        latency = f"  ({first * 1000:.0f} ms to first output)" if first is not None else ""
        if stages is not None:
            self.state.latency = stages
        if not self._cut and (text or status is ResponseStatus.COMPLETED):
            self._line(f"assistant: {text}{latency}")
        if status is not ResponseStatus.COMPLETED and not self._cut:
            self._line(f"[response {status.value}]")
            self.failed = self.failed or status is ResponseStatus.FAILED
        self._cut = False
        if self.max_turns is not None and self.state.turns >= self.max_turns:
            self.keys.put_nowait("")

    def _on_input_chunk(self, chunk: bytes) -> None:
        self.state.level = rms(chunk) if chunk else 0.0
        if self.recorder is not None and chunk:
            rate = self.engine.voice.input.format.sample_rate if self.engine.voice.input else 0
            self.recorder.record_audio("in", chunk, rate)

    # -- actions ------------------------------------------------------------------------

    async def _toggle_talk(self) -> None:
        engine = self.engine
        if not self.state.listening:
            if self._audible():
                await engine.interrupt()
            await engine.start_listening()
            self.state.listening = True
            self.state.note = "recording: SPACE to send"
        else:
            await engine.stop_listening()
            self.state.listening = False
            self.state.level = 0.0
            self.state.note = "sent"
            self._timer.turn_ended()
            await engine.commit_audio(respond=True)

    async def _send_typed(self) -> None:
        text = (self.state.typing or "").strip()
        self.state.typing = None
        if not text:
            return
        if self._audible():
            await self.engine.interrupt()
        self._line(f"you (typed): {text}")
        self._timer.turn_ended()
        self._timer.heard()  # nothing to recognise: the text is the turn
        await self.engine.send_text(text)

    def _audible(self) -> bool:
        """The assistant is answering, or its audio is still playing."""
        output = self.engine.voice.output
        return self._responding or (output is not None and output.pending > 0)

    async def _refresh(self) -> None:
        while True:
            self.state.assistant_audible = self._audible()
            self.screen.refresh(self.state)
            await asyncio.sleep(0.1)

    async def _watch_input_end(self) -> None:
        """With an input file: once it is over and all is quiet, end the console."""
        await self.engine.voice.wait_listening_done()
        if self.ptt:
            return
        self.state.listening = False
        self.state.level = 0.0
        self.state.note = "input file finished"
        if not self.from_file:
            return
        while True:  # the reply to the file's last words may still be on its way
            await asyncio.sleep(0.1)
            silent = self._loop.time() - self._last_event
            # speech-to-text of the last turn may take longer than the quiet period on a
            # loaded machine: its transcript (and the reply) are still to come
            waited = _QUIET_AFTER_INPUT if not self._hearing else _HEARING_LIMIT
            quiet = silent >= waited
            if quiet and not self._audible() and self.state.typing is None:
                self.keys.put_nowait("")
                return

    async def _drain_playback(self, limit: float = 30.0) -> None:
        """Let the speaker (or output file) finish the reply before quitting."""
        output = self.engine.voice.output
        if output is not None and output.pending > 0:  # it plays at clock rate
            await asyncio.sleep(min(limit, output.pending + 0.05))

    async def run(self) -> None:
        """Run until quit; the engine must be connected."""
        voice = self.engine.voice
        if voice.input is not None:
            voice.input = MeteredInput(voice.input, self._on_input_chunk)
        tasks = [asyncio.create_task(self._refresh())]
        if not self.ptt:
            await self.engine.start_listening()
            self.state.listening = True
            tasks.append(asyncio.create_task(self._watch_input_end()))
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self._loop.add_signal_handler(signal.SIGINT, self.keys.put_nowait, "")
        try:
            with key_reader(self.keys.put_nowait):
                await self._handle_keys()
            await self._drain_playback()
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.remove_signal_handler(signal.SIGINT)
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _handle_keys(self) -> None:
        while True:
            key = await self.keys.get()
            if key in _END_OF_INPUT or (self.state.typing is None and key in _QUIT_KEYS):
                self.quitting = True
                return
            try:
                if self.state.typing is not None:
                    await self._type(key)
                elif key == " " and self.ptt:
                    await self._toggle_talk()
                elif key in ("t", "T"):
                    self.state.typing = ""
                elif key in ("i", "I"):
                    await self.engine.interrupt()
            except InvalidState as exc:
                self._line(f"[{exc}]")
                return

    async def _type(self, key: str) -> None:
        """One key of a typed message: Enter sends, Esc cancels, Backspace deletes."""
        typed = self.state.typing or ""
        if key in _ENTER:
            await self._send_typed()
        elif key == _ESCAPE:
            self.state.typing = None
        elif key in _BACKSPACE:
            self.state.typing = typed[:-1]
        elif key.isprintable():
            self.state.typing = typed + key
        self.screen.refresh(self.state)


async def _console(args: argparse.Namespace) -> int:
    if args.out and not args.input:
        raise CliError("--out needs --input (files replace both devices)")
    if args.input:
        check_input_wav(args.input)
    check_output_path(args.out)
    if args.max_turns is not None and args.max_turns < 1:
        raise CliError("--max-turns must be at least 1")
    ptt = not args.always_on
    if ptt and not stdin_is_terminal():
        raise CliError(
            "push-to-talk needs a terminal (SPACE starts and sends a turn)",
            hint="add --always-on to listen continuously",
        )
    if not args.input:
        _check_devices()
    transcribe = None if args.transcribe.lower() == "none" else args.transcribe
    settings: dict[str, Any] = {
        "audio_backend": "file" if args.input else "sounddevice",
        "input_file": args.input,
        "output_file": args.out,
        "input_device": _device(args.input_device),
        "output_device": _device(args.output_device),
        "vad_enabled": not ptt,
        "input_transcription_model": transcribe,
    }
    async with open_engine(args, command="console", fake_paced=True, settings=settings) as session:
        screen = Screen(sys.stdout, live=sys.stdout.isatty() and not args.plain)
        app = ConsoleApp(session, screen, args)
        mode = "push-to-talk" if ptt else "always-on"
        screen.line(f"voxengine console: {mode}, talking to {session.where}", None)
        engine = session.engine
        try:
            await engine.connect()
            await app.run()
        finally:
            with contextlib.suppress(VoxError):
                await engine.disconnect()
            screen.close()
        if args.out:
            print(f"wrote the assistant's audio to {args.out}")
    return EXIT_FAILURE if app.failed else EXIT_OK
