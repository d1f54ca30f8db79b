"""Helpers shared by the access-control tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django_otp.oath import TOTP

ROOT = Path(__file__).resolve().parents[2]

# Settings as production would have them (DEBUG off, https partner URLs by default).
PRODUCTION_ENV = {
    "DJANGO_DEBUG": "False",
    "DJANGO_SECRET_KEY": "prod-" + "x7Rk2pQ9vL4mN8sT1wY6zB3cF5hJ0dG2aE4iU7oP9qS1tV3" * 2,
    "DJANGO_ALLOWED_HOSTS": "portal.clinic.example",
    "DATABASE_URL": "sqlite:///:memory:",
    "CACHE_URL": "locmemcache://",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with only `env` on top of a clean environment
    (none of the test run's DJANGO_*, EVERLYWELL_* or 2FA variables)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "EVERLYWELL_", "REQUIRE_2FA", "SESSION_", "AXES_"))
        and k not in ("CACHE_URL", "DATABASE_URL")
    }
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def totp_code(device, *, steps_ahead: int = 0) -> str:
    """The code the person's authenticator app would show now (or a step later)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + steps_ahead * device.step
    return f"{totp.token():0{device.digits}d}"


class FakeClock:
    """Stands in for portal.accounts.middleware.now: time moves only when told."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.current = start

    def __call__(self) -> float:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += seconds


def wrong_totp_code(device) -> str:
    """A well-formed code the device refuses: none of the codes of the steps it accepts."""
    accepted = {totp_code(device, steps_ahead=n) for n in range(-2, 3)}
    return next(code for code in ("000000", "111111", "222222", "333333", "444444", "555555") if code not in accepted)
