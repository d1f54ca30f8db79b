"""Local statuses, how upstream states map onto them, and the no-going-back rule.

The partner documents no vocabulary of states (NOTES.md points 6 and 14), so the
portal stores every state verbatim and maps the values it knows onto a small
local status. Which statuses may follow which is data, written here once.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import models


class Status(models.TextChoices):
    """Where a record stands upstream, in the portal's own words."""

    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"
    UNKNOWN = "unknown", "Unknown state"


class Submission(models.TextChoices):
    """Where the portal stands in sending a record staff saved to the partner."""

    QUEUED = "queued", "Waiting to be sent"
    SUBMITTING = "submitting", "Being sent"
    ACCEPTED = "accepted", "Accepted by the lab"
    FAILED = "failed", "Submission failed - retry"
    NEEDS_REVIEW = "needs_review", "Needs review - may exist upstream"
    REJECTED = "rejected", "Rejected by the lab"


SUBMISSION_RETRYABLE = (Submission.QUEUED, Submission.FAILED)
SUBMISSION_ATTENTION = (Submission.FAILED, Submission.NEEDS_REVIEW, Submission.REJECTED)

# Progress rank: a status is only replaced by one of equal or higher rank, so a
# stale or out-of-order read never moves a record backwards. Final statuses
# (rank 3) are never left. UNKNOWN ranks with IN_PROGRESS: a new, unknown state
# after "processing" is shown, but a late "pending" is not.
RANK = {
    Status.PENDING: 0,
    Status.IN_PROGRESS: 1,
    Status.UNKNOWN: 1,
    Status.COMPLETED: 3,
    Status.READY: 3,
    Status.FAILED: 3,
}
FINAL = frozenset(s for s, rank in RANK.items() if rank == 3)

ORDER_STATES = {
    "created": Status.PENDING,
    "pending": Status.PENDING,
    "processing": Status.IN_PROGRESS,
    "shipped": Status.IN_PROGRESS,
    "delivered": Status.COMPLETED,
    "completed": Status.COMPLETED,
    "fulfilled": Status.COMPLETED,
    "cancelled": Status.FAILED,
    "canceled": Status.FAILED,
    "failed": Status.FAILED,
}

RESULT_STATES = {
    "pending": Status.PENDING,
    "awaiting_sample": Status.PENDING,
    "registered": Status.PENDING,
    "received": Status.IN_PROGRESS,
    "processing": Status.IN_PROGRESS,
    "in_progress": Status.IN_PROGRESS,
    "ready": Status.READY,
    "failed": Status.FAILED,
    "rejected": Status.FAILED,
    "cancelled": Status.FAILED,
    "canceled": Status.FAILED,
}


def status_for(state: str, vocabulary: dict[str, Status]) -> Status:
    """The local status for an upstream state; UNKNOWN for a value we have not seen."""
    return vocabulary.get((state or "").strip().lower(), Status.UNKNOWN)


@dataclass(frozen=True)
class Move:
    """What applying an upstream state would do to a record."""

    old_state: str
    new_state: str
    old_status: str
    new_status: str

    @property
    def is_backwards(self) -> bool:
        return (self.old_status in FINAL and self.new_status != self.old_status) or RANK[
            Status(self.new_status)
        ] < RANK[Status(self.old_status)]

    @property
    def changes_anything(self) -> bool:
        return self.old_state != self.new_state or self.old_status != self.new_status


def record_state_change(obj, move: Move, *, source: str, actor=None, note: str = "") -> None:
    """Append a row to the timeline of `obj`."""
    from portal.core.models import StateChange

    StateChange.objects.create(
        content_type=ContentType.objects.get_for_model(obj),
        object_id=obj.pk,
        old_state=move.old_state,
        new_state=move.new_state,
        old_status=move.old_status,
        new_status=move.new_status,
        source=source,
        actor=actor,
        note=note[:300],
    )


def timeline(obj):
    """The state history of `obj`, oldest first, with actors loaded."""
    from portal.core.models import StateChange

    return StateChange.objects.filter(
        content_type=ContentType.objects.get_for_model(obj), object_id=obj.pk
    ).select_related("actor")
