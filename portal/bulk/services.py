"""Bulk kit registration: preview an uploaded CSV, then register its valid rows.

1. `bulk_upload_create` reads and checks the file and stores every row with its
   errors: a preview. Nothing is registered, nothing is sent.
2. `bulk_upload_confirm` (staff pressed "Register") saves a kit registration for
   every valid row through `registration_create` with a key derived from the upload
   and the row, so a second confirm, a double click or a retried request never
   creates one twice: at once for up to INLINE_ROWS rows, else in the background
   (`bulk_register_rows`). After commit, Celery tasks send them to the lab in batches
   of BULK_BATCH_SIZE (`bulk_submit_batch`), one call at a time per task, through the
   same `registration_submit` as the single form.
3. Anything a lost task leaves queued, or the lab could not be reached for, is sent
   later by the periodic sweep, like every registration.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import PurePosixPath, PureWindowsPath

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from portal.bulk.csvfile import CsvRefused, parse_csv
from portal.bulk.models import BulkRow, BulkUpload
from portal.bulk.validation import RowCheck, check_rows, match_and_dedupe
from portal.core.states import Submission
from portal.kits.models import KitRegistration
from portal.kits.services import RegistrationError, registration_create, registration_submit
from portal.orders.models import Order
from portal.patients.models import Patient
from portal.patients.services import AddressData, PatientData

logger = logging.getLogger(__name__)

# Valid rows saved in the confirming request at most; more are saved by a background
# task, CHUNK_ROWS per transaction.
INLINE_ROWS = 500
CHUNK_ROWS = 250
# Namespace of the registrations' idempotency keys: uuid5(namespace, "<upload id>:<row number>").
ROW_KEY_NAMESPACE = uuid.UUID("6f1c2a53-3f5e-4f4e-9a51-0b0c5d1e7a21")


class BulkUploadError(Exception):
    """A staff-facing reason an upload cannot be confirmed or cancelled."""


def row_idempotency_key(*, upload_id: int, row_number: int) -> uuid.UUID:
    """The same upload and row always give the same registration key."""
    return uuid.uuid5(ROW_KEY_NAMESPACE, f"{upload_id}:{row_number}")


def _display_file_name(name: str) -> str:
    """The file's own name (no client path), without control characters, at most 255 characters."""
    base = PureWindowsPath(PurePosixPath(name or "").name).name
    clean = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return (clean or "upload.csv")[:255]


def bulk_upload_create(*, file_name: str, data: bytes, created_by=None, today: dt.date | None = None) -> BulkUpload:
    """Check an uploaded CSV and store it with every row for staff to preview.

    Raises CsvRefused (one message) when the file is too large, is not a CSV, or its
    header does not match the template. Rows with errors are stored with them."""
    max_bytes = settings.BULK_MAX_BYTES
    if len(data) > max_bytes:
        raise CsvRefused(
            f"The file is too large ({len(data) / 1_048_576:.1f} MB); upload at most {max_bytes / 1_048_576:.1f} MB "
            "at a time (split it into several files)."
        )
    parsed = parse_csv(data, max_rows=settings.BULK_MAX_ROWS)
    checks = check_rows(parsed.rows, today=today or timezone.localdate())
    outcomes = Counter(check.outcome for check in checks)
    valid = [c for c in checks if c.is_valid]
    with transaction.atomic():
        upload = BulkUpload.objects.create(
            created_by=created_by,
            file_name=_display_file_name(file_name),
            file_sha256=hashlib.sha256(data).hexdigest(),
            row_count=len(checks),
            valid_count=outcomes[BulkRow.Outcome.VALID],
            invalid_count=outcomes[BulkRow.Outcome.INVALID],
            duplicate_count=outcomes[BulkRow.Outcome.DUPLICATE],
            matched_count=sum(1 for c in valid if c.patient_id and not c.corrects),
            correction_count=sum(1 for c in valid if c.corrects),
            skipped_example=parsed.skipped_example,
        )
        BulkRow.objects.bulk_create((_row_from_check(upload, check) for check in checks), batch_size=500)
    logger.info(
        "bulk upload %s stored for preview: %s rows, %s valid, %s with errors, %s duplicates",
        upload.pk,
        upload.row_count,
        upload.valid_count,
        upload.invalid_count,
        upload.duplicate_count,
    )
    return upload


def _row_from_check(upload: BulkUpload, check: RowCheck) -> BulkRow:
    return BulkRow(
        upload=upload,
        row_number=check.number,
        values=check.values,
        cleaned=check.cleaned,
        errors=check.errors,
        outcome=check.outcome,
        duplicate_of=check.duplicate_of,
        order_id=check.order_id,
        patient_id=check.patient_id,
        registration_id=check.registration_id,
    )


def _check_from_row(row: BulkRow) -> RowCheck:
    return RowCheck(number=row.row_number, values=row.values, cleaned=row.cleaned, order_id=row.cleaned.get("order"))


