"""The call log admins read to answer "why did this fail": one row per call,
ids and codes only, never able to break the call it describes."""

from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.upstream import calllog
from portal.upstream.errors import UpstreamNotFound
from portal.upstream.models import UpstreamCall
from tests.upstream.conftest import API, a_registration, an_order

pytestmark = pytest.mark.django_db


def test_each_call_writes_one_row_with_ids_codes_and_timings(upstream, mocked, token):
    mocked.post(f"{API}/v1/kits/41/registration", status=201, json={"id": 7, "state": "registred", "kit_id": "k"})
    mocked.get(f"{API}/v1/results/8", status=404, json={"error": "result 8 not found"})

    upstream.register_kit(41, a_registration())
    with pytest.raises(UpstreamNotFound):
        upstream.get_result(8)

    rows = list(UpstreamCall.objects.order_by("id").values())
    assert [(r["operation"], r["method"], r["path"], r["object_id"], r["status_code"], r["outcome"]) for r in rows] == [
        ("issue_token", "GET", "/v1/token", "", 200, "ok"),
        ("register_kit", "POST", "/v1/kits/{invoice_id}/registration", "41", 201, "ok"),
        ("get_result", "GET", "/v1/results/{result_id}", "8", 404, "UpstreamNotFound"),
    ]
    assert all(r["attempts"] == 1 and r["latency_ms"] >= 0 for r in rows)
    assert rows[2]["error"] == "the partner does not know this id (get_result, HTTP 404)"


def test_a_created_record_is_logged_with_the_partner_id(upstream, mocked, token):
    mocked.post(f"{API}/v2/orders/", status=201, json={"id": 99, "amount": 5.00})

    upstream.create_order(an_order("5.00"))

    assert UpstreamCall.objects.get(operation="create_order").object_id == "99"


def test_retries_are_counted_in_attempts(upstream, mocked, token):
    mocked.get(f"{API}/v1/results/8", status=503)
    mocked.get(f"{API}/v1/results/8", json={"id": 8, "state": "ready"})

    upstream.get_result(8)

    assert UpstreamCall.objects.get(operation="get_result").attempts == 2


