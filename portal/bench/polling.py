"""Polling throughput: due results polled against the sandbox with 50 ms of latency.

The worker runs as in production: `results_poll_task.run()` (the Celery task's body,
in this process) with the configured EVERLYWELL_CONCURRENCY and POLL_BATCH_SIZE, the
configured cache for the token, and the database given by DATABASE_URL. Only the
partner is replaced: an in-process `SandboxServer` on a free 127.0.0.1 port, its
clock fixed so every answer is known in advance:

- 5% answer "quality_review" (a state the portal does not know: status unknown),
- of the rest, 70% "awaiting_sample" (nothing new: the common case), 18%
  "processing" (a state change), 12% "ready" (state change and the patient's email).

With `--sandbox-process` the sandbox runs in a process of its own instead (as the
real partner is elsewhere): the poller's CPU and GIL are then its own.

The polled rows are the bench's own (lab ids below `UPSTREAM_BASE`), inserted before
and deleted after, so the generated data stay as they were.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import connection
from django.db.models import Count
from django.test.utils import override_settings
from django.utils import timezone

from portal.bench.data import UPSTREAM_BASE
from portal.bench.report import RssSampler, mb
from portal.core.models import StateChange
from portal.core.states import Status
from portal.kits.models import KitRegistration
from portal.notifications.models import Notification
from portal.orders.models import Order
from portal.patients.models import Patient
from portal.results.models import Result
from portal.results.tasks import results_poll_task
from portal.sandbox.options import SandboxOptions
from portal.sandbox.server import SandboxServer
from portal.sandbox.store import Store
from portal.upstream.client import reset_client
from portal.upstream.models import UpstreamCall
from portal.upstream.tokens import TOKEN_KEY

LATENCY_MS = 50
POLL_KIT_PREFIX = "bench-poll-"
POLL_ORDER_KEY = uuid.uuid5(uuid.NAMESPACE_URL, "portal-bench-polling-order")
FAR_FUTURE = timedelta(days=3650)
FLAT_MEMORY_MB = 8


def _elapsed_for(sandbox_id: int, draw: float) -> float:
    """Seconds since registration that make the sandbox answer the wanted state
    (ready after 90 s; see portal/sandbox/schedule.py)."""
    if sandbox_id % 20 == 0:
        return 80  # id divisible by 5, between 3/4 and all of 90 s: "quality_review"
    if draw < 0.70:
        return 10  # "awaiting_sample"
    if draw < 0.88:
        return 50  # "processing"
    return 120  # "ready"


def poll_rows_delete() -> None:
    """Remove what this benchmark inserted (also what a crashed run left behind)."""
    results = Result.objects.filter(upstream_id__lt=UPSTREAM_BASE)
    result_ids = list(results.values_list("id", flat=True))
    result_ct = ContentType.objects.get_for_model(Result)
    registration_ct = ContentType.objects.get_for_model(KitRegistration)
    Notification.objects.filter(result_id__in=result_ids).delete()
    StateChange.objects.filter(content_type=result_ct, object_id__in=result_ids).delete()
    results.delete()
    registrations = KitRegistration.objects.filter(kit_id__startswith=POLL_KIT_PREFIX)
    StateChange.objects.filter(
        content_type=registration_ct, object_id__in=list(registrations.values_list("id", flat=True))
    ).delete()
    registrations.delete()
    Order.objects.filter(idempotency_key=POLL_ORDER_KEY).delete()


def _insert_poll_rows(*, sandbox_order_id: int, count: int) -> None:
    """`count` accepted kits whose results have lab ids 1..count, none due yet."""
    now = timezone.now()
    order = Order.objects.create(
        amount=49 * count,
        upstream_id=sandbox_order_id,
        state="shipped",
        status=Status.IN_PROGRESS,
        submission_status="accepted",
        idempotency_key=POLL_ORDER_KEY,
    )
    patient_ids = list(Patient.objects.order_by("id").values_list("id", flat=True)[: max(1, min(count, 5000))])
    if not patient_ids:
        raise RuntimeError("no patients: generate the bench data first")
    registrations = KitRegistration.objects.bulk_create(
        [
            KitRegistration(
                order=order,
                patient_id=patient_ids[i % len(patient_ids)],
                upstream_id=i + 1,
                kit_id=f"{POLL_KIT_PREFIX}{i + 1:07d}",
                state="registered",
                submission_status="accepted",
                submit_attempts=1,
                registered_at=now,
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    Result.objects.bulk_create(
        [
            Result(
                registration_id=registration.pk,
                upstream_id=registration.upstream_id,
                state="awaiting_sample",
                status=Status.PENDING,
                next_poll_at=now + FAR_FUTURE,
            )
            for registration in registrations
        ],
        batch_size=2000,
    )


def _reset_poll_rows(*, due: int) -> None:
    """Back to "pending, never polled"; the first `due` of them due now."""
    now = timezone.now()
    rows = Result.objects.filter(upstream_id__lt=UPSTREAM_BASE)
    ids = list(rows.values_list("id", flat=True))
    Notification.objects.filter(result_id__in=ids).delete()
    StateChange.objects.filter(content_type=ContentType.objects.get_for_model(Result), object_id__in=ids).delete()
    fields = {
        "state": "awaiting_sample",
        "status": Status.PENDING,
        "ready_at": None,
        "last_polled_at": None,
        "poll_count": 0,
        "claimed_until": None,
        "last_error_class": "",
        "last_error": "",
        "raw_payload": {},
    }
    rows.filter(upstream_id__lte=due).update(next_poll_at=now - timedelta(seconds=1), **fields)
    rows.filter(upstream_id__gt=due).update(next_poll_at=now + FAR_FUTURE, **fields)
    UpstreamCall.objects.all().delete()


def _sessions_opened() -> int | None:
    """Connections opened to this database so far (PostgreSQL 14+), else None."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        # PostgreSQL 15+: count this session's own numbers now; older servers are a little late.
        if connection.pg_version >= 150000:
            cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else None


