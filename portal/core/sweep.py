"""The sweep: a periodic service that picks up work whose task was lost or failed."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from portal.core.states import Submission
from portal.core.submission import submissions_mark_stale


def sweep(*, now=None) -> dict:
    """Return counts of what was done; every step is safe to repeat."""
    from portal.kits.models import KitRegistration
    from portal.kits.services import registration_enqueue_submit
    from portal.notifications.services import notifications_mark_stale, notifications_send_pending
    from portal.orders.models import Order
    from portal.orders.services import order_enqueue_submit

    now = now or timezone.now()
    # A record saved more than a minute ago and still queued lost its task (the
    # broker was down when staff saved it). A failed one is retried every 5 minutes.
    queued_cutoff = now - timedelta(minutes=1)
    failed_cutoff = now - timedelta(minutes=5)
    counts = {
        "orders_marked_for_review": submissions_mark_stale(Order),
        "registrations_marked_for_review": submissions_mark_stale(KitRegistration),
        "notifications_marked_failed": notifications_mark_stale(),
        "orders_resent": 0,
        "registrations_resent": 0,
    }
    for order in Order.objects.filter(
        submission_status=Submission.QUEUED, updated_at__lt=queued_cutoff
    ) | Order.objects.filter(submission_status=Submission.FAILED, updated_at__lt=failed_cutoff):
        order_enqueue_submit(order)
        counts["orders_resent"] += 1
    for registration in KitRegistration.objects.filter(
        submission_status=Submission.QUEUED, updated_at__lt=queued_cutoff, order__upstream_id__isnull=False
    ) | KitRegistration.objects.filter(submission_status=Submission.FAILED, updated_at__lt=failed_cutoff):
        registration_enqueue_submit(registration)
        counts["registrations_resent"] += 1
    counts["notifications_requeued"] = notifications_send_pending()
    return counts
