"""Staff pages and admin changelists through the full Django stack.

Requests go through `django.test.Client` (every middleware, sessions in the
database, templates rendered, DEBUG off), as a clinic staff member and as an admin,
both signed in with a verified second factor. Each page is requested twice to warm
up, then `repeat` times for the latency samples, then once more with the SQL queries
captured (capturing costs a little, so it is kept out of the timings).

A page whose URL name does not resolve yet, or which answers with something else
than expected (a 403 for a missing permission, a redirect), is reported as not
available with the reason, and the run goes on.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as day_start
from urllib.parse import urlencode

from django.db import connection
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from portal.bench.data import SEARCH_LAST_NAME, UPSTREAM_BASE
from portal.bench.report import latency_summary, mb
from portal.kits.models import KitRegistration
from portal.results.models import Result

PAGE_SIZE = 50
DEEP_PAGE = 2000
EXPORT_ROWS = 10_000


@dataclass
class Page:
    key: str
    label: str
    url_name: str
    query: dict = field(default_factory=dict)
    who: str = "staff"  # or "admin"
    expect: int = 200
    note: str = ""


def signed_in_client(user) -> Client:
    """A test client signed in as `user` with a verified TOTP device in the session,
    as after the real two-step sign-in."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="Bench authenticator", confirmed=True
    )
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def _url(page: Page) -> str:
    url = reverse(page.url_name)
    return f"{url}?{urlencode(page.query)}" if page.query else url