def _run_once(*, due: int, trace: bool) -> dict:
    """Poll until nothing is due, as beat would call the task again and again."""
    _reset_poll_rows(due=due)
    sessions_before = _sessions_opened()
    totals = {"claimed": 0, "polled": 0, "failed": 0, "became_ready": 0}
    calls = 0
    if trace:
        tracemalloc.start()
    try:
        with RssSampler() as rss:
            started = time.perf_counter()
            cpu_started, main_started = time.process_time(), time.thread_time()
            while True:
                calls += 1
                out = results_poll_task.run()
                for key in totals:
                    totals[key] += out.get(key, 0)
                if (
                    out.get("claimed", 0) == 0
                    or not Result.objects.filter(
                        upstream_id__lte=due, next_poll_at__lte=timezone.now(), claimed_until__isnull=True
                    ).exists()
                ):
                    break
            seconds = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            main_cpu = time.thread_time() - main_started
        traced_peak = tracemalloc.get_traced_memory()[1] if trace else None
    finally:
        if trace:
            tracemalloc.stop()
    sessions_after = _sessions_opened()
    statuses = dict(Result.objects.filter(upstream_id__lte=due).values_list("status").annotate(n=Count("id")))
    return {
        "due": due,
        "seconds": round(seconds, 2),
        "results_per_s": round(totals["polled"] / seconds, 1) if seconds else None,
        "task_runs": calls,
        # CPU per polled result: the whole process (poller, its HTTP threads, and the
        # in-process sandbox), and the main thread alone (claims and applying states).
        # Less sensitive than wall time to other work on the machine.
        "cpu_ms_per_result": round(cpu * 1000 / max(1, totals["polled"]), 2),
        "main_thread_cpu_ms_per_result": round(main_cpu * 1000 / max(1, totals["polled"]), 2),
        **totals,
        "statuses_after": statuses,
        "rss_peak_delta_mb": mb(rss.peak_delta),
        "tracemalloc_peak_mb": mb(traced_peak),
        "db_sessions_opened": (
            sessions_after - sessions_before if sessions_before is not None and sessions_after is not None else None
        ),
    }


class _SandboxInProcess:
    """The sandbox on a thread of this process (it shares this process's GIL)."""

    description = "in-process SandboxServer"

    def __init__(self, *, now: float) -> None:
        options = SandboxOptions(
            host="127.0.0.1", port=0, db_path=":memory:", latency_ms=LATENCY_MS, quiet=True, seed=1
        )
        self.options = options
        self.server = SandboxServer(options, clock=lambda: now)
        self.store = self.server.store

    def start(self) -> None:
        self.server.start()

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def stats(self) -> dict:
        return self.server.stats()

    def stop(self) -> None:
        self.server.stop()