def _patient_data(cleaned: dict) -> PatientData:
    return PatientData(
        first_name=cleaned["first_name"],
        last_name=cleaned["last_name"],
        email=cleaned["email"],
        date_of_birth=dt.date.fromisoformat(cleaned["date_of_birth"]),
        phone=cleaned["phone"],
        gender=cleaned["gender"],
    )


def _address_data(cleaned: dict) -> AddressData:
    return AddressData(
        street1=cleaned["street1"],
        street2=cleaned["street2"],
        city=cleaned["city"],
        state=cleaned["state"],
        zipcode=cleaned["zipcode"],
    )


def bulk_upload_confirm(*, upload_id: int, actor=None) -> BulkUpload:
    """Save a kit registration for every valid row, then send them in the background.

    The upload is claimed (preview -> confirmed) by a conditional UPDATE, so a second
    confirm registers nothing twice. Up to INLINE_ROWS valid rows are saved at once, in
    the same transaction as the claim; a larger file is saved by a background task,
    CHUNK_ROWS rows per transaction (about 5 ms a row: 5,000 rows would outlast a web
    request). Confirming a confirmed upload whose rows are still being saved hands them
    to a new task (a lost task is resumed that way). Raises BulkUploadError when there
    is nothing to do."""
    from portal.bulk.tasks import bulk_register_rows_task

    now = timezone.now()
    with transaction.atomic():
        claimed = BulkUpload.objects.filter(pk=upload_id, status=BulkUpload.Status.PREVIEW).update(
            status=BulkUpload.Status.CONFIRMED, confirmed_at=now, confirmed_by=actor, updated_at=now
        )
        upload = BulkUpload.objects.get(pk=upload_id)
        if not claimed:
            if upload.status == BulkUpload.Status.CANCELLED:
                raise BulkUploadError("This upload was cancelled. Upload the file again to register its kits.")
            if not upload.rows.filter(outcome=BulkRow.Outcome.VALID).exists():
                raise BulkUploadError("This upload was confirmed already; its kits were not registered twice.")
        if claimed and upload.valid_count <= INLINE_ROWS:
            _register_rows(upload, actor=actor)
        else:
            transaction.on_commit(lambda: bulk_register_rows_task.delay(upload_id), robust=True)
    upload.refresh_from_db()
    logger.info("bulk upload %s confirmed: %s registrations saved", upload.pk, upload.registered_count)
    return upload


def bulk_register_rows(
    *, upload_id: int, budget_seconds: float | None = None, clock: Callable[[], float] = time.monotonic
) -> int:
    """Save the valid rows a confirmed upload has left, CHUNK_ROWS per transaction,
    until none is left or `budget_seconds` (default: half the task's soft time limit)
    have passed, when a new task takes over. Safe to run twice at once: the upload row
    is locked per chunk and only rows still valid are taken. Returns the rows done."""
    from portal.bulk.tasks import bulk_register_rows_task

    budget = settings.CELERY_TASK_SOFT_TIME_LIMIT / 2 if budget_seconds is None else budget_seconds
    started, done = clock(), 0
    while True:
        if done and clock() - started > budget:
            bulk_register_rows_task.delay(upload_id)
            break
        with transaction.atomic():
            upload = BulkUpload.objects.select_for_update().get(pk=upload_id)
            if upload.status != BulkUpload.Status.CONFIRMED:
                break
            count = _register_rows(upload, actor=upload.confirmed_by, limit=CHUNK_ROWS)
        if not count:
            break
        done += count
    return done


