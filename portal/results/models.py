from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from portal.core.models import TimeStampedModel
from portal.core.states import FINAL, Status


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
            models.Index(fields=["status", "-created_at"]),
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
