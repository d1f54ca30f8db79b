"""Sending a locally saved record to the partner: claiming it, and recording how it went.

Orders and kit registrations share these rules:
- the record is saved before any call, so nothing staff typed is lost;
- one sender at a time: a conditional UPDATE claims the row (queued/failed ->
  submitting), so a double click, two workers or a redelivered task send it once;
- a POST whose outcome is unknown is never repeated blindly: the record is
  marked "needs review" for a person to decide.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from portal.core.states import SUBMISSION_RETRYABLE, Submission
from portal.upstream.errors import (
    UpstreamAuthFailed,
    UpstreamError,
    UpstreamOutcomeUnknown,
    UpstreamRejected,
)

logger = logging.getLogger(__name__)


def submission_claim(model, pk: int) -> bool:
    """Atomically move a queued or failed record to "submitting". True if this caller won."""
    now = timezone.now()
    claimed = model.objects.filter(pk=pk, submission_status__in=SUBMISSION_RETRYABLE).update(
        submission_status=Submission.SUBMITTING,
        submitting_since=now,
        submit_attempts=F("submit_attempts") + 1,
        updated_at=now,
    )
    return claimed == 1


def submission_status_for_error(exc: UpstreamError) -> str:
    """What a failed call means for the record: retry later, ask a person, or fix the data."""
    if isinstance(exc, UpstreamOutcomeUnknown):
        return Submission.NEEDS_REVIEW
    if isinstance(exc, UpstreamRejected):
        return Submission.REJECTED
    return Submission.FAILED


def submission_record_failure(obj, exc: UpstreamError) -> None:
    """Store the error on the record (class and a staff-readable message, no PHI) and save it."""
    obj.submission_status = submission_status_for_error(exc)
    obj.last_error_class = type(exc).__name__
    message = str(exc)
    if isinstance(exc, UpstreamRejected) and exc.partner_message:
        # The partner's own words help staff fix the data; kept in the database
        # and shown on staff pages, never logged (they may echo what we sent).
        message = f"{message} The lab said: {exc.partner_message}"
    obj.last_error = message[:500]
    obj.submitting_since = None
    obj.save(
        update_fields=[
            "submission_status",
            "last_error_class",
            "last_error",
            "submitting_since",
            "updated_at",
        ]
    )
    level = logging.ERROR if isinstance(exc, UpstreamAuthFailed) else logging.WARNING
    logger.log(
        level,
        "submission of %s %s failed: %s -> %s",
        obj._meta.label,
        obj.pk,
        type(exc).__name__,
        obj.submission_status,
    )


def submissions_mark_stale(model) -> int:
    """Records stuck in "submitting" (their worker died mid-call) may exist upstream:
    mark them for review instead of sending them again. Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=settings.SUBMISSION_STALE_AFTER)
    return model.objects.filter(submission_status=Submission.SUBMITTING, submitting_since__lt=cutoff).update(
        submission_status=Submission.NEEDS_REVIEW,
        last_error_class="Interrupted",
        last_error="The portal stopped while sending this record; it may exist at the lab. Check before retrying.",
        submitting_since=None,
        updated_at=timezone.now(),
    )
