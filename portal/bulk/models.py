"""A CSV of kit registrations staff uploaded, and its rows.

Every value of a row is PHI: it lives in the database only (never in logs, URLs
or task arguments) and is shown on staff pages and in admin.
"""

from django.conf import settings
from django.db import models

from portal.core.models import TimeStampedModel


class BulkUpload(TimeStampedModel):
    """One uploaded file: previewed, then confirmed (its valid rows saved and sent) or cancelled."""

    class Status(models.TextChoices):
        PREVIEW = "preview", "Waiting for confirmation"
        CONFIRMED = "confirmed", "Confirmed"
        CANCELLED = "cancelled", "Cancelled"

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    file_name = models.CharField(max_length=255)
    # Tells staff "you uploaded this very file before" (the rows decide duplicates, not this).
    file_sha256 = models.CharField(max_length=64, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREVIEW)
    row_count = models.PositiveIntegerField(default=0)
    valid_count = models.PositiveIntegerField(default=0)
    invalid_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    # Of the valid rows: attached to an existing patient, and correcting a registration the lab rejected.
    matched_count = models.PositiveIntegerField(default=0)
    correction_count = models.PositiveIntegerField(default=0)
    registered_count = models.PositiveIntegerField(default=0)
    skipped_example = models.BooleanField(default=False)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Bulk upload #{self.pk}"


class BulkRow(models.Model):
    """One data row of an upload: what was typed, what it means, and what became of it."""

    class Outcome(models.TextChoices):
        VALID = "valid", "Ready to register"
        INVALID = "invalid", "Has errors"
        DUPLICATE = "duplicate", "Duplicate - skipped"
        REGISTERED = "registered", "Saved"

    upload = models.ForeignKey(BulkUpload, on_delete=models.CASCADE, related_name="rows")
    # The spreadsheet's row number: the header is row 1, the first data row is row 2.
    row_number = models.PositiveIntegerField()
    # The cells as typed, by column name (PHI).
    values = models.JSONField(default=dict)
    # The normalised values a valid row is registered with (PHI); empty for other rows.
    cleaned = models.JSONField(default=dict, blank=True)
    # {column name: message}; "" for a problem with the whole row.
    errors = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    # For a duplicate within the file: the row it repeats.
    duplicate_of = models.PositiveIntegerField(null=True, blank=True)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The existing patient (same email and date of birth) a valid row is attached to.
    patient = models.ForeignKey("patients.Patient", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The registration the row created, duplicates, or corrects (one the lab rejected).
    registration = models.ForeignKey(
        "kits.KitRegistration", null=True, blank=True, on_delete=models.SET_NULL, related_name="bulk_rows"
    )

    class Meta:
        ordering = ["upload", "row_number"]
        constraints = [models.UniqueConstraint(fields=["upload", "row_number"], name="bulk_row_number_unique")]
        indexes = [models.Index(fields=["upload", "outcome", "row_number"])]

    def __str__(self) -> str:
        return f"Row {self.row_number} of upload #{self.upload_id}"