class _SandboxProcess:
    """The sandbox in a process of its own, as the real partner would be: its CPU and
    GIL are not the poller's. Its store is filled here, before it starts."""

    description = "SandboxServer in its own process"

    def __init__(self, *, now: float) -> None:
        self.now = now
        self.options = SandboxOptions()
        self._dir = tempfile.TemporaryDirectory(prefix="portal-bench-sandbox-")
        self.db = str(Path(self._dir.name) / "sandbox.sqlite3")
        self.store = Store(self.db)
        self.process: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> None:
        self.store.close()
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            [sys.executable, "-m", "portal.bench.sandbox_process", "--db", self.db,
             "--latency-ms", str(LATENCY_MS), "--now", repr(self.now)],
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        self.port = int(self.process.stdout.readline())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict:
        return requests.get(f"{self.base_url}/__sandbox/stats", timeout=5).json()

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process.stdout.close()
        self._dir.cleanup()


def run_polling(
    *, due: int, log: Callable[[str], None], trace_memory: bool = False, sandbox_process: bool = False
) -> dict:
    """Throughput at `due` and `due // 10` due results, and peak memory at both: the
    RSS high-water mark above the start of each run, and with `trace_memory` two more
    runs under tracemalloc (which slows Python down about twice: not for throughput)."""
    small = max(1, due // 10)
    concurrency = settings.EVERLYWELL_CONCURRENCY
    latency = LATENCY_MS / 1000
    fixed_now = time.time()
    sandbox = (_SandboxProcess if sandbox_process else _SandboxInProcess)(now=fixed_now)
    options = sandbox.options
    report: dict = {
        "sandbox": f"{sandbox.description}, {LATENCY_MS} ms latency per call",
        "concurrency": concurrency,
        "batch_size": settings.POLL_BATCH_SIZE,
        "latency_ms": LATENCY_MS,
        "limit_per_s": round(concurrency / latency, 1),
        "cache": settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1],
    }
    try:
        sandbox_order = sandbox.store.create_order(amount="49.00", now=fixed_now)
        for i in range(due):
            sandbox_id = i + 1
            elapsed = _elapsed_for(sandbox_id, (sandbox_id * 0.6180339887) % 1.0)
            made = sandbox.store.create_registration(
                invoice_id=sandbox_order["id"],
                email=f"bench-poll-{sandbox_id}@example.com",
                kit_id=f"{POLL_KIT_PREFIX}{sandbox_id:07d}",
                now=fixed_now - elapsed,
            )
            if made["id"] != sandbox_id:
                raise RuntimeError("the sandbox numbered its records unexpectedly")
        sandbox.start()
        poll_rows_delete()
        _insert_poll_rows(sandbox_order_id=sandbox_order["id"], count=due)
        # The generated data's own pending results must not be due while this runs.
        pushed = (
            Result.objects.not_final()
            .filter(upstream_id__gte=UPSTREAM_BASE, next_poll_at__lt=timezone.now() + timedelta(hours=2))
            .update(next_poll_at=timezone.now() + timedelta(days=1))
        )
        if pushed:
            log(f"  (moved the next poll of {pushed:,} generated pending results a day ahead)")
        base = sandbox.base_url
        with override_settings(
            EVERLYWELL_API_URL=f"{base}/aapi",
            EVERLYWELL_AUTH_URL=f"{base}/api",
            EVERLYWELL_CLIENT_ID=options.client_id,
            EVERLYWELL_CLIENT_SECRET=options.client_secret,
        ):
            reset_client()
            cache.delete(TOKEN_KEY)
            runs = {}
            for name, size, trace in (
                ("small", small, False),
                ("large", due, False),
                *((("small_traced", small, True), ("large_traced", due, True)) if trace_memory else ()),
            ):
                log(f"  polling {size:,} due results{' (tracemalloc on)' if trace else ''} ...")
                runs[name] = _run_once(due=size, trace=trace)
                log(
                    f"    {runs[name]['polled']:,} polled in {runs[name]['seconds']} s: "
                    f"{runs[name]['results_per_s']} results/s"
                )
            reset_client()
        stats = sandbox.stats()
    finally:
        reset_client()
        sandbox.stop()
        poll_rows_delete()
        UpstreamCall.objects.all().delete()
    large, small_run = runs["large"], runs["small"]
    growth = (large["rss_peak_delta_mb"] or 0) - (small_run["rss_peak_delta_mb"] or 0)
    report.update(
        {
            "due": due,
            "results_per_s": large["results_per_s"],
            "ratio": round(large["results_per_s"] / report["limit_per_s"], 2) if large["results_per_s"] else None,
            "token_requests": stats["token_requests"],
            "requests": stats["requests"],
            "memory_small_mb": small_run["rss_peak_delta_mb"],
            "memory_large_mb": large["rss_peak_delta_mb"],
            # Flat: ten times the due results cost at most a few MB more (one batch is held at a time).
            "memory_flat": growth <= FLAT_MEMORY_MB,
            "runs": runs,
        }
    )
    return report
