"""``voxengine serve`` as a process: the page URL is printed, a caller talks through the
application's factory, and SIGTERM drains the call (``going_away``) before exiting."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from voxengine.serve.client import fetch_token, open_call

FACTORY = """
from voxengine import VoiceEngine
from voxengine.providers import MockConfig, MockProvider
from voxengine.serve import CallContext
from voxengine.serve.factory import engine_config


def make_engine(context: CallContext) -> VoiceEngine:
    config = engine_config(context.config)
    reply = f"factory reply for {context.endpoint}"
    provider = MockProvider(MockConfig(session=config.session_config(), replies=(reply,)))
    return VoiceEngine(config, provider=provider)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    env["VOXENGINE_SECRET"] = "cli-test-secret-0123456789"
    return env


@pytest.mark.timeout(120)
async def test_serve_command_runs_the_factory_and_drains_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "voice_app.py").write_text(FACTORY)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "voxengine", "serve", "--provider", "mock", "--port", "0",
        "--factory", "voice_app:make_engine", "--drain-timeout", "0.5",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path, env=_env(tmp_path),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert "provider mock, page at http://127.0.0.1:" in line
        url = line.rsplit("page at ", 1)[1].strip().rstrip("/")
        token = await fetch_token(url, secret="cli-test-secret-0123456789", subject="cli")
        async with open_call(url.replace("http", "ws", 1) + "/ws", token) as call:
            await call.send_text("hello")
            await call.wait_for("response", lambda m: m["state"] == "done", timeout=30)
            finals = [m["text"] for m in call.messages if m["type"] == "transcript"]
            assert "factory reply for browser" in finals
            process.send_signal(signal.SIGTERM)
            await call.wait_for("going_away", timeout=30)
            assert await call.wait_closed(timeout=30) == 1001
        code = await asyncio.wait_for(process.wait(), 30)
        assert code in (0, -signal.SIGTERM)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "nosuch"], "unknown provider 'nosuch'"),
        (["--factory", "no_colon"], "expected MODULE:FUNCTION"),
        (["--factory", "no_such_module_xyz:f"], "cannot import 'no_such_module_xyz'"),
    ],
)
def test_serve_command_refuses_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "voxengine", "serve", "--port", "0", *args],
        capture_output=True, text=True, timeout=60, cwd=tmp_path, env=_env(tmp_path),
        check=False,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
