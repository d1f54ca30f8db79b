"""Staff pages of bulk kit registration: template, upload, preview, confirm, progress."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.audit.services import phi_access_record
from portal.bulk import selectors
from portal.bulk.csvfile import COLUMN_LABELS, COLUMNS, OPTIONAL_COLUMNS, CsvRefused, template_rows
from portal.bulk.forms import BulkUploadForm
from portal.bulk.models import BulkRow, BulkUpload
from portal.bulk.services import BulkUploadError, bulk_upload_cancel, bulk_upload_confirm, bulk_upload_create
from portal.bulk.validation import ROW
from portal.core.exports import csv_response
from portal.core.pagination import FastPaginator
from portal.patients.models import Patient

VIEW = "bulk.view_bulkupload"
# Registering kits in bulk creates patients and registrations: the same rights as the single form.
REGISTER = ("bulk.add_bulkupload", "kits.add_kitregistration", "patients.add_patient")
PAGE_SIZE = 100
RESUME_AFTER = timedelta(minutes=5)
TABS = (("problems", "Rows with problems"), ("valid", "Rows to register"), ("all", "All rows"))
CONFIRMED_TABS = (("all", "All rows"), ("failed", "Rows to fix"))


@dataclass(frozen=True)
class Cell:
    column: str
    value: str
    error: str | None


def _cells(row: BulkRow) -> list[Cell]:
    return [Cell(c, row.values.get(c, ""), row.errors.get(c)) for c in COLUMNS]


def _crumbs(*items):
    return [("Bulk registration", reverse("bulk:upload")), *items]


@require_GET
@permission_required(VIEW, raise_exception=True)
def template_csv(request):
    header, rows = template_rows()
    return csv_response("kit-registrations-template.csv", header, rows)


@require_http_methods(["GET", "POST"])
@permission_required(REGISTER, raise_exception=True)
def upload(request):
    if request.method == "POST":
        form = BulkUploadForm(request.POST, request.FILES)
        if form.is_valid():
            file = form.cleaned_data["file"]
            try:
                created = bulk_upload_create(
                    file_name=file.name, data=file.read(settings.BULK_MAX_BYTES + 1), created_by=request.user
                )
            except CsvRefused as exc:
                form.add_error("file", str(exc))
            else:
                return redirect("bulk:detail", pk=created.pk)
    else:
        form = BulkUploadForm()
    return render(
        request,
        "bulk/upload.html",
        {
            "title": "Bulk kit registration",
            "breadcrumbs": [("Bulk registration", None)],
            "form": form,
            "uploads": selectors.bulk_uploads_recent(),
            "columns": [(c, COLUMN_LABELS[c], c in OPTIONAL_COLUMNS) for c in COLUMNS],
            "max_rows": settings.BULK_MAX_ROWS,
            "max_megabytes": settings.BULK_MAX_BYTES / 1_048_576,
        },
    )


@require_GET
@permission_required(VIEW, raise_exception=True)
def detail(request, pk: int):
    """The preview of an upload waiting for confirmation; the progress of a confirmed one."""
    upload_ = get_object_or_404(BulkUpload.objects.select_related("created_by", "confirmed_by"), pk=pk)
    confirmed = upload_.status == BulkUpload.Status.CONFIRMED
    tabs = CONFIRMED_TABS if confirmed else TABS
    default = "all" if confirmed or not (upload_.invalid_count or upload_.duplicate_count) else "problems"
    show = request.GET.get("show") if request.GET.get("show") in dict(tabs) else default
    page = FastPaginator(selectors.bulk_rows(upload=upload_, show=show), PAGE_SIZE).get_page(request.GET.get("page"))
    shown = list(page.object_list)
    # The rows are patient data as typed, and matched rows name a stored patient.
    phi_access_record(request=request, action="list", model=BulkRow, ids=shown)
    matched = [row.patient_id for row in shown if row.patient_id]
    if matched:
        phi_access_record(request=request, action="list", model=Patient, ids=matched)
    return render(
        request,
        "bulk/progress.html" if confirmed else "bulk/preview.html",
        {
            "title": str(upload_),
            "breadcrumbs": _crumbs((str(upload_), None)),
            "upload": upload_,
            "same_file_before": selectors.bulk_upload_same_file_before(upload=upload_),
            "progress": selectors.bulk_upload_progress(upload=upload_) if confirmed else None,
            "tabs": tabs,
            "show": show,
            "page_obj": page,
            "rows": [(row, _cells(row), row.errors.get(ROW)) for row in shown],
            "column_labels": [COLUMN_LABELS[c] for c in COLUMNS],
            "can_register": request.user.has_perms(REGISTER),
            # Rows still to be saved and nothing saved for a while: their task was lost.
            "can_resume": confirmed
            and upload_.valid_count > upload_.registered_count
            and upload_.updated_at < timezone.now() - RESUME_AFTER,
            # The progress page stops polling after this long, so an unattended
            # screen is still signed out by the idle timeout.
            "poll_for_seconds": settings.SESSION_IDLE_TIMEOUT,
        },
    )


@require_POST
@permission_required(REGISTER, raise_exception=True)
def confirm(request, pk: int):
    get_object_or_404(BulkUpload, pk=pk)
    try:
        confirmed = bulk_upload_confirm(upload_id=pk, actor=request.user)
    except BulkUploadError as exc:
        messages.info(request, str(exc))
    else:
        saving = confirmed.valid_count - confirmed.registered_count
        if saving:
            messages.success(
                request,
                f"{saving} kit registration{'s are' if saving != 1 else ' is'} being saved in the background, then "
                "sent to the lab. This page follows them.",
            )
        else:
            messages.success(
                request,
                f"{confirmed.registered_count} kit registration{'s' if confirmed.registered_count != 1 else ''} "
                "saved; they are being sent to the lab.",
            )
    return redirect("bulk:detail", pk=pk)


@require_POST
@permission_required(REGISTER, raise_exception=True)
def cancel(request, pk: int):
    get_object_or_404(BulkUpload, pk=pk)
    try:
        bulk_upload_cancel(upload_id=pk, actor=request.user)
    except BulkUploadError as exc:
        messages.error(request, str(exc))
        return redirect("bulk:detail", pk=pk)
    messages.info(request, "Upload cancelled: nothing was registered and its rows were deleted.")
    return redirect("bulk:upload")


@require_GET
@never_cache
@permission_required(VIEW, raise_exception=True)
def progress(request, pk: int):
    """Counts only (no patient data), polled by static/js/bulk_progress.js."""
    upload_ = get_object_or_404(BulkUpload, pk=pk)
    return JsonResponse({"status": upload_.status, **selectors.bulk_upload_progress(upload=upload_)})


@require_GET
@permission_required(VIEW, raise_exception=True)
def rows_to_fix(request, pk: int):
    upload_ = get_object_or_404(BulkUpload, pk=pk)
    phi_access_record(
        request=request, action="export", model=BulkRow, ids=selectors.bulk_rows(upload=upload_, show="failed")
    )
    return csv_response(
        f"bulk-upload-{upload_.pk}-rows-to-fix.csv",
        selectors.ROWS_TO_FIX_HEADER,
        selectors.bulk_rows_to_fix(upload=upload_),
    )
