"""``voxengine replay FILE.jsonl``: replay a recording through the engine, no network."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from voxengine.cli._common import realtime_provider
from voxengine.cli._errors import EXIT_FAILURE, EXIT_OK, CliError
from voxengine.cli._options import (
    HelpFormatter,
    add_deprecated_alias,
    add_logging_options,
    add_out_option,
    check_output_path,
)
from voxengine.cli._transcript import TranscriptPrinter
from voxengine.engine import VoiceEngine, VoiceEngineConfig
from voxengine.events import AudioDelta
from voxengine.record.recording import load_recording, wrap_provider_connector
from voxengine.record.replay import FrameMatch, ReplayConnector
from voxengine.testing.replay import REPLAY_KEY

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``replay``."""
    replay = sub.add_parser(
        "replay",
        help="replay a recorded session through the engine and print its transcript",
        description="Serve the recorded server frames to the engine (no network, no key) and "
        "print the conversation. The session settings come from the recording, so the "
        "client's handshake is checked against the recorded one; exit code 1 if it differs.",
        epilog="examples:\n"
        "  voxengine chat --fake --record bug.jsonl      record a session\n"
        "  voxengine replay bug.jsonl                    replay it, no network, no key\n"
        "  voxengine replay bug.jsonl -o reply.wav --timing recorded",
        formatter_class=HelpFormatter,
    )
    replay.add_argument("recording", metavar="FILE.jsonl")
    replay.add_argument(
        "--timing",
        choices=["fast", "recorded"],
        default="fast",
        help="as fast as possible (default) or at the recorded pace",
    )
    replay.add_argument(
        "--speed", type=float, default=1.0, help="pace factor for --timing recorded"
    )
    replay.add_argument("--timeout", type=float, default=60.0, help="seconds for the whole replay")
    add_out_option(replay, help="save the replayed reply audio to this WAV file")
    add_deprecated_alias(replay, "--audio-out", "--out")
    add_logging_options(replay)
    replay.set_defaults(run=lambda a: asyncio.run(_replay(a)))


def _check_recording(path: str) -> None:
    """Name the mistake when ``path`` is missing or not a recording (e.g. a WAV file).

    Raises:
        CliError: the file is missing, a directory, or starts like another file type.
    """
    target = Path(path)
    if not target.is_file():
        what = (
            "is a directory"
            if target.is_dir()
            else ("not a regular file" if target.exists() else "no such file")
        )
        raise CliError(f"{path}: {what}; expected a recording (FILE.jsonl)")
    with target.open("rb") as file:
        head = file.read(12)
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        raise CliError(
            f"{path} is a WAV file, not a recording",
            hint="record one with --record FILE.jsonl (e.g. voxengine chat --fake --record "
            "s.jsonl); to send a WAV file as a turn use 'voxengine run --input FILE.wav'",
        )
    if head and not head.lstrip().startswith(b"{"):
        raise CliError(f"{path} is not a recording: a recording is JSON lines from --record")


def _config(meta: Any) -> VoiceEngineConfig:
    settings = dict(meta.get("engine") or {}) if isinstance(meta, dict) else {}
    settings.setdefault("provider", "openai")
    return VoiceEngineConfig(**settings, api_key=REPLAY_KEY)


async def _replay(args: argparse.Namespace) -> int:
    if args.speed <= 0:
        raise CliError("--speed must be positive")
    _check_recording(args.recording)
    check_output_path(args.out)
    recording = load_recording(args.recording)
    try:
        config = _config(dict(recording.meta))
    except TypeError as exc:
        raise CliError(f"{args.recording}: unusable session settings: {exc}") from exc
    connector = ReplayConnector(
        recording, match=FrameMatch(), strict=False, timing=args.timing, speed=args.speed
    )
    engine = VoiceEngine(config)
    wrap_provider_connector(realtime_provider(engine), lambda _network: connector)
    printer = TranscriptPrinter(sys.stdout, stream=False)
    printer.attach(engine.events)
    reply = bytearray()
    engine.events.on(AudioDelta, lambda e: reply.extend(e.audio))
    frames = len(recording.frames("recv"))
    print(
        f"replaying {args.recording}: {len(recording.connections)} connection(s), "
        f"{frames} server frames, provider {config.provider}",
        flush=True,
    )
    async with engine:
        try:
            await asyncio.wait_for(connector.wait_served(), args.timeout)
        except TimeoutError:
            raise CliError(f"replay did not finish within {args.timeout:g} s", code=1) from None
    if args.out:
        from voxengine.audio.wav import write_wav

        fmt = engine.provider.output_format
        write_wav(args.out, bytes(reply), fmt)
        print(f"wrote {fmt.duration(len(reply)):.2f} s of reply audio to {args.out}")
    for divergence in connector.divergences:
        print(f"replay: the client diverged: {divergence}", file=sys.stderr)
    print(f"replayed {printer.responses} response(s)")
    return EXIT_FAILURE if connector.divergences else EXIT_OK
