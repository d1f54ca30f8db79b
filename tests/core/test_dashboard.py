import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from portal.core.selectors import dashboard_attention, dashboard_counts
from portal.core.states import Status, Submission
from portal.notifications.models import Notification
from portal.results.models import Result
from tests.factories import NotificationFactory, OrderFactory, PatientFactory, RegistrationFactory, ResultFactory

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("dashboard")


@pytest.fixture
def clinic(settings):
    """A small fixed data set: one of each kind of problem, and some healthy records."""
    settings.RESULT_OVERDUE_AFTER = 10
    now = timezone.now()
    order = OrderFactory()  # accepted, in progress
    failed_order = OrderFactory(
        upstream_id=None,
        state="",
        status=Status.PENDING,
        submission_status=Submission.FAILED,
        last_error="The lab could not be reached.",
    )
    review_order = OrderFactory(
        upstream_id=None, state="", status=Status.PENDING, submission_status=Submission.NEEDS_REVIEW
    )
    unknown_order = OrderFactory(state="teleported", status=Status.UNKNOWN)
    patient = PatientFactory(first_name="Ada", last_name="Lovelace")

    def kit(**kwargs):
        return RegistrationFactory(order=order, patient=patient, **kwargs)

    rejected_kit = kit(upstream_id=None, kit_id=None, submission_status=Submission.REJECTED, state="")
    ready_recent = ResultFactory(registration=kit(), status=Status.READY, state="ready", ready_at=now)
    ready_old = ResultFactory(
        registration=kit(), status=Status.READY, state="ready", ready_at=now - dt.timedelta(days=9)
    )
    overdue = ResultFactory(registration=kit(registered_at=now - dt.timedelta(days=20)))
    unknown_result = ResultFactory(registration=kit(), state="on_the_moon", status=Status.UNKNOWN)
    on_time = ResultFactory(registration=kit())
    failed_email = NotificationFactory(
        result=ready_old, status=Notification.Status.FAILED, attempts=5, last_error="SMTPException: refused"
    )
    NotificationFactory(result=ready_recent, status=Notification.Status.SENT)
    return {
        "order": order,
        "failed_order": failed_order,
        "review_order": review_order,
        "unknown_order": unknown_order,
        "rejected_kit": rejected_kit,
        "ready_recent": ready_recent,
        "ready_old": ready_old,
        "overdue": overdue,
        "unknown_result": unknown_result,
        "on_time": on_time,
        "failed_email": failed_email,
    }


def as_dict(rows):
    return {row.value: row.count for row in rows}


def test_anonymous_user_is_sent_to_login(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_user_without_staff_role_gets_403(client, no_role_user):
    client.force_login(no_role_user)
    assert client.get(DASHBOARD).status_code == 403


def test_counts_by_status(clinic):
    counts = dashboard_counts()
    assert as_dict(counts["orders"]) == {
        "pending": 2,
        "in_progress": 1,
        "completed": 0,
        "failed": 0,
        "unknown": 1,
    }  # no "ready": an order never is
    registrations = as_dict(counts["registrations"])
    assert registrations["accepted"] == 5 and registrations["rejected"] == 1
    assert sum(registrations.values()) == 6
    assert as_dict(counts["results"]) == {
        "pending": 2,
        "in_progress": 0,
        "ready": 2,
        "failed": 0,
        "unknown": 1,
    }  # no "completed": a result is "ready"


def test_attention_lists_every_kind_of_problem_once(clinic):
    items, more = dashboard_attention(limit=20)
    found = {(item.url_name, item.pk): item.reason for item in items}
    assert found == {
        ("orders:detail", clinic["failed_order"].pk): "Submission failed - retry",
        ("orders:detail", clinic["review_order"].pk): "Needs review - may exist upstream",
        ("orders:detail", clinic["unknown_order"].pk): "Unknown lab state “teleported”",
        ("kits:detail", clinic["rejected_kit"].pk): "Rejected by the lab",
        ("results:detail", clinic["overdue"].pk): "Overdue",
        ("results:detail", clinic["unknown_result"].pk): "Unknown lab state “on_the_moon”",
        ("results:detail", clinic["ready_old"].pk): "Email to the patient failed",
    }
    assert more is False
    assert [item.when for item in items] == sorted((item.when for item in items), reverse=True)


def test_attention_is_bounded_and_says_there_is_more(clinic):
    items, more = dashboard_attention(limit=3)
    assert len(items) == 3 and more is True


def test_dashboard_page_shows_counts_recent_results_and_attention(staff_client, clinic):
    response = staff_client.get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>Dashboard" in html
    # recently ready: the result of today, not the one of 9 days ago
    assert list(response.context["recently_ready"]) == [clinic["ready_recent"]]
    assert clinic["ready_recent"].registration.kit_id in html
    # every attention item links to its page (or is shown without a link until that page exists)
    assert reverse("results:detail", args=[clinic["overdue"].pk]) in html
    assert "Unknown lab state “on_the_moon”" in html
    assert "SMTPException: refused" in html
    assert "Email to the patient failed" in html
    assert f'href="{reverse("results:list")}?status=ready">2</a>' in html
    assert "Nothing needs attention" not in html
    for name, obj in (("orders:detail", clinic["failed_order"]), ("kits:detail", clinic["rejected_kit"])):
        try:
            url = reverse(name, args=[obj.pk])
        except NoReverseMatch:  # that app's pages are not installed: the item is shown without a link
            url = None
        assert (f'<a href="{url}">{obj}' if url else str(obj)) in html


def test_dashboard_empty_state(staff_client):
    response = staff_client.get(DASHBOARD)
    html = response.content.decode()
    assert "Nothing needs attention" in html
    assert "No result became ready in the last 7 days" in html


def test_dashboard_runs_a_constant_number_of_queries(staff_client, clinic):
    staff_client.get(DASHBOARD)
    with CaptureQueriesContext(connection) as small:
        staff_client.get(DASHBOARD)
    # many more of every kind of record
    for _ in range(15):
        OrderFactory(upstream_id=None, state="", status=Status.PENDING, submission_status=Submission.FAILED)
        result = ResultFactory(status=Status.UNKNOWN, state="odd")
        NotificationFactory(result=result, status=Notification.Status.FAILED)
        RegistrationFactory(upstream_id=None, kit_id=None, submission_status=Submission.NEEDS_REVIEW)
        ResultFactory(status=Status.READY, state="ready", ready_at=timezone.now())
    with CaptureQueriesContext(connection) as big:
        staff_client.get(DASHBOARD)
    assert len(big) == len(small)
    assert Result.objects.count() > 30
