from celery import shared_task

from portal.orders.tasks import backoff


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=8)
def notification_send_task(self, notification_id: int) -> str:
    """Send one patient email (takes an id, never an address)."""
    from portal.notifications.services import SendFailed, notification_send

    try:
        return notification_send(notification_id=notification_id).status
    except SendFailed as exc:
        raise self.retry(countdown=backoff(self.request.retries, base=60), exc=exc) from exc
