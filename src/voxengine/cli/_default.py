"""The provider every command uses when none is named: the offline speech stack.

``demo``, ``run``, ``chat`` and ``console`` all build their default provider here,
with :func:`default_provider`, so that changing the default stack in one place changes
it for every command. The stack itself is chosen by
:func:`voxengine.cli._offline.offline_provider`: the local voice AI (Whisper, SmolLM2
through llama.cpp, Piper, Silero VAD) when the ``local`` extra is installed, else the
rule-based fallback (PocketSphinx, the built-in responder, espeak-ng). No network, no
key either way.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from voxengine.config import SessionConfig
from voxengine.providers.base import BaseProvider

__all__ = ["DEFAULT_PROVIDER_NAME", "DefaultProvider", "arrow", "default_provider"]

#: The registry name of the default provider's class (what a recording would name).
DEFAULT_PROVIDER_NAME = "pipeline"


@dataclass(frozen=True, slots=True)
class DefaultProvider:
    """The default provider, and how the commands describe it.

    Attributes:
        provider: an unconnected provider.
        banner: one line naming its stages, e.g. for ``demo``'s first line.
        note: one line saying what it is (and is not).
        local: True for the local voice AI, False for the rule-based fallback.
        name: the provider's registry name.
    """

    provider: BaseProvider
    banner: str
    note: str
    local: bool
    name: str = DEFAULT_PROVIDER_NAME


def arrow() -> str:
    """``→``, or ``->`` when stdout cannot encode it."""
    try:
        "→".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "->"
    return "→"


def default_provider(session: SessionConfig, *, voice: str | None = None) -> DefaultProvider:
    """The offline provider for ``session`` (see the module docstring).

    Args:
        session: the session settings (instructions, tools, turn detection).
        voice: a Piper ``.onnx`` voice file for the local stack; an espeak-ng voice
            name (default ``en-us``) for the fallback.

    Raises:
        CliError: neither the ``local`` extra nor the fallback's packages are
            installed, or ``voice`` does not suit the stack.
    """
    from voxengine.cli._offline import offline_provider  # loads the pipeline stages

    stack = offline_provider(session, voice=voice)
    return DefaultProvider(
        provider=stack.provider,
        banner=f"offline pipeline: {stack.banner(arrow())}",
        note=stack.note(),
        local=stack.local,
    )
