"""A record of recent calls to the partner, for admins asking "why did this fail"."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

# The client's operations (the first argument of each `tracked(...)` in client.py).
OPERATIONS = ("issue_token", "create_order", "get_order", "register_kit", "get_result")


class UpstreamCall(models.Model):
    """One call to the partner's API, as the client saw it.

    Written by the client after every call (best effort). It holds ids, codes and
    timings only: never a request or response body, and never patient data.
    """

    class Outcome(models.TextChoices):
        OK = "ok", "OK"
        UNAVAILABLE = "UpstreamUnavailable", "Unavailable"
        REJECTED = "UpstreamRejected", "Rejected"
        NOT_FOUND = "UpstreamNotFound", "Not found"
        AUTH_FAILED = "UpstreamAuthFailed", "Authentication failed"
        PROTOCOL_ERROR = "UpstreamProtocolError", "Protocol error"
        OUTCOME_UNKNOWN = "UpstreamOutcomeUnknown", "Outcome unknown"
        ERROR = "UpstreamError", "Other error"

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    operation = models.CharField(max_length=40)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=200, help_text="Path template, e.g. /v1/results/{result_id}")
    object_id = models.CharField(
        max_length=40, blank=True, help_text="The id in the path, or the id the partner gave a new record"
    )
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Last HTTP status seen")
    outcome = models.CharField(max_length=40, choices=Outcome.choices)
    latency_ms = models.PositiveIntegerField()
    attempts = models.PositiveSmallIntegerField()
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "upstream call"
        indexes = [models.Index(fields=["operation", "-created_at"], name="upstream_call_op_created")]

    def __str__(self) -> str:
        return f"{self.operation} {self.outcome} ({self.created_at:%Y-%m-%d %H:%M:%S})"