def test_a_failing_call_log_never_breaks_the_call(upstream, mocked, token, monkeypatch):
    def broken(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(UpstreamCall.objects, "create", broken)
    mocked.get(f"{API}/v1/results/8", json={"id": 8, "state": "ready"})

    assert upstream.get_result(8).state == "ready"


def test_a_failing_call_log_leaves_the_callers_transaction_usable(upstream, mocked, token, monkeypatch):
    mocked.get(f"{API}/v1/results/8", json={"id": 8, "state": "ready"})
    original = UpstreamCall.objects.create

    def fails_in_the_database(**fields):
        original(**{**fields, "latency_ms": -1})  # violates the unsigned check: a real DB error

    monkeypatch.setattr(UpstreamCall.objects, "create", fails_in_the_database)

    with transaction.atomic():
        assert upstream.get_result(8).state == "ready"
        with connection.cursor() as cursor:  # would raise if the transaction were broken
            cursor.execute("SELECT 1")
        assert UpstreamCall.objects.count() == 0  # both inserts failed, in their savepoints


def test_the_admin_is_read_only_with_filters(admin_user):
    model_admin = admin.site._registry[UpstreamCall]
    request = RequestFactory().get("/")
    request.user = admin_user

    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert model_admin.has_view_permission(request)
    assert "outcome" in model_admin.list_filter
    # By date through a fixed-choice filter (eb723bb dropped date_hierarchy: a DISTINCT over every row).
    assert ("created_at", admin.DateFieldListFilter) in model_admin.list_filter


def test_admins_can_read_the_call_log_pages(admin_client_):
    call = UpstreamCall.objects.create(
        operation="get_result", method="GET", path="/v1/results/{result_id}", object_id="8",
        status_code=503, outcome="UpstreamUnavailable", latency_ms=12, attempts=4, error="the partner is unavailable",
    )  # fmt: skip

    changelist = admin_client_.get(reverse("admin:upstream_upstreamcall_changelist") + "?outcome=UpstreamUnavailable")
    detail = admin_client_.get(reverse("admin:upstream_upstreamcall_change", args=[call.pk]))

    assert changelist.status_code == 200
    assert b"get_result" in changelist.content
    assert detail.status_code == 200
    assert admin_client_.get(reverse("admin:upstream_upstreamcall_add")).status_code == 403


def test_clinic_staff_cannot_read_the_call_log(staff_user):
    assert not staff_user.has_perm("upstream.view_upstreamcall")


def test_old_rows_can_be_pruned():
    old = UpstreamCall.objects.create(
        operation="get_result", method="GET", path="/p", outcome="ok", latency_ms=1, attempts=1,
        created_at=timezone.now() - timedelta(days=40),
    )  # fmt: skip
    recent = UpstreamCall.objects.create(
        operation="get_result", method="GET", path="/p", outcome="ok", latency_ms=1, attempts=1
    )

    call_command("upstream_prune_calls", "--days", "30")

    assert list(UpstreamCall.objects.values_list("pk", flat=True)) == [recent.pk]
    assert old.pk != recent.pk


def test_buffered_calls_are_inserted_together_when_the_block_ends(upstream, mocked, token):
    mocked.get(f"{API}/v1/results/8", json={"id": 8, "state": "ready"})
    mocked.get(f"{API}/v1/results/9", status=404, json={"error": "result 9 not found"})

    with CaptureQueriesContext(connection) as queries, calllog.buffered():
        upstream.get_result(8)
        with pytest.raises(UpstreamNotFound):
            upstream.get_result(9)
        assert UpstreamCall.objects.count() == 0

    rows = UpstreamCall.objects.order_by("id").values_list("operation", "object_id", "outcome")
    assert list(rows) == [("issue_token", "", "ok"), ("get_result", "8", "ok"), ("get_result", "9", "UpstreamNotFound")]
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "upstream_upstreamcall"')]
    assert len(inserts) == 1


def test_buffered_calls_made_in_threads_are_collected_and_written_even_if_the_block_fails(upstream, mocked, token):
    mocked.get(f"{API}/v1/results/8", json={"id": 8, "state": "ready"})

    with pytest.raises(RuntimeError), calllog.buffered():
        with ThreadPoolExecutor(max_workers=2) as pool:
            for _ in range(4):
                pool.submit(contextvars.copy_context().run, upstream.get_result, 8).result()
        raise RuntimeError("the poll broke after its calls")

    assert UpstreamCall.objects.filter(operation="get_result", object_id="8").count() == 4


def test_a_failing_buffered_insert_is_logged_by_class_and_never_raises(upstream, mocked, token, monkeypatch, caplog):
    mocked.get(f"{API}/v1/results/8", json={"id": 8, "state": "ready"})

    def broken(*args, **kwargs):
        raise DatabaseError("disk full at /var/lib/postgresql")

    monkeypatch.setattr(UpstreamCall.objects, "bulk_create", broken)

    with calllog.buffered():
        assert upstream.get_result(8).state == "ready"

    assert "could not record 2 calls in the call log (DatabaseError)" in caplog.text
    assert "disk full" not in caplog.text


def test_the_call_log_filters_offer_fixed_choices_without_reading_the_log(admin_client_):
    import re
    from pathlib import Path

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from portal.upstream import client
    from portal.upstream.models import OPERATIONS

    # Every operation the client logs can be picked in the filter.
    assert set(re.findall(r'tracked\("(\w+)"', Path(client.__file__).read_text())) == set(OPERATIONS)

    ok = UpstreamCall.objects.create(
        operation="get_result", method="GET", path="/r", status_code=200, outcome="ok", latency_ms=5, attempts=1
    )
    down = UpstreamCall.objects.create(
        operation="get_result", method="GET", path="/r", outcome="UpstreamUnavailable", latency_ms=5, attempts=3
    )
    UpstreamCall.objects.create(
        operation="create_order", method="POST", path="/o", status_code=503, outcome="UpstreamUnavailable",
        latency_ms=5, attempts=1,
    )  # fmt: skip
    url = reverse("admin:upstream_upstreamcall_changelist")
    with CaptureQueriesContext(connection) as queries:
        page = admin_client_.get(url)
    assert not any("DISTINCT" in q["sql"] for q in queries.captured_queries)
    assert "register_kit" in page.content.decode()  # offered before any such call was made

    def listed(**params):
        return {c.pk for c in admin_client_.get(url, params).context["cl"].result_list}

    assert listed(operation="get_result", status_class="2") == {ok.pk}
    assert listed(status_class="none") == {down.pk}
    assert len(listed(status_class="5")) == 1
