"""Periodic housekeeping: nothing saved is ever left behind."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def sweep_task() -> dict:
    """Mark interrupted submissions for review; send what a lost task left queued or failed."""
    from portal.core.sweep import sweep

    return sweep()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def staff_digest_task() -> int:
    """Hourly: send the daily staff digest once it is due (counts only, no PHI)."""
    from portal.core.digest import staff_digest_send_if_due

    return staff_digest_send_if_due()


@shared_task(ignore_result=True, expires=60)
def staff_alert_badges_task() -> None:
    """Every minute: the navigation bar's counts, so no page waits for them."""
    from portal.core.digest import staff_alert_badges_refresh

    staff_alert_badges_refresh()
