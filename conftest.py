"""Runs every code block of README.md and docs/*.md as a test (Sybil).

* ``python`` blocks run in one namespace per document, in order. Top-level ``await``
  is allowed (each block that uses it runs in its own event loop), as in the
  ``python -m asyncio`` REPL the docs assume for fragments.
* Blocks that need ``OPENAI_API_KEY`` say so in the text; here they run against the
  bundled fake OpenAI server: a fake key is set and the provider's default endpoint
  points at the fake (started in a thread for each document).
* ``bash`` blocks run line by line in a temporary folder holding ``question.wav``,
  ``q1.wav`` and ``q2.wav``, with no API keys in the environment. A line ending in
  ``# needs OPENAI_API_KEY`` (or another ``*_API_KEY``) must fail cleanly: exit code 2
  and the key's name in the message (so its flags are still checked); a line ending
  in ``# needs a microphone`` must run or fail cleanly (exit 0 or 2, no traceback).
  ``export`` lines are not run. Every other line must exit 0.
* A ``python``, ``ini`` or ``toml`` block whose first line is ``# file: NAME`` is
  written to the folder (python is compiled, not run): a later bash block runs it,
  e.g. ``python -m pytest -q test_booking.py``.
* ``<!-- skip: next "reason" -->`` before a block skips it (used for README's first
  block, which .ci/run runs as written).
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sybil import Example, Sybil
from sybil.parsers.markdown import CodeBlockParser, SkipParser

ROOT = Path(__file__).parent
FAKE_KEY = "sk-docs-fake-key"
_NEEDS_KEY = re.compile(r"#\s*needs\s+([A-Z_]+_API_KEY)\s*$")
_NEEDS_DEVICE = re.compile(r"#\s*needs\s+a\s+(microphone|speaker|sound card)\s*$")
_KEYS = (
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "ANTHROPIC_API_KEY",
)


class _FakeInThread:
    """The bundled fake OpenAI server on its own event loop thread."""

    def __init__(self) -> None:
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        from voxengine.testing import run_fake_openai_server

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with run_fake_openai_server() as server:
            self.url = server.url
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> _FakeInThread:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the fake OpenAI server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def _setup(namespace: dict[str, Any]) -> None:
    import voxengine.providers.openai as openai_provider

    stack = contextlib.ExitStack()
    fake = stack.enter_context(_FakeInThread())
    saved_url = openai_provider.DEFAULT_OPENAI_URL
    openai_provider.DEFAULT_OPENAI_URL = fake.url
    stack.callback(setattr, openai_provider, "DEFAULT_OPENAI_URL", saved_url)
    saved_env = {k: os.environ.get(k) for k in (*_KEYS, "VOXENGINE_DOCS_TMP")}
    for key in _KEYS:
        os.environ.pop(key, None)
    os.environ["OPENAI_API_KEY"] = FAKE_KEY
    stack.callback(_restore_env, saved_env)
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="voxengine-docs-"))
    _write_wavs(Path(folder))
    saved_cwd = os.getcwd()
    os.chdir(folder)
    stack.callback(os.chdir, saved_cwd)
    namespace["_docs_stack"] = stack
    namespace["_docs_folder"] = folder


def _teardown(namespace: dict[str, Any]) -> None:
    """After a document's last example: undo the setup and drop what the examples made.

    The namespace lives as long as pytest's session (until interpreter exit); an engine
    a document leaves in it sits in reference cycles that would be freed only during
    interpreter teardown, after the extension modules it holds objects of (a
    StreamResampler's soxr stream: nanobind's "leaked 1 instances! ... CSoxr" at exit,
    from docs/troubleshooting.md's ``engine``). Cleared here, they are garbage while
    every module is alive.
    """
    namespace.pop("_docs_stack").close()
    namespace.clear()


def _restore_env(saved: dict[str, str | None]) -> None:
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _write_wavs(folder: Path) -> None:
    from voxengine.audio.format import PCM16_24K
    from voxengine.audio.wav import write_wav
    from voxengine.testing import synthesize_speech

    for name, words in (("question", "what time is it"), ("q1", "hello"), ("q2", "thanks")):
        write_wav(folder / f"{name}.wav", synthesize_speech(words, sample_rate=24000), PCM16_24K)


_FILE = re.compile(r"\A#\s*file:\s*(\S+)\s*\n")


def _write_file(example: Example) -> bool:
    """A block starting ``# file: NAME`` is written to the document's folder; True if so."""
    match = _FILE.match(str(example.parsed))
    if match is None:
        return False
    Path(match.group(1)).write_text(str(example.parsed), encoding="utf-8")
    return True


def evaluate_file(example: Example) -> None:
    """A config block (ini, toml): written to the folder when it names a file."""
    _write_file(example)


def evaluate_python(example: Example) -> None:
    """Run a python block; a block with top-level ``await`` runs in a new event loop.

    A block starting ``# file: NAME`` is a module: it is compiled (syntax-checked) and
    written to the document's folder, where a later bash block runs it.
    """
    __tracebackhide__ = True
    if _write_file(example):
        compile(str(example.parsed), example.path, "exec", dont_inherit=True)
        return
    source = "\n" * (example.line + example.parsed.line_offset) + example.parsed
    code = compile(
        source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    result = eval(code, example.namespace)
    if inspect.iscoroutine(result):
        asyncio.run(result)
    example.namespace.pop("__builtins__", None)


def _commands(source: str) -> Iterator[str]:
    """Logical lines of a bash block (continuations joined, comments-only lines dropped)."""
    pending = ""
    for raw in source.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip() and not line.lstrip().startswith("#"):
            yield line.strip()


def evaluate_bash(example: Example) -> None:
    """Run each command line of a bash block and check its exit code (see module doc)."""
    __tracebackhide__ = True
    env = {k: v for k, v in os.environ.items() if k not in _KEYS}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT / "src")
    for command in _commands(str(example.parsed)):
        if command.startswith("export "):
            continue
        needs_key = _NEEDS_KEY.search(command)
        needs_device = _NEEDS_DEVICE.search(command)
        shell = re.sub(r"\bpython3? -m ", f"{shlex.quote(sys.executable)} -m ", command)
        done = subprocess.run(
            ["bash", "-c", "set -o pipefail; " + shell],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        where = f"{example.path}:{example.line}: {command}"
        assert "Traceback" not in done.stderr, f"{where}\n{done.stderr}"
        if needs_key:
            assert done.returncode == 2, f"{where}: exit {done.returncode}\n{done.stderr}"
            assert needs_key.group(1) in done.stderr, f"{where}\n{done.stderr}"
        elif needs_device:
            assert done.returncode in (0, 2), f"{where}: exit {done.returncode}\n{done.stderr}"
        else:
            assert done.returncode == 0, f"{where}: exit {done.returncode}\n{done.stderr}"


pytest_collect_file = Sybil(
    parsers=[
        CodeBlockParser(language="python", evaluator=evaluate_python),
        CodeBlockParser(language="bash", evaluator=evaluate_bash),
        CodeBlockParser(language="ini", evaluator=evaluate_file),
        CodeBlockParser(language="toml", evaluator=evaluate_file),
        SkipParser(),
    ],
    patterns=["README.md", "docs/*.md"],
    path=str(ROOT),
    setup=_setup,
    teardown=_teardown,
).pytest()
