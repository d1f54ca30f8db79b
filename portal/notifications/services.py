"""Patient notifications: created with the result's move to ready, sent at most once.

Once-only rules (a unique constraint and a conditional UPDATE decide, not timing):
- one automatic notification per result and kind: the unique constraint makes a
  second `ready` seen by another poll a no-op;
- one sender per notification: the send claims the row (pending -> sending);
  a redelivered or concurrent task finds it claimed or sent and does nothing;
- a worker killed mid-send leaves the row "sending": it is never resent on its own
  (the email may have gone); after a while it is shown to staff, who may resend.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from portal.notifications.models import Notification

logger = logging.getLogger(__name__)

READY_TEMPLATE = "notifications/results_ready"


def notification_create_for_ready(result) -> Notification | None:
    """Create the result's "results ready" notification inside the caller's transaction
    and send it after commit. Returns None when it exists already."""
    recipient = result.registration.patient.email
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                result=result,
                kind=Notification.Kind.RESULTS_READY,
                recipient=recipient,
                template=READY_TEMPLATE,
            )
    except IntegrityError:
        return None
    notification_enqueue_send(notification)
    return notification


def notification_enqueue_send(notification: Notification) -> None:
    from portal.notifications.tasks import notification_send_task

    transaction.on_commit(lambda: notification_send_task.delay(notification.pk), robust=True)


class ResendRefused(Exception):
    """A resend staff asked for cannot be queued; the message says why."""


def notification_resend(*, result, requested_by) -> Notification:
    """Staff asked to send the email again: a new, recorded notification.

    Only for a ready result, and never while an earlier resend is still waiting:
    the result's row lock makes two clicks at the same moment queue one email."""
    from portal.core.states import Status
    from portal.results.models import Result

    with transaction.atomic():
        locked = Result.objects.select_for_update().select_related("registration__patient").get(pk=result.pk)
        if locked.status != Status.READY:
            raise ResendRefused("The email can only be sent again once the result is ready.")
        waiting = Notification.objects.filter(
            result=locked, is_resend=True, status__in=[Notification.Status.PENDING, Notification.Status.SENDING]
        )
        if waiting.exists():
            raise ResendRefused("A resend of this email is already on its way; it was not queued twice.")
        notification = Notification.objects.create(
            result=locked,
            kind=Notification.Kind.RESULTS_READY,
            recipient=locked.registration.patient.email,
            template=READY_TEMPLATE,
            is_resend=True,
            requested_by=requested_by,
        )
        notification_enqueue_send(notification)
    return notification


def notification_message(notification: Notification) -> EmailMultiAlternatives:
    """The email: no PHI in subject or body (inboxes are shared), one recipient."""
    context = {
        "clinic_name": settings.CLINIC_NAME,
        "clinic_contact": settings.CLINIC_CONTACT,
        "results_url": settings.RESULTS_VIEW_URL,
    }
    subject = " ".join(render_to_string(f"{notification.template}-subject.txt", context).split())
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"{notification.template}-body.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.recipient],
        reply_to=[settings.CLINIC_REPLY_TO] if settings.CLINIC_REPLY_TO else None,
    )
    message.attach_alternative(render_to_string(f"{notification.template}-body.html", context), "text/html")
    return message


class SendFailed(Exception):
    """The email backend refused; the task retries with back-off."""


def notification_send(*, notification_id: int) -> Notification:
    """Send one notification if nobody has sent or is sending it."""
    now = timezone.now()
    claimed = Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING).update(
        status=Notification.Status.SENDING, sending_since=now, attempts=F("attempts") + 1, updated_at=now
    )
    notification = Notification.objects.get(pk=notification_id)
    if not claimed:
        return notification
    try:
        notification_message(notification).send(fail_silently=False)
    except Exception as exc:  # any backend error: SMTP, socket, file system
        gave_up = notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
        notification.status = Notification.Status.FAILED if gave_up else Notification.Status.PENDING
        notification.last_error = f"{type(exc).__name__}: could not hand the email to the mail server"[:500]
        notification.sending_since = None
        notification.save(update_fields=["status", "last_error", "sending_since", "updated_at"])
        logger.warning(
            "notification %s: send attempt %s failed (%s)%s",
            notification.pk,
            notification.attempts,
            type(exc).__name__,
            "; giving up" if gave_up else "",
        )
        if not gave_up:
            raise SendFailed(str(notification.pk)) from exc
        return notification
    notification.status = Notification.Status.SENT
    notification.sent_at = timezone.now()
    notification.sending_since = None
    notification.last_error = ""
    notification.save(update_fields=["status", "sent_at", "sending_since", "last_error", "updated_at"])
    logger.info("notification %s sent", notification.pk)
    return notification


def notifications_mark_stale(*, older_than_seconds: int = 900) -> int:
    """Notifications stuck in "sending" (the worker died mid-send) may have gone out:
    show them to staff as failed instead of sending them again."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return Notification.objects.filter(status=Notification.Status.SENDING, sending_since__lt=cutoff).update(
        status=Notification.Status.FAILED,
        last_error="Interrupted while sending; it may have been delivered. Resend only if the patient did not get it.",
        sending_since=None,
        updated_at=timezone.now(),
    )


def notifications_send_pending() -> int:
    """Enqueue pending notifications whose task was lost (e.g. the broker was down)."""
    from portal.notifications.tasks import notification_send_task

    cutoff = timezone.now() - timedelta(minutes=2)
    ids = list(
        Notification.objects.filter(status=Notification.Status.PENDING, updated_at__lt=cutoff).values_list(
            "id", flat=True
        )[:500]
    )
    for notification_id in ids:
        notification_send_task.delay(notification_id)
    return len(ids)