def _request(client: Client, url: str) -> tuple[float, int, int, str, float]:
    """One GET, body read to the end: (seconds, status, bytes or lines, Location, CPU seconds)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.get(url, secure=True)
    size = 0
    lines = 0
    if response.streaming:
        for chunk in response.streaming_content:
            size += len(chunk)
            lines += chunk.count(b"\n")
    else:
        size = len(response.content)
    response.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return seconds, response.status_code, lines if response.streaming else size, response.get("Location", ""), cpu


MIN_SAMPLES = 5


def measure(client: Client, page: Page, repeat: int, *, warmup: int = 2, budget: float | None = None) -> dict:
    """`repeat` timed requests, or fewer (at least MIN_SAMPLES) once `budget` seconds
    are spent on this page: a page taking seconds at a million rows needs no 30 samples
    to show it misses a 100 ms goal."""
    out: dict = {"key": page.key, "label": page.label, "url_name": page.url_name, "who": page.who}
    if page.note:
        out["note"] = page.note
    try:
        url = _url(page)
    except NoReverseMatch:
        return {**out, "available": False, "reason": f"URL name {page.url_name!r} does not resolve yet"}
    out["url"] = url
    try:
        for _ in range(warmup):
            _, status, _, location, _ = _request(client, url)
            if status != page.expect:
                where = f" to {location}" if location else ""
                return {**out, "available": False, "reason": f"HTTP {status}{where} (expected {page.expect})"}
        timings = []
        started = time.perf_counter()
        for _ in range(repeat):
            timings.append(_request(client, url))
            if budget and len(timings) >= MIN_SAMPLES and time.perf_counter() - started > budget:
                out["note"] = (out.get("note", "") + f"; {len(timings)} samples (time budget)").lstrip("; ")
                break
        samples = [t[0] for t in timings]
        cpu_ms = statistics.median(t[4] for t in timings) * 1000
        # The steady count: the median of three (a cache the page fills now and then,
        # like the navigation's badges, adds queries to one request in many).
        counts = []
        for _ in range(3):
            with CaptureQueriesContext(connection) as captured:
                _, _, amount, _, _ = _request(client, url)
            counts.append(len(captured.captured_queries))
        queries = sorted(counts)[1]
    except Exception as exc:  # a page being written right now may fail: report it, keep going
        return {**out, "available": False, "reason": f"error: {type(exc).__name__}: {str(exc)[:200]}"}
    summary = latency_summary(samples)
    # This process's CPU per request (Python: middleware, ORM, templates); the rest of
    # the latency is the database's work and waiting for it (or for a busy machine).
    summary["cpu_median_ms"] = round(cpu_ms, 1)
    return {**out, "available": True, **summary, "queries": queries, "bytes": amount}


def measure_export(client: Client, page: Page, repeat: int, *, budget: float | None = None) -> dict:
    """The CSV export: latency, rows per second, and the peak of Python memory
    while one export is streamed (tracemalloc, in a run of its own)."""
    out = measure(client, page, repeat, warmup=1, budget=budget)
    if not out.get("available"):
        return out
    rows = out.pop("bytes") - 1  # lines minus the header
    out["rows"] = rows
    out["rows_per_s"] = round(rows / (out["median_ms"] / 1000)) if out["median_ms"] else None
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        _request(client, out["url"])
        out["tracemalloc_peak_mb"] = mb(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()
    return out


# --- What to request ---------------------------------------------------------------


def _start_of_day(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, day_start.min))


def ready_windows() -> tuple[tuple[str, str, int], tuple[str, str, int]]:
    """Two "ready from .. to" filters of whole days (the filter's unit), ending
    yesterday: one day (the small export), and the days closest to EXPORT_ROWS
    results (the export measured). Each as (from, to, exact count)."""
    yesterday = timezone.localdate() - timedelta(days=1)
    per_day = dict(
        Result.objects.filter(status="ready", ready_at__lt=_start_of_day(yesterday + timedelta(days=1)))
        .annotate(day=TruncDate("ready_at"))
        .values("day")
        .annotate(n=Count("id"))
        .values_list("day", "n")
    )
    day, total, best = yesterday, 0, None
    oldest = min(per_day, default=yesterday)
    while day >= oldest:
        total += per_day.get(day, 0)
        if best is None or abs(total - EXPORT_ROWS) <= abs(best[1] - EXPORT_ROWS):
            best = (day, total)
        if total >= EXPORT_ROWS:
            break
        day -= timedelta(days=1)
    best = best or (yesterday, 0)
    one_day = (yesterday.isoformat(), yesterday.isoformat(), per_day.get(yesterday, 0))
    return one_day, (best[0].isoformat(), yesterday.isoformat(), best[1])


def sample_kit_id() -> str:
    """The kit id of a result in the middle of the data, as staff would type it."""
    total = KitRegistration.objects.filter(upstream_id__gte=UPSTREAM_BASE).count()
    kit = (
        KitRegistration.objects.filter(upstream_id__gte=UPSTREAM_BASE + total // 2, kit_id__isnull=False)
        .order_by("upstream_id")
        .values_list("kit_id", flat=True)
        .first()
    )
    return kit or "0000000000"


def staff_pages(*, kit_id: str, rows: int) -> list[Page]:
    pages = rows // PAGE_SIZE + (1 if rows % PAGE_SIZE else 0)
    deep_note = "" if pages >= DEEP_PAGE else f"only {pages:,} pages: the last one is served"
    return [
        Page("results_first", "Results: first page", "results:list"),
        Page("results_status", "Results: filtered (status pending)", "results:list", {"status": "pending"}),
        Page("results_deep", f"Results: page {DEEP_PAGE:,}", "results:list", {"page": DEEP_PAGE}, note=deep_note),
        Page("results_kit", "Results: search by kit id", "results:list", {"q": kit_id}),
        Page("results_name", "Results: search by last name", "results:list", {"q": SEARCH_LAST_NAME}),
        Page("orders_first", "Orders: first page", "orders:list"),
        Page("orders_status", "Orders: filtered (status in progress)", "orders:list", {"status": "in_progress"}),
        Page("kits_first", "Kits: first page", "kits:list"),
        Page("kits_search", "Kits: search by kit id", "kits:list", {"q": kit_id}),
        Page("kits_lookup", "Kits: kit lookup (redirect)", "kits:lookup", {"kit_id": kit_id}, expect=302),
        Page("patients_first", "Patients: first page", "patients:list"),
        Page("patients_name", "Patients: search by last name", "patients:list", {"q": SEARCH_LAST_NAME}),
    ]


def admin_list_per_page(model) -> int:
    from django.contrib import admin

    model_admin = admin.site._registry.get(model)
    return getattr(model_admin, "list_per_page", 100)


def admin_pages(*, kit_id: str, rows: int) -> list[Page]:
    # The admin page holding the same rows as the portal's page 2,000 (it shows
    # `list_per_page` rows a page, 100 by default; pages are numbered from 1).
    per_page = admin_list_per_page(Result)
    first_row = (DEEP_PAGE - 1) * PAGE_SIZE + 1
    page = (first_row - 1) // per_page + 1
    last_page = max(1, -(-rows // per_page))
    note = f"{per_page} a page: page {page:,} shows the portal's page {DEEP_PAGE:,}"
    if page > last_page:
        page, note = last_page, f"only {last_page:,} admin pages: the last one"
    results = "admin:results_result_changelist"
    return [
        Page("admin_results_first", "Admin results: first page", results, who="admin"),
        Page(
            "admin_results_status",
            "Admin results: filtered (status pending)",
            results,
            {"status__exact": "pending"},
            who="admin",
        ),
        Page(
            "admin_results_deep", f"Admin results: row {first_row:,} on", results, {"p": page}, who="admin", note=note
        ),
        Page("admin_results_kit", "Admin results: search by kit id", results, {"q": kit_id}, who="admin"),
        Page(
            "admin_results_name",
            "Admin results: search by last name",
            results,
            {"q": SEARCH_LAST_NAME},
            who="admin",
        ),
        Page("admin_kits_first", "Admin kits: first page", "admin:kits_kitregistration_changelist", who="admin"),
        Page("admin_orders_first", "Admin orders: first page", "admin:orders_order_changelist", who="admin"),
        Page("admin_patients_first", "Admin patients: first page", "admin:patients_patient_changelist", who="admin"),
    ]


# The same list through the portal and through the admin, side by side.
SIDE_BY_SIDE = (
    ("First page", "results_first", "admin_results_first"),
    ("Filtered (status)", "results_status", "admin_results_status"),
    (f"Page {DEEP_PAGE:,}", "results_deep", "admin_results_deep"),
    ("Search by kit id", "results_kit", "admin_results_kit"),
    ("Search by last name", "results_name", "admin_results_name"),
)


def export_pages() -> tuple[list[Page], dict]:
    pages, info = [], {}
    for key, (ready_from, ready_to, count) in zip(("export_small", "export"), ready_windows(), strict=True):
        info[key] = {"ready_from": ready_from, "ready_to": ready_to, "rows": count}
        pages.append(
            Page(
                key,
                f"CSV export: ready results, {count:,} rows",
                "results:export",
                {"status": "ready", "ready_from": ready_from, "ready_to": ready_to},
            )
        )
    return pages, info
