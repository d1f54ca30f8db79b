import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from portal.core.models import TimeStampedModel
from portal.core.states import Status, Submission


class Order(TimeStampedModel):
    """Local mirror of an order (the partner's "invoice") for kits."""

    amount = models.DecimalField(max_digits=10, decimal_places=2)
    upstream_id = models.BigIntegerField("Lab order id", null=True, blank=True, unique=True)
    # The partner's state verbatim, and what it means to us.
    state = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    submission_status = models.CharField(max_length=16, choices=Submission.choices, default=Submission.QUEUED)
    submit_attempts = models.PositiveIntegerField(default=0)
    submitting_since = models.DateTimeField(null=True, blank=True)
    last_error_class = models.CharField(max_length=64, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    last_synced_at = models.DateTimeField(null=True, blank=True)
    next_sync_at = models.DateTimeField(null=True, blank=True)
    raw_payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    # One per rendered form: a double click or a resubmitted form finds the same order.
    idempotency_key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The list's order, newest first, and its status filter (portal/core/pagination.py
            # reads a page's ids from these indexes alone).
            models.Index(fields=["-created_at", "-id"], name="order_newest"),
            models.Index(fields=["status", "-created_at", "-id"], name="order_status_newest"),
            models.Index(fields=["submission_status", "-created_at"]),
            models.Index(
                fields=["next_sync_at"], name="order_sync_due", condition=models.Q(next_sync_at__isnull=False)
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="order_amount_positive"),
            models.CheckConstraint(
                condition=~models.Q(submission_status="accepted") | models.Q(upstream_id__isnull=False),
                name="order_accepted_has_upstream_id",
            ),
        ]

    def __str__(self) -> str:
        return f"Order {self.upstream_id}" if self.upstream_id else f"Order #{self.pk} (not sent yet)"

    @property
    def needs_attention(self) -> bool:
        return self.submission_status in (
            Submission.FAILED,
            Submission.NEEDS_REVIEW,
            Submission.REJECTED,
        ) or (self.status == Status.UNKNOWN)
