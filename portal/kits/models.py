import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Upper

from portal.core.models import TimeStampedModel
from portal.core.states import Submission


class KitRegistration(TimeStampedModel):
    """Local mirror of a kit registered to a patient against an order."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="registrations")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="registrations")
    upstream_id = models.BigIntegerField("Lab registration id", null=True, blank=True, unique=True)
    kit_id = models.CharField("Kit id", max_length=64, null=True, blank=True, unique=True)
    upstream_user_id = models.BigIntegerField(null=True, blank=True)
    # The partner's state verbatim ("registred" is stored as "registered", NOTES.md point 12).
    state = models.CharField(max_length=64, blank=True)
    submission_status = models.CharField(max_length=16, choices=Submission.choices, default=Submission.QUEUED)
    submit_attempts = models.PositiveIntegerField(default=0)
    submitting_since = models.DateTimeField(null=True, blank=True)
    last_error_class = models.CharField(max_length=64, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # The id to poll the result with (NOTES.md point 15): by default the
    # registration's own upstream id; staff may set or correct it.
    result_upstream_id = models.BigIntegerField("Result id", null=True, blank=True)
    raw_payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    registered_at = models.DateTimeField(null=True, blank=True, db_index=True)
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="registration_newest"),
            models.Index(fields=["submission_status", "-created_at"]),
            # The kit lookup matches case-insensitively (a scanner may type either case).
            models.Index(Upper("kit_id"), name="kit_id_upper"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(submission_status="accepted") | models.Q(upstream_id__isnull=False),
                name="registration_accepted_has_upstream_id",
            ),
        ]

    def __str__(self) -> str:
        return f"Kit {self.kit_id}" if self.kit_id else f"Kit registration #{self.pk} (not sent yet)"
