"""Fault suite (issue 6): the lab, the database, the broker and the mail server on a
bad day, seen from the staff side. Each scenario asserts what the staff member sees
(the record's status and last error on its page, the page's message) and that
nothing is lost or duplicated (calls to the lab, rows and emails counted).

The client rules behind these outcomes are tested where they live and are not
repeated here: which calls are retried and how Retry-After is read in
tests/upstream/test_retries.py, tokens in test_tokens.py, bodies in
test_client.py / test_payloads.py, the same faults over HTTP in test_contract.py.
Real worker and beat processes (beat started twice, two workers polling together,
a duplicate poll task, a worker killed mid-batch) are in
tests/integration/test_celery.py (CI's second pass, PostgreSQL + Redis).
"""

from __future__ import annotations

import email.utils
import html
import socket
import uuid
from datetime import timedelta
from smtplib import SMTPServerDisconnected
from unittest import mock

import pytest
import requests
from django.core.mail.backends.base import BaseEmailBackend
from django.db import OperationalError, transaction
from django.urls import reverse
from django.utils import timezone

from portal.core.states import Status, Submission
from portal.core.sweep import sweep
from portal.kits.services import registration_submit
from portal.kits.tasks import registration_submit_task
from portal.notifications.models import Notification
from portal.notifications.services import notification_send
from portal.notifications.tasks import notification_send_task
from portal.orders.models import Order
from portal.orders.services import order_resolve_review
from portal.orders.tasks import order_submit_task
from portal.results import services as result_services
from portal.results.models import Result
from portal.results.services import results_poll_due
from portal.upstream.client import EverlywellClient
from portal.upstream.models import UpstreamCall
from tests.factories import OrderFactory, RegistrationFactory, ResultFactory
from tests.sandbox_fixtures import FakeClock
from tests.upstream.conftest import a_registration, an_order
from tests.upstream.test_retries import connection_refused, dns_failure

pytestmark = pytest.mark.django_db

LAB_UNREACHABLE = "Saved. The lab could not be reached; the portal will retry automatically."
NEEDS_REVIEW_MESSAGE = "Saved, but the lab did not confirm whether it received the order. It needs review"


@pytest.fixture
def lab(partner, monkeypatch):
    """The partner mocked (`tests/partner.py`), with a client whose waits are recorded
    (`lab.sleeps`) on a fake clock (`lab.clock`) instead of slept."""
    clock = FakeClock(start=1_800_000_000.0)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    client = EverlywellClient(clock=clock, sleep=sleep)
    for module in ("upstream.client", "orders.services", "kits.services", "results.services"):
        monkeypatch.setattr(f"portal.{module}.get_client", lambda: client)
    partner.sleeps, partner.clock = sleeps, clock
    yield partner
    client.close()


def page(response) -> str:
    """The page as a person reads it (entities decoded)."""
    return html.unescape(response.content.decode())


def staff_creates_order(client):
    """The staff member fills in "New order" and submits it; the portal sends it at once."""
    response = client.post(
        reverse("orders:create"), {"idempotency_key": str(uuid.uuid4()), "amount": "199.00"}, follow=True
    )
    assert response.status_code == 200
    return response, Order.objects.get()


def posts(lab, fragment="/v2/orders/") -> int:
    return len(lab.calls_to(fragment, "POST"))


# --- the lab, when staff create an order (POST: never sent twice unless it surely did not arrive) ----

