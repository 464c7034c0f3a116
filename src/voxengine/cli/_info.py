"""``voxengine providers`` and ``voxengine devices``."""

from __future__ import annotations

import argparse
import sys

from voxengine.cli._common import EXIT_OK, CliError, add_logging_options
from voxengine.providers.registry import get_provider, list_providers

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``providers`` and ``devices``."""
    providers = sub.add_parser("providers", help="list providers and capabilities")
    add_logging_options(providers)
    providers.set_defaults(run=_providers)
    devices = sub.add_parser("devices", help="list audio input and output devices")
    add_logging_options(devices)
    devices.set_defaults(run=_devices)


def _providers(_: argparse.Namespace) -> int:
    for name in list_providers():
        caps = sorted(c.value for c in get_provider(name).capabilities)
        print(f"{name:10} {', '.join(caps)}")
    return EXIT_OK


def _devices(_: argparse.Namespace) -> int:
    from voxengine.audio.devices import list_devices

    devices = list_devices()  # ConfigError (exit 2) without sounddevice/PortAudio
    if not devices:
        raise CliError(
            "no audio devices found (is there a sound card?)",
            hint="console --input-file IN.wav --output-file OUT.wav works without one",
        )
    print(f"{'index':>5}  {'in':>3} {'out':>3} {'rate':>7}  name")
    for d in devices:
        print(
            f"{d.index:>5}  {d.max_input_channels:>3} {d.max_output_channels:>3} "
            f"{d.default_sample_rate:>7.0f}  {d.name}"
        )
    sys.stdout.flush()
    return EXIT_OK
