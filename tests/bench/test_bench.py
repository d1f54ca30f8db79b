"""`manage.py bench` keeps working: a tiny run on SQLite writes the JSON report.

The command runs in a process of its own, as `make bench` runs it, on a throwaway
SQLite file (its name says "bench", so the command agrees to wipe it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.bench.data import kit_code, make_plan
from portal.bench.safety import check_wipe_allowed


def _bench(tmp_path: Path, *args: str, database: str = "portal_bench.sqlite3") -> subprocess.CompletedProcess:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / database}"}
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", "bench", "--output", str(tmp_path / "out"), *args],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_small_run_writes_the_report_with_polling_and_pages(tmp_path):
    done = _bench(tmp_path, "--rows", "300", "--only", "polling,pages", "--repeat", "2")

    assert done.returncode == 0, done.stdout + done.stderr
    [report_file] = (tmp_path / "out").glob("*.json")
    report = json.loads(report_file.read_text())
    assert {"machine", "database", "row_counts", "generation", "polling", "pages", "goals"} <= report.keys()
    assert report["database"]["vendor"] == "sqlite"
    assert report["machine"]["cores"] >= 1
    assert report["row_counts"]["results_result"] == 300
    polling = report["polling"]
    assert polling["runs"]["large"]["polled"] == 30
    assert polling["token_requests"] == 1
    assert {"results_per_s", "limit_per_s", "ratio", "memory_small_mb", "memory_large_mb"} <= polling.keys()
    first_page = report["pages"]["results_first"]
    if first_page["available"]:  # the results list may not exist yet in a partial checkout
        assert {"median_ms", "p95_ms", "queries"} <= first_page.keys()
    assert "Polling: C=" in done.stdout
    assert "Goals" in done.stdout


def test_refuses_a_database_not_named_for_the_bench(tmp_path):
    done = _bench(tmp_path, "--rows", "300", "--only", "pages", database="portal.sqlite3")

    assert done.returncode != 0
    assert "refusing to run" in done.stderr
    assert not (tmp_path / "portal.sqlite3").exists()


def test_the_safety_check_accepts_bench_names_or_the_explicit_flag():
    check_wipe_allowed({"NAME": "portal_bench"}, forced=False)
    check_wipe_allowed({"NAME": "clinic"}, forced=True)
    with pytest.raises(CommandError):
        check_wipe_allowed({"NAME": "clinic", "ENGINE": "django.db.backends.postgresql"}, forced=False)


def test_unknown_parts_are_refused():
    with pytest.raises(CommandError, match="unknown part"):
        call_command("bench", only="polling,nonsense", force=True)


def test_the_plan_is_deterministic_and_shaped_like_a_clinic():
    first = make_plan(rows=5000, seed=7, now=1_800_000_000)
    again = make_plan(rows=5000, seed=7, now=1_800_000_000)

    assert first.kit_time == again.kit_time and first.kit_status == again.kit_status
    statuses = list(first.kit_status)
    results = len(statuses) - statuses.count(0)
    assert results == 5000
    ready_share = statuses.count(1) / results
    assert 0.8 < ready_share < 0.9
    assert len({kit_code(i) for i in range(1, 100_001)}) == 100_000