ORDER_FAULTS = [
    # (scenario, what the lab answers to each POST, submission status, last error class, message, POSTs)
    ("connection refused", [{"body": connection_refused()}], Submission.FAILED, "UpstreamUnavailable",
     LAB_UNREACHABLE, 4),
    ("DNS failure", [{"body": dns_failure()}], Submission.FAILED, "UpstreamUnavailable", LAB_UNREACHABLE, 4),
    ("read timeout on POST", [{"body": requests.exceptions.ReadTimeout("read timed out")}], Submission.NEEDS_REVIEW,
     "UpstreamOutcomeUnknown", NEEDS_REVIEW_MESSAGE, 1),
    ("500 on POST", [{"status": 500}], Submission.NEEDS_REVIEW, "UpstreamOutcomeUnknown", NEEDS_REVIEW_MESSAGE, 1),
    ("401 twice: credentials wrong", [{"status": 401}, {"status": 401}], Submission.FAILED, "UpstreamAuthFailed",
     LAB_UNREACHABLE, 2),
    ("200 with an HTML body to a POST", [{"status": 200, "body": "<html><body>Welcome</body></html>"}],
     Submission.NEEDS_REVIEW, "UpstreamOutcomeUnknown", NEEDS_REVIEW_MESSAGE, 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("scenario", "answers", "status", "error_class", "message", "expected_posts"),
    ORDER_FAULTS,
    ids=[row[0] for row in ORDER_FAULTS],
)
def test_an_order_the_lab_fails_is_kept_and_staff_are_told(
    staff_client, lab, scenario, answers, status, error_class, message, expected_posts
):
    for answer in answers:
        lab.create_order(**answer)

    response, order = staff_creates_order(staff_client)

    shown = page(response)
    assert message in shown
    assert order.get_submission_status_display() in shown
    assert order.last_error and order.last_error in shown  # the detail page says why
    assert (order.submission_status, order.last_error_class) == (status, error_class)
    assert order.upstream_id is None  # nothing linked that the lab did not confirm
    assert posts(lab) == expected_posts
    assert Order.objects.count() == 1  # saved once, whatever happened


def test_credentials_the_lab_refuses_are_an_admin_facing_error_and_no_loop(staff_client, lab, caplog):
    lab.create_order(status=401)

    _, order = staff_creates_order(staff_client)

    assert len(lab.calls_to("/v1/token")) == 2  # the first token, and one refresh after the 401
    assert posts(lab) == 2  # the POST, and one retry with the fresh token: no more
    assert order.last_error == "the partner refused a freshly issued token (HTTP 401)"
    call = UpstreamCall.objects.get(operation="create_order")  # what admins read in the call log
    assert (call.outcome, call.status_code) == ("UpstreamAuthFailed", 401)
    assert any(r.levelname == "ERROR" and "UpstreamAuthFailed" in r.getMessage() for r in caplog.records)


def test_an_expired_token_is_refreshed_and_the_order_goes_through(staff_client, lab):
    lab.mock.get(f"{lab.auth}/v1/token", json={"token": "fresh.token.value"})  # the second token issued
    lab.create_order(status=401)  # the cached token has expired at the lab
    lab.create_order(id=6060)

    response, order = staff_creates_order(staff_client)

    assert "Order created at the lab: lab order id 6060." in page(response)
    assert (order.submission_status, order.upstream_id) == (Submission.ACCEPTED, 6060)
    assert posts(lab) == 2 and len(lab.calls_to("/v1/token")) == 2
    assert lab.calls_to("/v2/orders/")[-1].request.headers["Authorization"] == "Bearer fresh.token.value"


def _http_date(lab, seconds: float) -> str:
    return email.utils.formatdate(lab.clock() + seconds, usegmt=True)


RETRY_AFTER = [
    ("seconds", lambda lab: "7", 7.0),
    ("an HTTP-date", lambda lab: _http_date(lab, 7), 7.0),
    ("a huge value, capped", lambda lab: "86400", 20.0),
]


@pytest.mark.parametrize(("scenario", "header", "waited"), RETRY_AFTER, ids=[row[0] for row in RETRY_AFTER])
def test_a_429_is_waited_out_as_the_lab_asks_then_the_order_goes_through_once(
    staff_client, lab, settings, scenario, header, waited
):
    settings.EVERLYWELL_RETRY_AFTER_CAP = 20
    lab.create_order(status=429, headers={"Retry-After": header(lab)})
    lab.create_order(id=7070)

    response, order = staff_creates_order(staff_client)

    assert lab.sleeps == [waited]
    assert "Order created at the lab: lab order id 7070." in page(response)
    assert (order.submission_status, order.upstream_id) == (Submission.ACCEPTED, 7070)
    assert posts(lab) == 2  # the 429 was not applied; one order exists at the lab


def test_an_order_that_failed_to_reach_the_lab_is_sent_later_exactly_once(staff_client, lab):
    lab.create_order(body=connection_refused())
    _, order = staff_creates_order(staff_client)
    assert order.submission_status == Submission.FAILED
    lab.mock.replace("POST", f"{lab.api}/v2/orders/", json={"id": 8080, "amount": 199.0}, status=201)

    response = staff_client.post(reverse("orders:retry", args=[order.pk]), follow=True)  # or the task, or the sweep

    order.refresh_from_db()
    assert "Order created at the lab: lab order id 8080." in page(response)
    assert (order.submission_status, order.upstream_id, order.last_error) == (Submission.ACCEPTED, 8080, "")
    assert posts(lab) == 4 + 1  # four refused connections, then the one that created it


def test_a_kit_registration_that_times_out_is_marked_for_review_and_posted_once(lab):
    registration = RegistrationFactory(
        upstream_id=None, kit_id=None, submission_status=Submission.QUEUED, registered_at=None
    )
    lab.register_kit(registration.order.upstream_id, body=requests.exceptions.ReadTimeout("read timed out"))

    registration = registration_submit(registration_id=registration.pk)

    assert registration.submission_status == Submission.NEEDS_REVIEW
    assert registration.get_submission_status_display() == "Needs review - may exist upstream"
    assert posts(lab, "/registration") == 1
    assert registration_submit(registration_id=registration.pk).submission_status == Submission.NEEDS_REVIEW
    assert posts(lab, "/registration") == 1  # never resent on its own


# --- the lab, when results are polled (GET: safe to repeat) ------------------------------------------


def _ready(result):
    return {"json": {"id": result.upstream_id, "state": "ready"}}


RESULT_FAULTS = [
    # (scenario, answers to each GET of the result, status after the cycle, last error class, GETs)
    ("503 three times then ready", lambda r: [{"status": 503}] * 3 + [_ready(r)], Status.READY, "", 4),
    ("read timeout on GET", lambda r: [{"body": requests.exceptions.ReadTimeout("read timed out")}] * 4,
     Status.PENDING, "UpstreamUnavailable", 4),
    ("connection refused on GET", lambda r: [{"body": connection_refused()}] * 4, Status.PENDING,
     "UpstreamUnavailable", 4),
    ("200 with an HTML body", lambda r: [{"body": "<html><body>Bad gateway</body></html>"}], Status.PENDING,
     "UpstreamProtocolError", 1),
    ("200 with the reference's trailing-comma JSON",
     lambda r: [{"body": f'{{"id": {r.upstream_id}, "state": "ready",}}'}], Status.PENDING,
     "UpstreamProtocolError", 1),
    ("missing state", lambda r: [{"json": {"id": r.upstream_id}}], Status.PENDING, "UpstreamProtocolError", 1),
    ("mistyped id", lambda r: [{"json": {"id": str(r.upstream_id), "state": "ready"}}], Status.PENDING,
     "UpstreamProtocolError", 1),
    ("mistyped state", lambda r: [{"json": {"id": r.upstream_id, "state": 5}}], Status.PENDING,
     "UpstreamProtocolError", 1),
    ("an answer about another id", lambda r: [{"json": {"id": r.upstream_id + 1, "state": "ready"}}],
     Status.PENDING, "UpstreamProtocolError", 1),
    ("404 for the result id", lambda r: [{"status": 404, "json": {"error": "not found"}}], Status.PENDING,
     "UpstreamNotFound", 1),
    ("an unknown state", lambda r: [{"json": {"id": r.upstream_id, "state": "quarantined"}}], Status.UNKNOWN, "", 1),
]  # fmt: skip


@pytest.mark.parametrize(
    ("scenario", "answers", "status", "error_class", "gets"), RESULT_FAULTS, ids=[row[0] for row in RESULT_FAULTS]
)
def test_a_poll_the_lab_fails_is_shown_to_staff_and_polled_again_until_ready(
    staff_client, lab, scenario, answers, status, error_class, gets
):
    result = ResultFactory(state="awaiting_sample")
    url = f"{lab.api}/v1/results/{result.upstream_id}"
    for answer in answers(result):
        lab.mock.get(url, **answer)

    report = results_poll_due()

    result.refresh_from_db()
    assert (result.status, result.last_error_class) == (status, error_class)
    assert len(lab.calls_to(url)) == gets
    assert result.claimed_until is None  # released: nothing stuck
    shown = page(staff_client.get(reverse("results:detail", args=[result.pk])))
    if error_class:
        assert report.failed == 1
        assert result.last_error in shown and error_class in shown
        assert result.next_poll_at > timezone.now()  # asked again later, not in a loop
    if status == Status.UNKNOWN:
        assert result.state == "quarantined"  # kept verbatim
        assert "Unknown lab state “quarantined”" in page(staff_client.get(reverse("dashboard")))

    # Later the lab answers properly: the result becomes ready, with exactly one email.
    lab.mock.replace("GET", url, json={"id": result.upstream_id, "state": "ready"})
    Result.objects.filter(pk=result.pk).update(next_poll_at=timezone.now())
    results_poll_due()
    result.refresh_from_db()
    assert (result.status, result.last_error) == (Status.READY, "")
    assert Notification.objects.filter(result=result).count() == 1


def test_a_404_waits_the_longest_before_the_next_poll(lab, settings):
    result = ResultFactory()
    lab.get_result(result.upstream_id, status=404, json={"error": "not found"})

    results_poll_due()

    result.refresh_from_db()
    assert result.next_poll_at - timezone.now() > timedelta(seconds=settings.RESULT_POLL_MAX_INTERVAL - 60)


def test_staff_refreshing_a_result_the_lab_does_not_know_get_a_message_not_an_error_page(staff_client, lab):
    result = ResultFactory()
    lab.get_result(result.upstream_id, status=404, json={"error": "not found"})

    response = staff_client.post(reverse("results:refresh", args=[result.pk]), follow=True)

    assert response.status_code == 200
    assert "The lab could not be asked about this result just now" in page(response)
    result.refresh_from_db()
    assert result.last_error_class == "UpstreamNotFound"


def test_sandbox_faults_show_the_same_outcomes_over_http(start_sandbox, monkeypatch):
    """The sandbox's own fault modes (503s, the reference's malformed body), through
    the real client and HTTP: the result shows the error, then becomes ready."""
    sandbox = start_sandbox(result_ready_after=0, error_codes=(503,))
    client = sandbox.client()
    monkeypatch.setattr("portal.results.services.get_client", lambda: client)
    lab_order = client.create_order(an_order())
    lab_registration = client.register_kit(lab_order.id, a_registration())
    result = ResultFactory(upstream_id=lab_registration.id, registration__upstream_id=lab_registration.id)

    sandbox.options.error_rate = 1.0
    results_poll_due()
    result.refresh_from_db()
    assert (result.status, result.last_error_class) == (Status.PENDING, "UpstreamUnavailable")

    sandbox.options.error_rate, sandbox.options.malformed_rate = 0.0, 1.0
    Result.objects.filter(pk=result.pk).update(next_poll_at=timezone.now())
    results_poll_due()
    result.refresh_from_db()
    assert (result.status, result.last_error_class) == (Status.PENDING, "UpstreamProtocolError")

    sandbox.options.malformed_rate = 0.0
    Result.objects.filter(pk=result.pk).update(next_poll_at=timezone.now())
    results_poll_due()
    result.refresh_from_db()
    assert (result.status, result.last_error) == (Status.READY, "")
    assert Notification.objects.filter(result=result).count() == 1
    client.close()


# --- the database, during a poll cycle -------------------------------------------------------------


def test_the_database_failing_mid_cycle_fails_the_cycle_cleanly_and_the_next_one_succeeds(lab, monkeypatch, settings):
    results = [ResultFactory() for _ in range(3)]
    lab.get_result_any(state="ready")
    applied = []
    real_apply = result_services.result_apply_state

    def database_goes_away_on_the_second_write(**kwargs):
        if len(applied) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        applied.append(kwargs["result_id"])
        return real_apply(**kwargs)

    monkeypatch.setattr(result_services, "result_apply_state", database_goes_away_on_the_second_write)

    with pytest.raises(OperationalError):
        results_poll_due(concurrency=1)

    assert Result.objects.filter(status=Status.READY).count() == 1  # its own transaction: kept
    assert Notification.objects.count() == 1
    still_claimed = Result.objects.exclude(status=Status.READY)
    assert all(r.claimed_until is not None for r in still_claimed)  # leased to the failed cycle...
    monkeypatch.setattr(result_services, "result_apply_state", real_apply)
    assert results_poll_due().claimed == 0  # ...so nobody takes them while the lease runs

    later = timezone.now() + timedelta(seconds=settings.POLL_CLAIM_SECONDS + 1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    report = results_poll_due()

    assert report.claimed == 2 and report.became_ready == 2
    assert Result.objects.filter(status=Status.READY).count() == len(results)
    assert Notification.objects.count() == len(results)  # one email each, none twice


# --- the broker, when staff submit a form --------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def broker_down(settings):
    """Celery's broker is a Redis that does not answer (nothing listens on the port)."""
    from portal.celery import app

    url = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CELERY_BROKER_URL = url
    saved = {key: app.conf[key] for key in ("broker_url", "broker_transport_options", "broker_connection_timeout")}
    app.conf.update(broker_url=url, broker_transport_options={}, broker_connection_timeout=1.0)
    app.close()  # drop pooled connections: the next publish connects to the dead broker
    yield url
    app.conf.update(saved)
    app.close()


def test_broker_down_when_staff_ask_to_resend_an_email_saves_it_and_the_sweep_sends_it(
    staff_client, broker_down, django_capture_on_commit_callbacks, monkeypatch
):
    result = ResultFactory(status=Status.READY, state="ready", ready_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = staff_client.post(reverse("results:resend", args=[result.pk]), follow=True)

    assert response.status_code == 200
    assert "The email will be sent again. The resend is recorded." in page(response)
    assert len(callbacks) == 1  # the enqueue was tried, failed, and was not shown as an error page
    notification = Notification.objects.get(result=result)
    assert (notification.status, notification.is_resend) == (Notification.Status.PENDING, True)

    later = timezone.now() + timedelta(minutes=3)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with mock.patch.object(notification_send_task, "delay") as delay:
        counts = sweep()
    assert counts["notifications_requeued"] == 1
    delay.assert_called_once_with(notification.pk)


def test_broker_down_when_staff_settle_a_review_saves_it_and_the_sweep_sends_it(
    staff_client, broker_down, django_capture_on_commit_callbacks, monkeypatch
):
    registration = RegistrationFactory(
        upstream_id=None, kit_id=None, submission_status=Submission.NEEDS_REVIEW, registered_at=None
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            reverse("kits:review", args=[registration.pk]), {"confirmed_absent": "yes"}, follow=True
        )

    assert response.status_code == 200
    assert "Queued to be sent to the lab again" in page(response)
    registration.refresh_from_db()
    assert registration.submission_status == Submission.QUEUED

    later = timezone.now() + timedelta(minutes=2)
    monkeypatch.setattr(timezone, "now", lambda: later)
    with (
        mock.patch.object(registration_submit_task, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True),
    ):
        counts = sweep()
    assert counts["registrations_resent"] == 1
    delay.assert_called_once_with(registration.pk)


# --- the same task delivered twice, at unit level -----------------------------------------------


def test_the_same_submit_task_delivered_twice_posts_once(lab):
    order = OrderFactory(upstream_id=None, submission_status=Submission.QUEUED, state="", status=Status.PENDING)
    lab.create_order(id=9090)

    first = order_submit_task.apply(args=[order.pk], throw=True).get()
    second = order_submit_task.apply(args=[order.pk], throw=True).get()

    assert first == second == Submission.ACCEPTED
    assert posts(lab) == 1


def test_the_same_registration_task_delivered_twice_posts_once(lab):
    registration = RegistrationFactory(
        upstream_id=None, kit_id=None, submission_status=Submission.QUEUED, registered_at=None
    )
    lab.register_kit(registration.order.upstream_id, id=4321)

    registration_submit_task.apply(args=[registration.pk], throw=True)
    registration_submit_task.apply(args=[registration.pk], throw=True)

    assert posts(lab, "/registration") == 1
    assert Result.objects.filter(registration=registration).count() == 1


def test_the_same_email_task_delivered_twice_sends_one_email(mailoutbox):
    notification = Notification.objects.create(
        result=ResultFactory(status=Status.READY, ready_at=timezone.now()),
        recipient="patient@example.com",
        template="notifications/results_ready",
    )

    notification_send_task.apply(args=[notification.pk], throw=True)
    notification_send_task.apply(args=[notification.pk], throw=True)

    assert len(mailoutbox) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == (Notification.Status.SENT, 1)


# --- the mail server failing --------------------------------------------------------------------------


class RefusingBackend(BaseEmailBackend):
    """A mail server that drops every connection."""

    def send_messages(self, messages):
        raise SMTPServerDisconnected("Connection unexpectedly closed")


def test_the_mail_server_failing_is_retried_then_shown_to_staff_with_a_resend(staff_client, settings, mailoutbox):
    result = ResultFactory(status=Status.READY, state="ready", ready_at=timezone.now())
    notification = Notification.objects.create(
        result=result, recipient=result.registration.patient.email, template="notifications/results_ready"
    )
    settings.EMAIL_BACKEND = f"{__name__}.RefusingBackend"

    notification_send_task.apply(args=[notification.pk])  # eager: the task's retries run at once

    notification.refresh_from_db()
    assert notification.attempts == settings.NOTIFICATION_MAX_ATTEMPTS  # retried, then given up
    assert notification.status == Notification.Status.FAILED
    assert notification.last_error == "SMTPServerDisconnected: could not hand the email to the mail server"
    detail = page(staff_client.get(reverse("results:detail", args=[result.pk])))
    assert "Failed - resend possible" in detail and notification.last_error in detail
    assert "Resend email" in detail and 'disabled aria-describedby="resend-help"' not in detail
    assert "Email to the patient failed" in page(staff_client.get(reverse("dashboard")))

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the mail server is back
    staff_client.post(reverse("results:resend", args=[result.pk]))
    resend = Notification.objects.get(result=result, is_resend=True)
    assert notification_send(notification_id=resend.pk).status == Notification.Status.SENT  # what its task does
    assert len(mailoutbox) == 1


# --- a transaction that rolls back enqueues nothing --------------------------------------------------


class Boom(Exception):
    pass


def test_a_transaction_that_rolls_back_enqueues_no_task(django_capture_on_commit_callbacks):
    order = OrderFactory(upstream_id=None, submission_status=Submission.NEEDS_REVIEW)

    with (
        mock.patch.object(order_submit_task, "delay") as delay,
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(Boom),
        transaction.atomic(),
    ):
        order_resolve_review(order_id=order.pk, actor=None, upstream_id=None)  # enqueues on commit
        raise Boom

    assert callbacks == [] and delay.call_count == 0
    order.refresh_from_db()
    assert order.submission_status == Submission.NEEDS_REVIEW  # and nothing changed


def test_the_same_call_committed_enqueues_exactly_one_task(django_capture_on_commit_callbacks):
    order = OrderFactory(upstream_id=None, submission_status=Submission.NEEDS_REVIEW)

    with mock.patch.object(order_submit_task, "delay") as delay, django_capture_on_commit_callbacks(execute=True):
        order_resolve_review(order_id=order.pk, actor=None, upstream_id=None)

    delay.assert_called_once_with(order.pk)
