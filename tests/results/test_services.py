import datetime as dt
import threading

import pytest
from django.db import connection, connections
from django.db.backends.signals import connection_created
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.core.states import Status
from portal.notifications.models import Notification
from portal.results.models import Result
from portal.results.services import (
    _fetch_in_thread,
    next_poll_delay,
    result_apply_state,
    result_refresh,
    results_claim_due,
    results_poll_due,
)
from portal.upstream.errors import UpstreamNotFound
from portal.upstream.models import UpstreamCall
from tests.factories import ResultFactory

pytestmark = pytest.mark.django_db


def test_ready_creates_exactly_one_notification_even_if_seen_twice(django_capture_on_commit_callbacks):
    result = ResultFactory()
    with django_capture_on_commit_callbacks() as callbacks:
        result_apply_state(result_id=result.pk, state="ready", raw={"id": 1, "state": "ready"})
        result_apply_state(result_id=result.pk, state="ready", raw={"id": 1, "state": "ready"})
    result.refresh_from_db()
    assert result.status == Status.READY and result.ready_at is not None
    assert result.next_poll_at is None
    assert Notification.objects.filter(result=result).count() == 1
    assert len(callbacks) == 1  # one send task enqueued, after commit


def test_a_ready_result_never_goes_back_to_pending():
    result = ResultFactory()
    result_apply_state(result_id=result.pk, state="ready", raw={})
    result_apply_state(result_id=result.pk, state="processing", raw={})
    result.refresh_from_db()
    assert result.status == Status.READY and result.state == "ready"


def test_unknown_state_is_stored_and_polled_again():
    result = ResultFactory()
    result_apply_state(result_id=result.pk, state="quality_review", raw={})
    result.refresh_from_db()
    assert (result.state, result.status) == ("quality_review", Status.UNKNOWN)
    assert result.next_poll_at is not None


def test_backoff_is_frequent_first_then_slower_and_capped(settings):
    settings.RESULT_POLL_INTERVAL = 300
    settings.RESULT_POLL_MAX_INTERVAL = 3600
    now = timezone.now()
    first = next_poll_delay(poll_count=1, registered_at=now, now=now).total_seconds()
    later = next_poll_delay(poll_count=30, registered_at=now, now=now).total_seconds()
    much_later = next_poll_delay(poll_count=500, registered_at=now, now=now).total_seconds()
    assert 270 <= first <= 330
    assert later > first * 1.5
    assert much_later <= 3600 * 1.1
    overdue = next_poll_delay(poll_count=1, registered_at=now - dt.timedelta(days=30), now=now).total_seconds()
    assert overdue >= 3600 * 0.9


def test_claim_takes_due_rows_once_until_the_lease_ends(settings):
    settings.POLL_CLAIM_SECONDS = 60
    due = [ResultFactory() for _ in range(3)]
    ResultFactory(next_poll_at=timezone.now() + dt.timedelta(hours=1))
    ResultFactory(status=Status.READY, state="ready", ready_at=timezone.now())
    first = results_claim_due(limit=10)
    assert sorted(first) == sorted(r.pk for r in due)
    assert results_claim_due(limit=10) == []  # another poller finds nothing to take
    later = timezone.now() + dt.timedelta(seconds=61)
    assert sorted(results_claim_due(limit=10, now=later)) == sorted(first)  # lease ended: taken over


def test_claim_respects_the_batch_size():
    for _ in range(5):
        ResultFactory()
    assert len(results_claim_due(limit=2)) == 2


def test_poll_cycle_moves_due_results_and_counts(partner):
    results = [ResultFactory() for _ in range(4)]
    partner.get_result_any(state="ready")
    report = results_poll_due(limit=10)
    assert (report.claimed, report.polled, report.failed, report.became_ready) == (4, 4, 0, 4)
    assert all(r.status == Status.READY for r in Result.objects.all())
    assert Notification.objects.count() == len(results)
    assert results_poll_due(limit=10).claimed == 0


