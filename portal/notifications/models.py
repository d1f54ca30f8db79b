from django.conf import settings
from django.db import models

from portal.core.models import TimeStampedModel


class Notification(TimeStampedModel):
    """One email to a patient. At most one automatic one per result and kind
    (a unique constraint decides); staff resends are extra rows, marked as such."""

    class Kind(models.TextChoices):
        RESULTS_READY = "results_ready", "Results ready"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENDING = "sending", "Being sent"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed - resend possible"

    result = models.ForeignKey("results.Result", on_delete=models.PROTECT, related_name="notifications")
    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.RESULTS_READY)
    recipient = models.EmailField(max_length=254)
    template = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    sending_since = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    is_resend = models.BooleanField(default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["result", "kind"],
                condition=models.Q(is_resend=False),
                name="one_automatic_notification",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for result {self.result_id} ({self.get_status_display()})"
