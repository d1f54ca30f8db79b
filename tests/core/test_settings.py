"""Settings come from the environment, and production refuses unsafe values."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "False",
    "DJANGO_SECRET_KEY": "prod-" + "x7Rk2pQ9vL4mN8sT1wY6zB3cF5hJ0dG2aE4iU7oP9qS1tV3" * 2,
    "DJANGO_ALLOWED_HOSTS": "portal.clinic.example",
    "DJANGO_SECURE_SSL_REDIRECT": "True",
    "DJANGO_SECURE_COOKIES": "True",
    "DATABASE_URL": "sqlite:///:memory:",
    "CACHE_URL": "locmemcache://",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "EVERLYWELL_"))}
    base.pop("CACHE_URL", None)
    base.pop("DATABASE_URL", None)
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_check_deploy_is_clean_under_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_the_development_secret_key():
    env = {**PRODUCTION_ENV}
    env.pop("DJANGO_SECRET_KEY")
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_defaults_point_at_the_partner_over_https():
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings as s; print(s.EVERLYWELL_API_URL, s.EVERLYWELL_AUTH_URL)",
        env=PRODUCTION_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1].split() == [
        "https://secure.everlywell.com/aapi",
        "https://auth.everlywell.com/api",
    ]


def _pg_options(extra: dict[str, str]) -> str:
    env = {**PRODUCTION_ENV, "DATABASE_URL": "postgres://portal@db.example:5432/portal", **extra}
    code = (
        "from django.conf import settings as s; print(repr(s.DATABASES['default'].get('OPTIONS', {}).get('options')))"
    )
    result = _manage("shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_postgresql_connections_turn_jit_off_and_price_random_reads_for_ssd():
    assert _pg_options({}) == "'-c jit=off -c random_page_cost=1.1 -c cursor_tuple_fraction=1'"
    assert _pg_options({"DATABASE_PG_OPTIONS": ""}) == "None"  # behind a pooler that refuses them


def test_the_planner_settings_reach_the_database_session(db):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL settings")
    with connection.cursor() as cursor:
        names = ("jit", "random_page_cost", "cursor_tuple_fraction")
        cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in names))
        assert cursor.fetchone() == ("off", "1.1", "1")
