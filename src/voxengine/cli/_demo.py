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

This module holds the command line; :mod:`._demo_pipeline` runs the pipeline demo and
:mod:`._demo_realtime` the realtime one.
"""

from __future__ import annotations

import argparse
import asyncio

from voxengine.cli._demo_pipeline import (
    FALLBACK_QUESTION,
    LLM_KEY_ENV,
    LOCAL_QUESTION,
    pipeline_demo,
)
from voxengine.cli._demo_realtime import realtime_demo
from voxengine.cli._options import (
    HelpFormatter,
    add_deprecated_alias,
    add_logging_options,
    add_out_option,
    add_record_options,
    check_output_path,
)

__all__ = ["add_parser"]

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
        help=f"the spoken question, synthesised as speech (default: {LOCAL_QUESTION!r}; "
        f"in the fallback {FALLBACK_QUESTION!r})",
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
        return asyncio.run(realtime_demo(args))
    return asyncio.run(pipeline_demo(args))
