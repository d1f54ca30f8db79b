"""Addresses saved with `bulk_create` send no signal, so django-auditlog cannot see
them (the patient services create a new patient's addresses that way, and replace
them when staff correct a rejected registration). After every patient save, once
the transaction commits, each of the patient's addresses that has no "create"
entry yet gets one, with the same actor as the rest of the change."""

from __future__ import annotations

from auditlog.diff import model_instance_diff
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models.signals import post_save


def addresses_log_unlogged(*, patient_id: int) -> int:
    """Write the missing "create" entries of a patient's addresses. Returns how many."""
    from portal.patients.models import Address

    content_type = ContentType.objects.get_for_model(Address)
    logged = LogEntry.objects.filter(
        content_type=content_type, action=LogEntry.Action.CREATE, object_id__isnull=False
    ).values("object_id")
    written = 0
    for address in Address.objects.filter(patient_id=patient_id).exclude(pk__in=logged):
        LogEntry.objects.log_create(address, action=LogEntry.Action.CREATE, changes=model_instance_diff(None, address))
        written += 1
    return written


def _patient_saved(sender, instance, raw=False, **kwargs) -> None:
    if raw:
        return
    patient_id = instance.pk
    # robust: the change is committed already; a failure here must not turn it into an error page.
    transaction.on_commit(lambda: addresses_log_unlogged(patient_id=patient_id), robust=True)


def connect_signals() -> None:
    from portal.patients.models import Patient

    post_save.connect(_patient_saved, sender=Patient, dispatch_uid="portal.audit.patient_saved")
