"""The sandbox partner as pytest fixtures (loaded by tests/conftest.py).

    def test_flow(sandbox_server, settings):
        sandbox_server.configure(settings)          # point EVERLYWELL_* at it
        ...
        sandbox_server.clock.advance(90)            # results become ready
        assert sandbox_server.stats()["token_requests"] == 1

`sandbox_server` runs with the default options (faults off, in-memory store);
override the `sandbox_options` fixture (a dict of `SandboxOptions` fields) in a
module, or call `start_sandbox(**options)` for a server with other options. Each
server listens on a free 127.0.0.1 port in a background thread and stops after
the test. Its clock only moves when the test moves it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from portal.sandbox.options import SandboxOptions
from portal.sandbox.server import SandboxServer


class FakeClock:
    """A settable clock (epoch seconds), starting at the real time by default so
    JWT `exp` values look plausible to a client that uses the real clock."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now

    def sleep(self, seconds: float) -> None:
        """A `sleep` that moves this clock instead of waiting."""
        self.advance(seconds)


@dataclass
class RunningSandbox:
    server: SandboxServer
    clock: FakeClock

    @property
    def options(self) -> SandboxOptions:
        """Mutable while running: e.g. `sandbox.options.error_rate = 1.0`."""
        return self.server.options

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/aapi"

    @property
    def auth_url(self) -> str:
        return f"{self.base_url}/api"

    @property
    def client_id(self) -> str:
        return self.options.client_id

    @property
    def client_secret(self) -> str:
        return self.options.client_secret

    def stats(self) -> dict[str, int]:
        return self.server.stats()

    def configure(self, settings) -> None:
        """Point the portal's EVERLYWELL_* settings (pytest-django's `settings`) at
        this sandbox and drop the process's client so the next call uses them."""
        from portal.upstream.client import reset_client

        settings.EVERLYWELL_API_URL = self.api_url
        settings.EVERLYWELL_AUTH_URL = self.auth_url
        settings.EVERLYWELL_CLIENT_ID = self.client_id
        settings.EVERLYWELL_CLIENT_SECRET = self.client_secret
        reset_client()

    def client(self, **kwargs):
        """A new `EverlywellClient` for this sandbox (no real sleeping by default)."""
        from portal.upstream.client import EverlywellClient

        arguments = {
            "api_url": self.api_url,
            "auth_url": self.auth_url,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "sleep": lambda seconds: None,
            **kwargs,
        }
        return EverlywellClient(**arguments)


@pytest.fixture
def sandbox_options() -> dict:
    """Options for `sandbox_server`; override this fixture to change them."""
    return {}


@pytest.fixture
def start_sandbox():
    """A factory: `start_sandbox(clock=None, sleep=None, **options) -> RunningSandbox`
    (`sleep` is what the server calls for SANDBOX_LATENCY_MS)."""
    running: list[RunningSandbox] = []

    def start(clock: FakeClock | None = None, sleep=None, **options) -> RunningSandbox:
        clock = clock or FakeClock()
        opts = SandboxOptions(host="127.0.0.1", port=0, db_path=":memory:", quiet=True, seed=1234)
        for name, value in options.items():
            if not hasattr(opts, name):
                raise TypeError(f"unknown sandbox option {name!r}")
            setattr(opts, name, value)
        server = SandboxServer(opts, clock=clock, sleep=sleep or time.sleep)
        sandbox = RunningSandbox(server=server.start(), clock=clock)
        running.append(sandbox)
        return sandbox

    yield start
    for sandbox in running:
        sandbox.server.stop()


@pytest.fixture
def sandbox_server(start_sandbox, sandbox_options) -> RunningSandbox:
    """The sandbox running on 127.0.0.1 with `sandbox_options`, for this test."""
    return start_sandbox(**sandbox_options)
