"""The shipped deployment files hold together: HAProxy accepts deploy/haproxy.cfg (and
the cluster tests run it), systemd accepts the worker unit, and the compose file wires
the same names as the HAProxy configuration."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parents[2] / "deploy"


def test_haproxy_accepts_the_shipped_configuration() -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.skip("haproxy is not installed (Debian package haproxy)")
    env = {
        "VOXENGINE_LB_BIND": "127.0.0.1:8080",
        "VOXENGINE_WORKER_1": "127.0.0.1:8001",
        "VOXENGINE_WORKER_2": "127.0.0.1:8002",
    }
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")], env=env, capture_output=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = subprocess.run(
        [haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")],
        env={**env, "VOXENGINE_WORKER_2": ""},
        capture_output=True,
    )
    assert broken.returncode != 0  # the check is real: a missing address fails


def test_systemd_accepts_the_worker_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    voxengine = shutil.which("voxengine") or str(Path(__file__).parents[2] / ".venv/bin/voxengine")
    if not Path(voxengine).exists():
        pytest.skip("the voxengine command is not installed")
    unit = (DEPLOY / "voxengine@.service").read_text()
    assert "--state-url ${VOXENGINE_STATE_URL}" in unit
    # where this machine has the command, and a user that exists here
    unit = unit.replace("/opt/voxengine/.venv/bin/voxengine", voxengine)
    unit = re.sub(r"(?m)^(User|Group)=voxengine$", r"\1=root", unit)
    unit = re.sub(r"(?m)^EnvironmentFile=.*$", "EnvironmentFile=-/nonexistent", unit)
    (tmp_path / "voxengine@.service").write_text(unit)
    verified = subprocess.run(
        [analyze, "verify", str(tmp_path / "voxengine@8001.service")],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    assert "voxengine@" not in verified.stderr  # no warning about our unit


def test_the_compose_file_matches_the_haproxy_configuration() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    workers = [name for name in services if name.startswith("worker")]
    assert len(workers) >= 2
    for name in workers:
        command = " ".join(services[name]["command"])
        assert "--state-url=redis://redis:6379/0" in command
        assert "VOXENGINE_SECRET" in services[name]["environment"]
    lb = services["lb"]
    config = (DEPLOY / "haproxy.cfg").read_text()
    variables = re.findall(r'(?m)^\s+(?:bind|server \w+) "\$\{(\w+)\}"', config)
    assert len(variables) == 3
    for variable in variables:
        assert variable in lb["environment"], variable
    assert any(v.endswith("haproxy.cfg:ro") for v in lb["volumes"])
    assert (DEPLOY / services[workers[0]]["build"]["dockerfile"].split("/")[-1]).exists()
