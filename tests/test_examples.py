"""Every program in examples/ runs as written, offline, and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))

#: What each program must print: the evidence that it did its job.
EXPECTED = {
    "hello_mock.py": "status: completed",
    "fake_server.py": "the client sent: session.update",
    "tools.py": "It is 18 degrees celsius and sunny in Paris.",
    "wav_turn.py": "completed:",
    "offline_pipeline.py": "s of speech)",
    "record_replay.py": "replayed: 'You said: a table for two'",
}


def test_every_example_has_an_expectation() -> None:
    assert {p.name for p in EXAMPLES} == set(EXPECTED)


@pytest.mark.timeout(180)
@pytest.mark.parametrize("program", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(program: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(program)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert EXPECTED[program.name] in result.stdout
    assert "Traceback" not in result.stderr
