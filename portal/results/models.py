from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from portal.core.models import TimeStampedModel
from portal.core.states import FINAL, Status


def overdue_cutoff(now=None):
    """Kits registered before this and still not final are overdue."""
    return (now or timezone.now()) - timedelta(days=settings.RESULT_OVERDUE_AFTER)


class ResultQuerySet(models.QuerySet):
    def not_final(self):
        return self.exclude(status__in=FINAL)


class Result(TimeStampedModel):
    """Local mirror of the lab result of one kit registration, polled until final."""

    registration = models.OneToOneField("kits.KitRegistration", on_delete=models.PROTECT, related_name="result")
    upstream_id = models.BigIntegerField("Lab result id", unique=True)
    state = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    ready_at = models.DateTimeField(null=True, blank=True)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True)
    poll_count = models.PositiveIntegerField(default=0)
    # Set while a poller owns the row; a claim older than its lease is taken over.
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error_class = models.CharField(max_length=64, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    raw_payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    objects = ResultQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The list's order, newest first, and its status filter (portal/core/pagination.py
            # reads a page's ids from these indexes alone).
            models.Index(fields=["-created_at", "-id"], name="result_newest"),
            models.Index(fields=["status", "-created_at", "-id"], name="result_status_newest"),
            models.Index(fields=["-ready_at"], name="result_ready_at", condition=models.Q(ready_at__isnull=False)),
            models.Index(
                fields=["next_poll_at"],
                name="result_poll_due",
                condition=~models.Q(status__in=["ready", "failed", "completed"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status="ready") | models.Q(ready_at__isnull=False),
                name="result_ready_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"Result {self.upstream_id}"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def is_overdue(self) -> bool:
        """Still waiting for the lab RESULT_OVERDUE_AFTER days after the kit was
        registered (the same rule as `results_overdue_q`, which filters by it)."""
        registered_at = self.registration.registered_at
        return not self.is_final and registered_at is not None and registered_at < overdue_cutoff()
