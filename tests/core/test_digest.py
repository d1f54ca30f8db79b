"""The daily staff digest (counts and links, no patient data) and the navigation badges."""

import datetime as dt

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.accounts.roles import CLINIC_STAFF
from portal.core import digest
from portal.core.states import Status, Submission
from portal.core.tasks import staff_digest_task
from portal.notifications.models import Notification
from tests.factories import NotificationFactory, OrderFactory, PatientFactory, RegistrationFactory, ResultFactory

pytestmark = pytest.mark.django_db

# 08:30 in the clinic (America/Chicago, CDT) on June 15, 2026.
NOW = dt.datetime(2026, 6, 15, 13, 30, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clinic(settings):
    """Two results ready in the last day, one ready before; two failed submissions plus
    one needing review; one failed email; one overdue result. Every patient is named."""
    settings.RESULT_OVERDUE_AFTER = 10
    patient = PatientFactory(first_name="Ada", last_name="Lovelace", email="ada.lovelace@example.com")

    def kit(**kwargs):
        return RegistrationFactory(patient=patient, **kwargs)

    ResultFactory(registration=kit(kit_id="KITREADY1"), status=Status.READY, ready_at=NOW - dt.timedelta(hours=2))
    ResultFactory(registration=kit(), status=Status.READY, ready_at=NOW - dt.timedelta(hours=20))
    old = ResultFactory(registration=kit(), status=Status.READY, ready_at=NOW - 3 * DAY)
    NotificationFactory(result=old, status=Notification.Status.FAILED, recipient=patient.email)
    ResultFactory(registration=kit(registered_at=NOW - 12 * DAY))  # overdue
    ResultFactory(registration=kit(registered_at=NOW - 2 * DAY))  # pending, on time
    OrderFactory(upstream_id=None, submission_status=Submission.FAILED)
    kit(upstream_id=None, kit_id=None, submission_status=Submission.REJECTED, last_error="phone is invalid")
    kit(upstream_id=None, kit_id=None, submission_status=Submission.NEEDS_REVIEW)
    return patient


@pytest.fixture
def recipients(settings):
    settings.STAFF_DIGEST_RECIPIENTS = ["lead@clinic.example", "nurse@clinic.example"]
    return settings.STAFF_DIGEST_RECIPIENTS


def test_the_four_counts_in_one_query(clinic):
    with CaptureQueriesContext(connection) as queries:
        counts = digest.staff_alert_counts(since=NOW - DAY, now=NOW)
    assert len(queries.captured_queries) == 1
    assert (counts.ready, counts.failed_submissions, counts.failed_notifications, counts.overdue) == (2, 3, 1, 1)
    assert counts.any


def test_the_digest_has_counts_and_absolute_links_and_no_patient_data(clinic, recipients, settings):
    settings.PORTAL_BASE_URL = "https://portal.clinic.example"
    settings.CLINIC_NAME = "Harbor Clinic"
    assert digest.staff_digest_send(now=NOW) == 2
    assert [m.to for m in mail.outbox] == [["lead@clinic.example"], ["nurse@clinic.example"]]
    message = mail.outbox[0]
    html = message.alternatives[0][0]
    assert message.subject == ("Harbor Clinic lab-kit portal, daily summary: 2 results ready, 1 overdue, 4 to fix")
    for body in (message.body, html):
        assert "Results ready since Jun 14, 08:30 CDT" in body
        assert "Failed submissions (orders and kits to fix or check)" in body
        assert "https://portal.clinic.example/results/?status=ready&amp;ready_from=2026-06-14" in body.replace(
            "&ready", "&amp;ready"
        )
        assert "https://portal.clinic.example/results/?overdue=on" in body
        assert "https://portal.clinic.example/#h-attention" in body
    assert "Failed emails to patients: 1" in message.body
    everything = " ".join([message.subject, message.body, html])
    for phi in ("Ada", "Lovelace", "ada.lovelace", "KITREADY1", "phone is invalid", "1985"):
        assert phi not in everything


def test_the_links_work_for_staff(clinic, staff_client):
    links = digest.staff_alert_links(digest.staff_alert_counts(since=NOW - DAY, now=NOW))
    for url in links.values():
        assert staff_client.get(url).status_code == 200, url


def test_recipients_default_to_the_active_clinic_staff(django_user_model, settings):
    from portal.accounts.services import user_create_in_role

    settings.STAFF_DIGEST_RECIPIENTS = []
    a, _ = user_create_in_role(username="a", role=CLINIC_STAFF, password="a-long-test-password-42")
    user_create_in_role(username="b", role=CLINIC_STAFF, password="a-long-test-password-42")
    gone, _ = user_create_in_role(username="c", role=CLINIC_STAFF, password="a-long-test-password-42")
    django_user_model.objects.filter(pk=a.pk).update(email="a@clinic.example")
    django_user_model.objects.filter(pk=gone.pk).update(email="c@clinic.example", is_active=False)
    django_user_model.objects.create_user(username="outsider", email="x@clinic.example", password="x" * 20)
    assert digest.staff_digest_recipients() == ["a@clinic.example"]  # b has no email


def test_no_recipient_sends_nothing(settings, caplog):
    settings.STAFF_DIGEST_RECIPIENTS = []
    assert digest.staff_digest_send(now=NOW) == 0
    assert mail.outbox == [] and "no recipient" in caplog.text


def test_sent_once_a_day_from_the_configured_hour(clinic, recipients, settings):
    settings.STAFF_DIGEST_HOUR = 9
    assert digest.staff_digest_send_if_due(now=NOW) == 0  # 08:30 in the clinic: not yet
    at_nine = NOW + dt.timedelta(minutes=30)
    assert digest.staff_digest_send_if_due(now=at_nine) == 2
    assert digest.staff_digest_send_if_due(now=at_nine + dt.timedelta(hours=5)) == 0  # once a day
    assert len(mail.outbox) == 2
    assert digest.staff_digest_last_sent_at() == at_nine

    # The next day counts the results ready since the last digest only.
    ResultFactory(status=Status.READY, ready_at=at_nine + dt.timedelta(hours=3))
    mail.outbox.clear()
    assert digest.staff_digest_send_if_due(now=at_nine + DAY) == 2
    assert mail.outbox[0].subject.split(": ")[1].startswith("1 result ready")


def test_a_failed_send_is_tried_again_at_the_next_run(clinic, recipients, monkeypatch):
    def broken(**kwargs):
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(digest, "staff_digest_send", broken)
    with pytest.raises(ConnectionRefusedError):
        digest.staff_digest_send_if_due(now=NOW)
    monkeypatch.undo()
    assert digest.staff_digest_send_if_due(now=NOW + dt.timedelta(hours=1)) == 2


def test_the_task_and_its_beat_entry(clinic, recipients, settings):
    entry = django_settings.CELERY_BEAT_SCHEDULE["staff-digest"]
    assert entry["task"] == staff_digest_task.name == "portal.core.tasks.staff_digest_task"
    settings.STAFF_DIGEST_HOUR = 0
    assert staff_digest_task.apply(throw=True).get() == 2


# --- badges -------------------------------------------------------------------------------


def test_staff_see_the_counts_as_badges_linking_to_the_lists(clinic, staff_client):
    ResultFactory(status=Status.READY, ready_at=timezone.now() - dt.timedelta(hours=1))
    page = staff_client.get(reverse("kits:list")).content.decode()
    assert 'aria-label="To follow up"' in page
    assert f'href="{reverse("results:list")}?overdue=on">Overdue <span class="badge' in page
    assert "results ready since the last daily summary" in page
    assert '>3</span><span class="visually-hidden"> submissions to the lab' in page


def _badge_queries(staff_client) -> int:
    with CaptureQueriesContext(connection) as queries:
        staff_client.get(reverse("kits:list"))
    return sum(1 for q in queries.captured_queries if q["sql"].startswith("SELECT (SELECT COUNT(*)"))


def test_pages_compute_the_badges_only_when_none_are_cached(clinic, staff_client):
    assert _badge_queries(staff_client) == 1
    assert _badge_queries(staff_client) == 0  # cached
    cache.delete(digest.BADGES_KEY)
    assert _badge_queries(staff_client) == 1


def test_beat_refreshes_the_badges_so_pages_show_new_counts_without_computing_them(clinic, staff_client):
    from portal.core.tasks import staff_alert_badges_task

    assert _badge_queries(staff_client) == 1
    ResultFactory(status=Status.READY, ready_at=timezone.now() - dt.timedelta(minutes=5))
    before = digest.staff_alert_badges().ready
    staff_alert_badges_task()
    assert digest.staff_alert_badges().ready == before + 1
    assert _badge_queries(staff_client) == 0


def test_the_badges_are_refreshed_every_minute_by_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["staff-alert-badges"]
    assert entry["task"] == "portal.core.tasks.staff_alert_badges_task"
    assert entry["schedule"] <= digest.BADGES_SECONDS


def test_no_badges_without_the_staff_role_or_when_nothing_is_waiting(client, no_role_user, staff_client):
    assert 'aria-label="To follow up"' not in staff_client.get(reverse("dashboard")).content.decode()
    client.force_login(no_role_user)
    with CaptureQueriesContext(connection) as queries:
        client.get(reverse("dashboard"))
    assert not any(q["sql"].startswith("SELECT (SELECT COUNT(*)") for q in queries.captured_queries)
