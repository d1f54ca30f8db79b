import pytest
from django.core import mail

from portal.notifications.models import Notification
from portal.notifications.services import (
    SendFailed,
    notification_resend,
    notification_send,
    notifications_mark_stale,
)
from tests.factories import NotificationFactory

pytestmark = pytest.mark.django_db


def test_send_delivers_one_email_without_phi(settings):
    settings.RESULTS_VIEW_URL = "https://results.clinic.example/view"
    notification = NotificationFactory()
    patient = notification.result.registration.patient
    notification_send(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.status == Notification.Status.SENT and notification.sent_at
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [patient.email] and not email.cc and not email.bcc
    assert email.subject == "Your lab results are ready"
    html = email.alternatives[0][0]
    assert "https://results.clinic.example/view" in email.body and "https://results.clinic.example/view" in html
    kit_id = notification.result.registration.kit_id
    for phi in (patient.first_name, patient.last_name, patient.phone, str(patient.date_of_birth), kit_id):
        assert phi not in email.subject and phi not in email.body and phi not in html


def test_a_second_send_of_the_same_notification_sends_nothing():
    notification = NotificationFactory()
    notification_send(notification_id=notification.pk)
    notification_send(notification_id=notification.pk)
    assert len(mail.outbox) == 1


def test_failed_send_is_retried_then_shown_as_failed(settings, monkeypatch):
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    notification = NotificationFactory()

    def broken_send(self, fail_silently=False):
        raise OSError("smtp down")

    monkeypatch.setattr("django.core.mail.EmailMultiAlternatives.send", broken_send)
    with pytest.raises(SendFailed):
        notification_send(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.status == Notification.Status.PENDING and notification.attempts == 1
    notification_send(notification_id=notification.pk)
    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED and notification.attempts == 2
    assert "smtp" not in notification.last_error.lower() or "OSError" in notification.last_error


def test_interrupted_send_is_never_resent_on_its_own():
    from django.utils import timezone

    notification = NotificationFactory(
        status=Notification.Status.SENDING, sending_since=timezone.now() - timezone.timedelta(hours=1)
    )
    assert notifications_mark_stale(older_than_seconds=60) == 1
    notification.refresh_from_db()
    assert notification.status == Notification.Status.FAILED
    notification_send(notification_id=notification.pk)
    assert mail.outbox == []


def test_staff_resend_is_a_new_recorded_notification(staff_user, django_capture_on_commit_callbacks):
    first = NotificationFactory(status=Notification.Status.SENT)
    first.result.status, first.result.state, first.result.ready_at = "ready", "ready", first.created_at
    first.result.save()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        again = notification_resend(result=first.result, requested_by=staff_user)
    assert again.pk != first.pk and again.is_resend and again.requested_by == staff_user
    assert len(callbacks) == 1


def test_resend_is_refused_before_ready_and_while_one_waits(staff_user, django_capture_on_commit_callbacks):
    from portal.notifications.services import ResendRefused
    from tests.factories import ResultFactory

    with pytest.raises(ResendRefused, match="ready"):
        notification_resend(result=ResultFactory(), requested_by=staff_user)
    first = NotificationFactory(status=Notification.Status.SENT)
    first.result.status, first.result.state = "ready", "ready"
    first.result.ready_at = first.created_at
    first.result.save()
    with django_capture_on_commit_callbacks():
        notification_resend(result=first.result, requested_by=staff_user)
        with pytest.raises(ResendRefused, match="already on its way"):
            notification_resend(result=first.result, requested_by=staff_user)
