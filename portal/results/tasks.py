import time

from celery import shared_task
from django.conf import settings


@shared_task(acks_late=True, reject_on_worker_lost=True)
def results_poll_task(max_seconds: float | None = None) -> dict:
    """Poll due results in bounded batches until none is due or the time is up.

    Claimed rows carry a lease: if this worker dies mid-batch, the next cycle takes
    them over, so nothing is lost and a redelivered task polls nothing twice."""
    from portal.results.services import results_poll_due

    deadline = time.monotonic() + (max_seconds or settings.CELERY_TASK_SOFT_TIME_LIMIT * 0.8)
    totals = {"claimed": 0, "polled": 0, "failed": 0, "became_ready": 0}
    while time.monotonic() < deadline:
        report = results_poll_due()
        for key in totals:
            totals[key] += getattr(report, key)
        if report.claimed == 0:
            break
    return totals
