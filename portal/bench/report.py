"""What the bench prints and writes: the machine, the database, latency statistics, tables."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import django
from django.conf import settings
from django.db import connection


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gb": round(ram / 2**30, 1) if ram else None,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "django": django.get_version(),
    }


def database() -> dict:
    info = {"vendor": connection.vendor, "name": str(connection.settings_dict.get("NAME"))}
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            info["version"] = f"PostgreSQL {cursor.fetchone()[0]}"
            info["host"] = connection.settings_dict.get("HOST") or "local socket"
        elif connection.vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            info["version"] = f"SQLite {cursor.fetchone()[0]}"
        else:
            info["version"] = connection.vendor
    return info


def git_commit() -> str | None:
    """The checked-out commit, with "+changes" when the working tree differs from it
    (the figures then include code not committed yet)."""

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(  # noqa: S603 - fixed arguments
                ["git", *args],  # noqa: S607
                cwd=settings.BASE_DIR,
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no", "--", "portal", "templates"):
        commit += "+changes"
    return commit


def cache_backend() -> str:
    return settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]


# --- Statistics ------------------------------------------------------------------


def percentile(samples: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 30 samples is the 29th smallest)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def latency_summary(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "samples": len(ms),
        "median_ms": round(statistics.median(ms), 1),
        "p95_ms": round(percentile(ms, 0.95), 1),
        "min_ms": round(min(ms), 1),
        "max_ms": round(max(ms), 1),
    }


# --- Memory --------------------------------------------------------------------


def rss_bytes() -> int:
    """The process's resident memory now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


class RssSampler:
    """Samples the process's RSS in a thread; `peak_delta` is the highest RSS seen
    above the RSS at start (cheap enough not to disturb what is measured)."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.start_rss = self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.start_rss = self.peak = rss_bytes()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def peak_delta(self) -> int:
        return self.peak - self.start_rss


def mb(value: float | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


# --- Output ------------------------------------------------------------------------


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "", 1).lstrip("-").isdigit() or text in ("-", "n/a", "")


def table(headers: list[str], rows: list[list], *, title: str = "") -> str:
    """A plain text table (Markdown, so it pastes into the README); numbers to the right."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    right = [i > 0 and all(_numeric(r[i]) for r in cells) for i in range(len(headers))]

    def line(values):
        padded = (v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True))
        return "| " + " | ".join(padded) + " |"

    out = [f"\n{title}"] if title else []
    out.append(line(headers))
    out.append("|" + "|".join("-" * (w + 1) + (":" if r else "-") for w, r in zip(widths, right, strict=True)) + "|")
    out.extend(line(r) for r in cells)
    return "\n".join(out)


def write_json(report: dict, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = directory / f"{stamp}.json"
    n = 1
    while path.exists():
        n += 1
        path = directory / f"{stamp}-{n}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path