def _register_rows(upload: BulkUpload, *, actor, limit: int | None = None) -> int:
    """Save the registrations of the upload's valid rows (the first `limit` of them) in
    the caller's transaction; send them after commit. Returns the rows processed.

    Patient matches and duplicates are checked again: registrations may have been
    saved since the preview (e.g. the same file confirmed from another upload)."""
    rows = upload.rows.filter(outcome=BulkRow.Outcome.VALID).order_by("row_number")
    rows = list(rows[:limit] if limit else rows)
    checks = [_check_from_row(row) for row in rows]
    match_and_dedupe(checks)
    orders = Order.objects.in_bulk({c.order_id for c in checks})
    patients = Patient.objects.in_bulk({c.patient_id for c in checks if c.patient_id and not c.corrects})
    corrected = KitRegistration.objects.in_bulk({c.registration_id for c in checks if c.corrects})
    to_send = []
    # A new patient on several rows (kits on several orders) is created once.
    new_patients: dict[tuple, Patient] = {}
    for row, check in zip(rows, checks, strict=True):
        row.patient_id, row.registration_id = check.patient_id, check.registration_id
        if not check.is_valid:
            row.outcome, row.duplicate_of = check.outcome, check.duplicate_of
            continue
        if not check.patient_id and not check.corrects and check.identity in new_patients:
            check.patient_id = row.patient_id = new_patients[check.identity].pk
            patients[check.patient_id] = new_patients[check.identity]
        registration = _register_row(upload, row, check, orders, patients, corrected, actor)
        if registration is None:
            continue
        if not check.patient_id and not check.corrects:
            new_patients[check.identity] = registration.patient
        row.outcome, row.registration_id = BulkRow.Outcome.REGISTERED, registration.pk
        if registration.submission_status == Submission.QUEUED:
            to_send.append(registration.pk)
    BulkRow.objects.bulk_update(rows, ["outcome", "errors", "duplicate_of", "patient", "registration"], batch_size=500)
    outcomes = Counter(row.outcome for row in rows)
    dropped = outcomes[BulkRow.Outcome.DUPLICATE] + outcomes[BulkRow.Outcome.INVALID]
    BulkUpload.objects.filter(pk=upload.pk).update(
        registered_count=F("registered_count") + outcomes[BulkRow.Outcome.REGISTERED],
        valid_count=F("valid_count") - dropped,
        duplicate_count=F("duplicate_count") + outcomes[BulkRow.Outcome.DUPLICATE],
        invalid_count=F("invalid_count") + outcomes[BulkRow.Outcome.INVALID],
        updated_at=timezone.now(),
    )
    bulk_enqueue_submit(to_send)
    return len(rows)


def _register_row(upload, row, check, orders, patients, corrected, actor) -> KitRegistration | None:
    """Save one row's registration (or correct the rejected one it names); None when refused."""
    order = orders.get(check.order_id)
    if check.corrects:
        key = corrected[check.registration_id].idempotency_key
        patient, patient_data, addresses = None, _patient_data(row.cleaned), [_address_data(row.cleaned)]
    elif check.patient_id:
        key = row_idempotency_key(upload_id=upload.pk, row_number=row.row_number)
        patient, patient_data, addresses = patients[check.patient_id], None, None
    else:
        key = row_idempotency_key(upload_id=upload.pk, row_number=row.row_number)
        patient, patient_data, addresses = None, _patient_data(row.cleaned), [_address_data(row.cleaned)]
    try:
        if order is None:
            raise RegistrationError("This order no longer exists.")
        return registration_create(
            order=order,
            patient=patient,
            patient_data=patient_data,
            addresses=addresses,
            created_by=actor,
            idempotency_key=key,
        )
    except RegistrationError as exc:
        row.outcome, row.errors = BulkRow.Outcome.INVALID, {"order_id": str(exc)}
        return None


def bulk_enqueue_submit(registration_ids: list[int]) -> None:
    """Send the registrations in batches of BULK_BATCH_SIZE, one task per batch, after commit."""
    from portal.bulk.tasks import bulk_submit_batch_task

    size = max(1, settings.BULK_BATCH_SIZE)
    for start in range(0, len(registration_ids), size):
        batch = registration_ids[start : start + size]
        transaction.on_commit(lambda batch=batch: bulk_submit_batch_task.delay(batch), robust=True)


def bulk_submit_batch(
    *,
    registration_ids: list[int],
    budget_seconds: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, int]:
    """Send each registration to the lab, one after another (`registration_submit`
    claims each, so a redelivered batch sends nothing twice). When the batch has run
    for `budget_seconds` (default: half the task's soft time limit) the rest goes to a
    new task rather than being cut off mid-call. Returns counts by submission status."""
    from portal.bulk.tasks import bulk_submit_batch_task

    budget = settings.CELERY_TASK_SOFT_TIME_LIMIT / 2 if budget_seconds is None else budget_seconds
    started = clock()
    counts: Counter[str] = Counter()
    for index, registration_id in enumerate(registration_ids):
        if index and clock() - started > budget:
            rest = registration_ids[index:]
            bulk_submit_batch_task.delay(rest)
            counts["deferred"] += len(rest)
            break
        try:
            registration = registration_submit(registration_id=registration_id)
        except KitRegistration.DoesNotExist:  # deleted in admin meanwhile
            counts["missing"] += 1
            continue
        counts[registration.submission_status] += 1
    return dict(counts)


def bulk_upload_cancel(*, upload_id: int, actor=None) -> BulkUpload:
    """Drop an upload that was not confirmed. Its rows (patient data) are deleted; the
    upload's counts stay for the record."""
    with transaction.atomic():
        claimed = BulkUpload.objects.filter(pk=upload_id, status=BulkUpload.Status.PREVIEW).update(
            status=BulkUpload.Status.CANCELLED, updated_at=timezone.now()
        )
        if not claimed:
            raise BulkUploadError("Only an upload waiting for confirmation can be cancelled.")
        BulkRow.objects.filter(upload_id=upload_id).delete()
    return BulkUpload.objects.get(pk=upload_id)
