from celery import shared_task

from portal.core.states import Submission
from portal.orders.tasks import backoff


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=6)
def registration_submit_task(self, registration_id: int) -> str:
    """Send one saved kit registration to the lab; retried while the failure is retryable."""
    from portal.kits.services import registration_submit

    registration = registration_submit(registration_id=registration_id)
    if registration.submission_status == Submission.FAILED and self.request.retries < self.max_retries:
        raise self.retry(countdown=backoff(self.request.retries))
    return registration.submission_status
