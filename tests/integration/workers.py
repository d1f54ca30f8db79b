"""Real Celery worker and beat processes for integration tests (CI's PostgreSQL + Redis pass)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], bool], *, timeout: float = 60.0, what: str = "condition") -> None:
    """Wait for other processes to do their work (the only place tests wait for real)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def portal_env(*, sandbox, mail_dir: Path, **overrides: str) -> dict[str, str]:
    """The environment a worker needs to share this test's database, broker and sandbox."""
    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "EMAIL_URL": f"filemail://{mail_dir}",
            "EVERLYWELL_API_URL": sandbox.api_url,
            "EVERLYWELL_AUTH_URL": sandbox.auth_url,
            "EVERLYWELL_CLIENT_ID": sandbox.client_id,
            "EVERLYWELL_CLIENT_SECRET": sandbox.client_secret,
            "EVERLYWELL_ALLOW_INSECURE_URLS": "True",
            "RESULT_POLL_INTERVAL": "1",
            # Production-like: the poll's calls run in pool threads.
            "EVERLYWELL_CONCURRENCY": "4",
            "ORDER_POLL_INTERVAL": "3600",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


class Process:
    """A Celery worker or beat in its own process group (so a kill takes its children too)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._log_file = log.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv built by the tests
            [sys.executable, "-m", "celery", "-A", "portal", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole group: the worker dies mid-task, as on a lost machine."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_worker(env: dict[str, str], tmp_path: Path, name: str, concurrency: int = 2) -> Process:
    args = ["worker", "-l", "INFO", "-c", str(concurrency), "-n", f"{name}@%h", "--without-gossip", "--without-mingle"]
    return Process(args, env, tmp_path / f"{name}.log")


def start_beat(env: dict[str, str], tmp_path: Path, name: str = "beat") -> Process:
    return Process(["beat", "-l", "INFO", "-s", str(tmp_path / f"{name}-schedule")], env, tmp_path / f"{name}.log")


def wait_until_ready(worker: Process, timeout: float = 60) -> None:
    wait_for(lambda: "ready." in worker.output(), timeout=timeout, what=f"{worker.log.name} to start")