def test_poll_errors_are_kept_and_retried_later(partner):
    result = ResultFactory()
    partner.get_result(result.upstream_id, status=404, json={"error": "not found"})
    report = results_poll_due(limit=10)
    assert report.failed == 1
    result.refresh_from_db()
    assert result.last_error_class == "UpstreamNotFound"
    assert result.next_poll_at > timezone.now()
    assert result.claimed_until is None


def test_malformed_body_is_an_error_not_a_crash(partner):
    result = ResultFactory()
    partner.get_result(result.upstream_id, body='{"id": 1, "state": "ready",}', content_type="application/json")
    report = results_poll_due(limit=10)
    assert report.errors == {"UpstreamProtocolError": 1}


def test_refresh_raises_for_staff_and_records_the_error(partner, staff_user):
    result = ResultFactory()
    partner.get_result(result.upstream_id, status=404, json={})
    with pytest.raises(UpstreamNotFound):
        result_refresh(result_id=result.pk, actor=staff_user)
    result.refresh_from_db()
    assert result.last_error_class == "UpstreamNotFound"


def test_a_threaded_poll_cycle_logs_every_call_in_one_insert_and_its_threads_open_no_connection(partner):
    results = [ResultFactory() for _ in range(12)]
    partner.get_result_any(state="processing")
    opened_in = []

    def on_connect(sender, connection, **kwargs):
        opened_in.append(threading.current_thread().name)

    connection_created.connect(on_connect)
    try:
        with CaptureQueriesContext(connection) as queries:
            report = results_poll_due(limit=20, concurrency=4)
    finally:
        connection_created.disconnect(on_connect)

    assert report.polled == 12
    assert [name for name in opened_in if name != threading.main_thread().name] == []
    calls = UpstreamCall.objects.filter(operation="get_result")
    assert sorted(calls.values_list("object_id", flat=True)) == sorted(str(r.upstream_id) for r in results)
    assert UpstreamCall.objects.filter(operation="issue_token").count() == 1
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('INSERT INTO "upstream_upstreamcall"')]
    assert len(inserts) == 1


def test_the_call_log_of_a_batch_that_fails_half_way_is_still_written(partner, monkeypatch):
    for _ in range(3):
        ResultFactory()
    partner.get_result_any(state="processing")
    applied = []

    def apply_then_fail(**kwargs):
        applied.append(kwargs["result_id"])
        if len(applied) == 2:
            raise RuntimeError("a bug while storing the second result")
        return result_apply_state(**kwargs)

    monkeypatch.setattr("portal.results.services.result_apply_state", apply_then_fail)

    with pytest.raises(RuntimeError):
        results_poll_due(limit=10, concurrency=1)

    assert UpstreamCall.objects.filter(operation="get_result").count() == 2


@pytest.mark.parametrize("queries", [True, False])
def test_a_pool_task_closes_the_connections_its_thread_opened_and_only_then(db, monkeypatch, queries):
    # SQLite's in-memory test database ignores close(): watch the call instead.
    closed_in = []
    monkeypatch.setattr(connections, "close_all", lambda: closed_in.append(threading.current_thread().name))

    class Client:
        def get_result(self, upstream_id):
            if queries:
                connections["default"].ensure_connection()
            return "answer"

    answers = []
    thread = threading.Thread(target=lambda: answers.append(_fetch_in_thread(Client(), 1)), name="poll_0")
    thread.start()
    thread.join(10)

    assert answers == [("answer", None)]
    assert closed_in == (["poll_0"] if queries else [])


def test_a_poll_that_changes_nothing_is_one_update_of_the_bookkeeping(django_assert_num_queries):
    result = ResultFactory(state="processing", status=Status.IN_PROGRESS, last_error_class="UpstreamUnavailable")
    before = Result.objects.get(pk=result.pk)
    # savepoint, the row locked, one UPDATE, release (no audit read of the old row)
    with django_assert_num_queries(4):
        result_apply_state(result_id=result.pk, state="processing", raw={"id": 1, "state": "processing"})
    after = Result.objects.get(pk=result.pk)
    assert (after.state, after.status, after.poll_count) == ("processing", Status.IN_PROGRESS, 1)
    assert after.raw_payload == {"id": 1, "state": "processing"} and after.last_error_class == ""
    assert after.next_poll_at > timezone.now() and after.updated_at > before.updated_at
