"""The provider every command uses when none is named: the offline speech stack.

``demo``, ``run``, ``chat`` and ``console`` all build their default provider here,
with :func:`default_provider`, so that changing the default stack in this one place
changes it for every command. Today it is the cascaded pipeline of
:mod:`voxengine.providers.pipeline` with PocketSphinx speech recognition, the
built-in local responder (fixed rules, not an AI model) and espeak-ng speech: no
network, no key.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass

from voxengine.cli._common import CliError
from voxengine.config import SessionConfig
from voxengine.providers.base import BaseProvider

__all__ = ["DEFAULT_PROVIDER_NAME", "DefaultProvider", "check_offline_packages", "default_provider"]

#: The registry name of the default provider's class (what a recording would name).
DEFAULT_PROVIDER_NAME = "pipeline"

#: The Python modules the offline stack needs (the ``pipeline`` extra).
_MODULES = ("pocketsphinx", "espeakng_loader")


@dataclass(frozen=True, slots=True)
class DefaultProvider:
    """The default provider, and how the commands describe it.

    Attributes:
        provider: an unconnected provider.
        banner: one line naming its stages, e.g. for ``demo``'s first line.
        note: one line saying what it is (and is not).
        name: the provider's registry name.
    """

    provider: BaseProvider
    banner: str
    note: str
    name: str = DEFAULT_PROVIDER_NAME


def arrow() -> str:
    """``→``, or ``->`` when stdout cannot encode it."""
    try:
        "→".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "->"
    return "→"


def check_offline_packages() -> None:
    """Fail with install advice when the offline stack's packages are missing.

    Raises:
        CliError: a package of the ``pipeline`` extra is not installed.
    """
    missing = [m for m in _MODULES if not importlib.util.find_spec(m)]
    if missing:
        raise CliError(
            f"the offline speech stages need {' and '.join(missing)}, which are not installed",
            hint="pip install 'voxengine[pipeline]', or add --fake to use the bundled fake server",
        )


def default_provider(session: SessionConfig, *, voice: str | None = None) -> DefaultProvider:
    """The offline provider for ``session``: speech recognition, responder, speech.

    Args:
        session: the session settings (instructions, tools, turn detection).
        voice: the speech stage's voice (an espeak-ng voice), default ``en-us``.

    Raises:
        CliError: the offline stack's packages are not installed.
    """
    check_offline_packages()
    from voxengine.providers.pipeline import (
        EspeakTTS,
        LocalResponder,
        PipelineConfig,
        PipelineProvider,
        PocketSphinxSTT,
    )

    llm = LocalResponder()
    provider = PipelineProvider(
        PipelineConfig(
            stt=PocketSphinxSTT(), llm=llm, tts=EspeakTTS(voice=voice or "en-us"), session=session
        )
    )
    to = arrow()
    banner = (
        f"offline pipeline: PocketSphinx speech recognition {to} {llm.label} {to} espeak-ng speech"
    )
    note = (
        "(no API key, no network: the responder follows fixed rules - it tells the time and "
        "the date, greets and echoes)"
    )
    return DefaultProvider(provider, banner, note)
