"""Transmission security (HIPAA 164.312(e)): production refuses a partner URL that
is not https, and no code turns certificate checks off."""

import re
from pathlib import Path

import pytest

from tests.accounts.helpers import PRODUCTION_ENV, ROOT, manage


@pytest.mark.parametrize("name", ["EVERLYWELL_API_URL", "EVERLYWELL_AUTH_URL"])
def test_production_refuses_a_plain_http_partner_url(name):
    result = manage("check", env={**PRODUCTION_ENV, name: "http://partner.example/api"})
    assert result.returncode != 0
    assert f"{name} must be an https:// URL" in result.stderr


def test_the_escape_hatch_allows_http_for_tests_and_the_sandbox():
    env = {
        **PRODUCTION_ENV,
        "EVERLYWELL_API_URL": "http://127.0.0.1:8001/aapi",
        "EVERLYWELL_AUTH_URL": "http://127.0.0.1:8001/api",
        "EVERLYWELL_ALLOW_INSECURE_URLS": "True",
    }
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr


def test_debug_mode_runs_against_the_local_sandbox_without_the_flag():
    env = {
        "DJANGO_DEBUG": "True",
        "EVERLYWELL_API_URL": "http://127.0.0.1:8001/aapi",
        "EVERLYWELL_AUTH_URL": "http://127.0.0.1:8001/api",
    }
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr


def test_production_with_https_partner_urls_starts():
    env = {
        **PRODUCTION_ENV,
        "EVERLYWELL_API_URL": "https://secure.everlywell.com/aapi",
        "EVERLYWELL_AUTH_URL": "https://auth.everlywell.com/api",
    }
    result = manage("check", env=env)
    assert result.returncode == 0, result.stderr


def test_no_code_turns_off_certificate_verification():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in Path(ROOT, "portal").rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"verify\s*=\s*False|CERT_NONE|check_hostname\s*=\s*False", line)
    ]
    assert offenders == []
