import random

from celery import shared_task

from portal.core.states import Submission


def backoff(retries: int, *, base: int = 30, cap: int = 900) -> int:
    """Exponential back-off with full jitter, in seconds."""
    return random.randint(1, min(cap, base * 2**retries))  # noqa: S311 - jitter, not security


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=6)
def order_submit_task(self, order_id: int) -> str:
    """Send one saved order to the lab; retried with back-off while the failure is retryable."""
    from portal.orders.services import order_submit

    order = order_submit(order_id=order_id)
    if order.submission_status == Submission.FAILED and self.request.retries < self.max_retries:
        raise self.retry(countdown=backoff(self.request.retries))
    return order.submission_status


@shared_task(acks_late=True, reject_on_worker_lost=True)
def orders_poll_task() -> int:
    """Refresh the state of orders that are due."""
    from portal.orders.services import orders_sync_due

    return orders_sync_due()
