"""A real multi-worker deployment on loopback, for the cluster test and benchmark.

:class:`Cluster` starts ``redis-server``, N ``voxengine serve`` worker processes
(separate OS processes sharing a deployment secret and the Redis state store) and
HAProxy in front of them, configured from the shipped ``deploy/haproxy.cfg`` (one
``server`` line per worker). Workers can be SIGKILLed and restarted. Each worker's
output goes to a log file in the cluster's folder (read it when something fails).

Binaries come from Debian (``redis-server``, ``haproxy``); :class:`MissingBinary`
names the one that is absent.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
HAPROXY_CFG = ROOT / "deploy" / "haproxy.cfg"
SECRET = "cluster-test-deployment-secret-0123456789"


class MissingBinary(RuntimeError):
    """A Debian binary the cluster needs is not installed."""


def which(name: str, *fallbacks: str) -> str:
    found = shutil.which(name) or next((f for f in fallbacks if Path(f).exists()), None)
    if found is None:
        raise MissingBinary(f"{name} is not installed (Debian package {name})")
    return found


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started it dies (Linux), so a
    killed test or benchmark leaves no worker, Redis or HAProxy behind."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout}s")
        time.sleep(0.05)


def _tcp_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Worker:
    """One ``voxengine serve`` process."""

    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def calls(self) -> int:
        """Calls in progress (its /readyz), -1 when it does not answer."""
        try:
            body = httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).json()
            return int(body["calls"])
        except (httpx.HTTPError, ValueError, KeyError):
            return -1

    def kill(self) -> None:
        """SIGKILL: the worker dies with its calls, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)


@dataclass
class Cluster:
    """See the module docstring. Use as a context manager."""

    workers: int = 2
    fake_openai_url: str = ""
    state_ttl: float = 60.0
    api_key: str = "sk-cluster-test-key-0123456789"
    public_tokens: bool = False
    secret: str = SECRET
    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="voxcluster-")))
    redis_port: int = field(default_factory=free_port)
    lb_port: int = field(default_factory=free_port)
    nodes: list[Worker] = field(default_factory=list)
    _redis: subprocess.Popen[bytes] | None = None
    _haproxy: subprocess.Popen[bytes] | None = None

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.lb_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.lb_port}/ws"

    def __enter__(self) -> Cluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start everything; on failure, stop what was started and re-raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        redis = which("redis-server", "/usr/bin/redis-server")
        haproxy = which("haproxy", "/usr/sbin/haproxy")
        self._redis = subprocess.Popen(
            [redis, "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent,
        )  # fmt: skip
        wait_until(lambda: _tcp_answers(self.redis_port), 15, "redis-server")
        self.nodes = [
            Worker(f"w{i + 1}", free_port(), self.folder / f"w{i + 1}.log")
            for i in range(self.workers)
        ]
        for worker in self.nodes:
            self.start_worker(worker, wait=False)
        for worker in self.nodes:
            wait_until(lambda w=worker: _ready(w.port), 60, f"worker {worker.name}")
        config = self.folder / "haproxy.cfg"
        config.write_text(self.haproxy_config())
        env = {**os.environ, "VOXENGINE_LB_BIND": f"127.0.0.1:{self.lb_port}"}
        self._haproxy = subprocess.Popen(
            [haproxy, "-f", str(config), "-db"],
            env=env,
            stdout=(self.folder / "haproxy.log").open("wb"),
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        wait_until(lambda: _ready(self.lb_port), 15, "haproxy")
        self.wait_balanced()

    def haproxy_config(self) -> str:
        """deploy/haproxy.cfg with one ``server`` line per worker."""
        text = HAPROXY_CFG.read_text()
        lines = "\n".join(f"    server {w.name} 127.0.0.1:{w.port} check" for w in self.nodes)
        text, count = re.subn(r"(?m)^    server w1 .*\n    server w2 .*$", lines, text)
        if count != 1:
            raise RuntimeError("deploy/haproxy.cfg no longer has the two server lines")
        # the harness asks HAProxy which workers it sees up (not part of the shipped file)
        stats = f"    stats socket {self.folder / 'haproxy.sock'} level user\n"
        return text.replace("global\n", "global\n" + stats, 1)

    def servers_up(self) -> set[str]:
        """The workers HAProxy currently sends calls to (its stats socket)."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(2)
            sock.connect(str(self.folder / "haproxy.sock"))
            sock.sendall(b"show stat\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        up = set()
        for row in data.decode().splitlines():
            fields = row.split(",")
            if len(fields) > 17 and fields[0] == "workers" and fields[17] == "UP":
                up.add(fields[1])
        return up

    def wait_balanced(self, timeout: float = 30.0) -> None:
        """Wait until HAProxy sees every live worker up (after a restart)."""
        names = {w.name for w in self.nodes if w.alive}
        wait_until(lambda: names <= self.servers_up(), timeout, "haproxy health checks")

    def start_worker(self, worker: Worker, *, wait: bool = True) -> None:
        env = {
            **os.environ,
            "VOXENGINE_SECRET": self.secret,
            "OPENAI_API_KEY": self.api_key,
            "VOXENGINE_FAKE_OPENAI_URL": self.fake_openai_url,
            "PYTHONPATH": str(ROOT),
        }
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "voxengine", "serve",
             "--factory", "benchmarks.cluster_factory:make_engine",
             "--port", str(worker.port), "--state-url", self.redis_url,
             "--state-ttl", str(self.state_ttl),
             "--public-tokens" if self.public_tokens else "--no-public-tokens",
             "--drain-timeout", "1"],
            cwd=ROOT, env=env,
            stdout=worker.log.open("ab"), stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )  # fmt: skip
        if wait:
            wait_until(lambda: _ready(worker.port), 60, f"worker {worker.name}")

    def carrier(self) -> Worker:
        """The worker with a call in progress (the first one found)."""
        for worker in self.nodes:
            if worker.alive and worker.calls() > 0:
                return worker
        raise LookupError("no worker has a call in progress")

    def stop(self) -> None:
        for worker in self.nodes:
            if worker.alive and worker.process is not None:
                worker.process.terminate()
        for proc in (self._haproxy, self._redis):
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in [w.process for w in self.nodes] + [self._haproxy, self._redis]:
            if proc is not None:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)

    def logs(self) -> str:
        """Every log of the cluster (for a failure message)."""
        out = []
        for path in sorted(self.folder.glob("*.log")):
            with contextlib.suppress(OSError):
                out.append(f"== {path.name}\n{path.read_text(errors='replace')[-4000:]}")
        return "\n".join(out)


@contextlib.contextmanager
def running_cluster(**settings: object) -> Iterator[Cluster]:
    with Cluster(**settings) as cluster:  # type: ignore[arg-type]
        yield cluster
