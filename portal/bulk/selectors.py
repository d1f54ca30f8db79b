"""Reads for the bulk registration pages: uploads, their rows, progress, rows to fix."""

from __future__ import annotations

from collections.abc import Iterator

from django.db.models import Count, Q, QuerySet

from portal.bulk.csvfile import COLUMNS, ERROR_COLUMN
from portal.bulk.models import BulkRow, BulkUpload
from portal.bulk.validation import ROW
from portal.core.states import Submission

# Sent and answered; sent and refused or unanswered (a person must act); still to be sent.
SUBMITTED = (Submission.ACCEPTED,)
FAILED = (Submission.REJECTED, Submission.NEEDS_REVIEW)
# FAILED here is "the lab could not be reached": the sweep sends it again by itself.
PENDING = (Submission.QUEUED, Submission.SUBMITTING, Submission.FAILED)

# Which rows each tab of the preview shows.
ROW_FILTERS = {
    "problems": Q(outcome__in=[BulkRow.Outcome.INVALID, BulkRow.Outcome.DUPLICATE]),
    "valid": Q(outcome__in=[BulkRow.Outcome.VALID, BulkRow.Outcome.REGISTERED]),
    "failed": Q(outcome=BulkRow.Outcome.INVALID) | Q(registration__submission_status__in=FAILED),
    "all": Q(),
}


def bulk_uploads_recent(*, limit: int = 20) -> QuerySet[BulkUpload]:
    return BulkUpload.objects.select_related("created_by").order_by("-created_at", "-id")[:limit]


def bulk_upload_same_file_before(*, upload: BulkUpload) -> BulkUpload | None:
    """An earlier, confirmed upload of the very same file, if any."""
    return (
        BulkUpload.objects.filter(
            file_sha256=upload.file_sha256, status=BulkUpload.Status.CONFIRMED, created_at__lt=upload.created_at
        )
        .order_by("-created_at")
        .first()
    )


def bulk_rows(*, upload: BulkUpload, show: str = "all") -> QuerySet[BulkRow]:
    """The upload's rows for one tab, in file order, with what they point at joined."""
    return (
        upload.rows.filter(ROW_FILTERS.get(show, Q()))
        .select_related("order", "patient", "registration")
        .order_by("row_number")
    )


def bulk_upload_progress(*, upload: BulkUpload) -> dict[str, int | bool]:
    """How far the sending of a confirmed upload's registrations is: one query, counts only (no PHI)."""
    # Valid rows of a confirmed upload are still being saved (large files, in the background).
    rows = BulkRow.objects.filter(upload=upload, outcome__in=[BulkRow.Outcome.REGISTERED, BulkRow.Outcome.VALID])
    if upload.status != BulkUpload.Status.CONFIRMED:
        rows = rows.filter(outcome=BulkRow.Outcome.REGISTERED)
    counts = rows.aggregate(
        total=Count("pk"),
        saving=Count("pk", filter=Q(outcome=BulkRow.Outcome.VALID)),
        submitted=Count("pk", filter=Q(registration__submission_status__in=SUBMITTED)),
        failed=Count("pk", filter=Q(registration__submission_status__in=FAILED)),
        retrying=Count("pk", filter=Q(registration__submission_status=Submission.FAILED)),
        waiting_for_order=Count(
            "pk",
            filter=Q(registration__submission_status=Submission.QUEUED, registration__order__upstream_id__isnull=True),
        ),
    )
    counts["pending"] = counts["total"] - counts["submitted"] - counts["failed"]
    counts["done"] = counts["pending"] == 0
    return counts


def row_error_text(row: BulkRow) -> str:
    """Why a row needs fixing, in one line for the CSV's error column."""
    if row.outcome == BulkRow.Outcome.INVALID:
        return "; ".join(
            f"{column}: {message}" if column != ROW else message
            for column, message in sorted(row.errors.items(), key=lambda item: _column_position(item[0]))
        )
    registration = row.registration
    if registration is None:
        return ""
    if registration.submission_status == Submission.NEEDS_REVIEW:
        return (
            f"The lab did not confirm kit registration #{registration.pk}: check it on its page in the portal "
            "before registering this kit again (uploading this row again skips it as a duplicate)."
        )
    return f"Kit registration #{registration.pk}: {registration.last_error or 'rejected by the lab.'}"


def _column_position(column: str) -> int:
    return COLUMNS.index(column) if column in COLUMNS else -1


ROWS_TO_FIX_HEADER = (*COLUMNS, ERROR_COLUMN)


def bulk_rows_to_fix(*, upload: BulkUpload) -> Iterator[list[str]]:
    """Rows with errors and rows the lab refused, as typed, with an error column last:
    fix the cells and upload the file again (the error column is ignored then)."""
    rows = bulk_rows(upload=upload, show="failed").iterator(chunk_size=500)
    for row in rows:
        yield [row.values.get(column, "") for column in COLUMNS] + [row_error_text(row)]
