"""``voxengine providers`` and ``voxengine devices``."""

from __future__ import annotations

import argparse
import sys
import textwrap

from voxengine.cli._errors import EXIT_OK, CliError
from voxengine.cli._options import HelpFormatter, add_logging_options
from voxengine.providers.registry import get_provider, list_providers

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``providers`` and ``devices``."""
    providers = sub.add_parser(
        "providers",
        help="list providers: what each is, its keys and capabilities",
        description="List the registered providers: what each is, the environment "
        "variables it reads, and its capabilities.",
        epilog="examples:\n  voxengine providers\n  voxengine providers | grep gemini",
        formatter_class=HelpFormatter,
    )
    add_logging_options(providers)
    providers.set_defaults(run=_providers)
    devices = sub.add_parser(
        "devices",
        help="list audio input and output devices",
        description="List the audio devices PortAudio sees (needs the 'audio' extra and a "
        "PortAudio library); use an index or name with --input-device/--output-device.",
        epilog="examples:\n  voxengine devices\n  voxengine console --input-device 2",
        formatter_class=HelpFormatter,
    )
    add_logging_options(devices)
    devices.set_defaults(run=_devices)


#: What each built-in provider is, and the environment variables it reads.
_ABOUT: dict[str, tuple[str, str]] = {
    "openai": ("OpenAI Realtime API over a WebSocket (GA protocol)", "OPENAI_API_KEY"),
    "azure": (
        "Azure OpenAI Realtime (GA /openai/v1/realtime, or the preview endpoint)",
        "AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT (or --base-url)",
    ),
    "gemini": ("Google Gemini Live (16 kHz in, 24 kHz out)", "GEMINI_API_KEY or GOOGLE_API_KEY"),
    "pipeline": (
        "cascaded speech recognition -> language model -> speech; offline by default",
        "none offline; OPENAI_API_KEY only for OpenAI's own stages",
    ),
    "anthropic": (
        "the cascaded pipeline with Anthropic Claude as the language model",
        "ANTHROPIC_API_KEY (ANTHROPIC_BASE_URL for a proxy)",
    ),
    "mock": ("offline and deterministic: scripted replies from the bundled fake", "none"),
}

_WIDTH = 100
_INDENT = " " * 11


def _describe(name: str) -> list[str]:
    """Lines (at most 100 columns) about provider ``name``."""
    cls = get_provider(name)
    doc = (cls.__doc__ or "").strip().splitlines()
    about, env = _ABOUT.get(name, (doc[0] if doc else "", "see the provider's documentation"))
    caps = ", ".join(sorted(c.value for c in cls.capabilities))
    lines = textwrap.wrap(about, _WIDTH, initial_indent=f"{name:<10} ", subsequent_indent=_INDENT)
    lines += textwrap.wrap(
        f"keys: {env}", _WIDTH, initial_indent=_INDENT, subsequent_indent=_INDENT + "      "
    )
    lines += textwrap.wrap(
        f"supports: {caps}", _WIDTH, initial_indent=_INDENT, subsequent_indent=_INDENT + "  "
    )
    return lines


def _providers(_: argparse.Namespace) -> int:
    print("Providers (--provider NAME). With none named, commands use the offline stack.\n")
    for name in list_providers():
        print("\n".join(_describe(name)), end="\n\n")
    print("Capabilities are checked by the conformance suite; see docs/providers.md.")
    return EXIT_OK


def _devices(_: argparse.Namespace) -> int:
    from voxengine.audio.devices import list_devices

    devices = list_devices()  # ConfigError (exit 2) without sounddevice/PortAudio
    if not devices:
        raise CliError(
            "no audio devices found (is there a sound card?)",
            hint="console --input IN.wav --out OUT.wav works without one",
        )
    print(f"{'index':>5}  {'in':>3} {'out':>3} {'rate':>7}  name")
    for d in devices:
        print(
            f"{d.index:>5}  {d.max_input_channels:>3} {d.max_output_channels:>3} "
            f"{d.default_sample_rate:>7.0f}  {d.name}"
        )
    sys.stdout.flush()
    return EXIT_OK
