from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True)
def bulk_submit_batch_task(registration_ids: list[int]) -> dict:
    """Send one batch of a bulk upload's saved registrations to the lab (ids only, no PHI).

    Safe to run twice: each registration is claimed before it is sent. Registrations
    the lab could not be reached for are retried by the periodic sweep."""
    from portal.bulk.services import bulk_submit_batch

    return bulk_submit_batch(registration_ids=registration_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def bulk_register_rows_task(upload_id: int) -> int:
    """Save the kit registrations of a large confirmed upload, a chunk per transaction."""
    from portal.bulk.services import bulk_register_rows

    return bulk_register_rows(upload_id=upload_id)
