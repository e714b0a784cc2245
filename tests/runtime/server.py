"""Start Marshrut exactly as ``make run`` (gunicorn with gunicorn.conf.py) or ``flask worker``
does, on a given database, for tests and benchmarks that need real parallel clients."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_for(database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARSHRUT_")}
    env.update({"MARSHRUT_DATABASE_URL": database_url, "MARSHRUT_SECRET_KEY": "test-server",
                "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


def flask_cli(database_url: str, *args: str, **extra: str) -> str:
    out = subprocess.run([str(BIN / "flask"), "--app", "app", *args], cwd=ROOT,
                         env=env_for(database_url, **extra), capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@dataclass
class Server:
    """A gunicorn master with its workers; ``log`` holds what it printed."""

    proc: subprocess.Popen
    url: str
    log_path: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


def start_server(database_url: str, log_path: Path, *, workers: int = 2, threads: int = 8,
                 **extra: str) -> Server:
    port = free_port()
    env = env_for(database_url, MARSHRUT_BIND=f"127.0.0.1:{port}",
                  MARSHRUT_WORKERS=str(workers), MARSHRUT_THREADS=str(threads), **extra)
    with log_path.open("w") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py",
                                 "app:create_app()"], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("gunicorn exited:\n" + log_path.read_text())
        try:  # a bare connection, not an HTTP request: nothing may depend on a first visit
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return Server(proc, url, log_path)
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not answer:\n" + log_path.read_text())


def request(method: str, url: str, token: str | None = None, body: Any = None,
            timeout: float = 60) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw, status, headers = resp.read(), resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        raw, status, headers = err.read(), err.code, dict(err.headers)
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = raw.decode(errors="replace")
    return status, payload, headers
