"""Result services: create the local mirror, poll the lab, apply what it says."""

from __future__ import annotations

import contextvars
import logging
import random
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import Q
from django.utils import timezone

from portal.core.states import FINAL, RESULT_STATES, Move, Status, record_state_change, status_for
from portal.results.models import Result
from portal.upstream import calllog
from portal.upstream.client import get_client
from portal.upstream.errors import UpstreamError, UpstreamNotFound

logger = logging.getLogger(__name__)


def result_upstream_id_for(registration) -> int | None:
    """The id to poll a registration's result with (NOTES.md point 15): the id staff
    set by hand when there is one, else the registration's own lab id."""
    return registration.result_upstream_id or registration.upstream_id


def result_create_for_registration(registration, *, actor=None) -> Result | None:
    """Create (or re-point) the registration's result so the poller picks it up now."""
    upstream_id = result_upstream_id_for(registration)
    if upstream_id is None:
        return None
    result, created = Result.objects.get_or_create(
        registration=registration, defaults={"upstream_id": upstream_id, "next_poll_at": timezone.now()}
    )
    if not created and result.upstream_id != upstream_id:
        result.upstream_id = upstream_id
        result.next_poll_at = timezone.now()
        result.save(update_fields=["upstream_id", "next_poll_at", "updated_at"])
        record_state_change(
            result,
            Move(result.state, result.state, result.status, result.status),
            source="staff",
            actor=actor,
            note=f"Result id set to {upstream_id}",
        )
    return result


def next_poll_delay(*, poll_count: int, registered_at: datetime | None, now: datetime) -> timedelta:
    """Frequent at first, slower for results that stay pending, capped; overdue
    results are polled at the cap. A little jitter spreads the load."""
    base = settings.RESULT_POLL_INTERVAL
    cap = settings.RESULT_POLL_MAX_INTERVAL
    overdue = registered_at and now - registered_at > timedelta(days=settings.RESULT_OVERDUE_AFTER)
    seconds = cap if overdue else min(cap, base * 2 ** max(0, (poll_count - 12) // 6))
    return timedelta(seconds=seconds * random.uniform(0.9, 1.1))  # noqa: S311 - jitter, not security


@transaction.atomic
def result_apply_state(
    *, result_id: int, state: str, raw: dict, source: str = "sync", actor=None, now: datetime | None = None
) -> Result:
    """Store a state read from the lab. Never moves the result backwards; the move to
    `ready` and the creation of the patient's notification happen in this one transaction."""
    from portal.notifications.services import notification_create_for_ready

    now = now or timezone.now()
    result = Result.objects.select_for_update().select_related("registration").get(pk=result_id)
    new_status = status_for(state, RESULT_STATES)
    move = Move(result.state, state[:64], result.status, new_status)
    changed = move.changes_anything and not move.is_backwards
    result.last_polled_at = now
    result.poll_count += 1
    result.claimed_until = None
    result.last_error_class = result.last_error = ""
    result.raw_payload = raw
    if move.is_backwards:
        logger.info("result %s: ignored stale state read (%s -> %s)", result.pk, result.status, new_status)
    elif move.changes_anything:
        if new_status == Status.UNKNOWN and result.status != Status.UNKNOWN:
            logger.warning("result %s: unknown upstream state %r", result.pk, state[:64])
        result.state, result.status = move.new_state, new_status
        record_state_change(result, move, source=source, actor=actor)
        if new_status == Status.READY and result.ready_at is None:
            result.ready_at = now
            notification_create_for_ready(result)
    result.next_poll_at = (
        None
        if result.status in FINAL
        else now
        + next_poll_delay(poll_count=result.poll_count, registered_at=result.registration.registered_at, now=now)
    )
    if changed:
        result.save()  # audited (django-auditlog), like every change of a result's state
    else:
        # Most polls: the lab says what it said before. Only the poll's bookkeeping
        # (and the lab's latest payload) change, none of it audited: one UPDATE, without
        # the audit log's read of the old row (a third of the poller's time per result).
        result.updated_at = now
        Result.objects.filter(pk=result.pk).update(
            **{name: getattr(result, name) for name in POLL_BOOKKEEPING_FIELDS}, updated_at=now
        )
    return result


# What a poll writes when the state does not change.
POLL_BOOKKEEPING_FIELDS = (
    "last_polled_at",
    "poll_count",
    "claimed_until",
    "last_error_class",
    "last_error",
    "raw_payload",
    "next_poll_at",
)


def result_record_error(*, result_id: int, exc: UpstreamError, now: datetime | None = None) -> None:
    """A poll failed: keep the error for staff and try again later (a 404 waits longest)."""
    now = now or timezone.now()
    delay = settings.RESULT_POLL_MAX_INTERVAL if isinstance(exc, UpstreamNotFound) else settings.RESULT_POLL_INTERVAL
    Result.objects.filter(pk=result_id).update(
        last_error_class=type(exc).__name__,
        last_error=str(exc)[:500],
        last_polled_at=now,
        next_poll_at=now + timedelta(seconds=delay),
        claimed_until=None,
        updated_at=now,
    )
    logger.warning("result %s: poll failed: %s", result_id, type(exc).__name__)


def result_refresh(*, result_id: int, actor=None) -> Result:
    """Poll one result now (staff's "refresh" button, or the sync command)."""
    result = Result.objects.get(pk=result_id)
    try:
        upstream = get_client().get_result(result.upstream_id)
    except UpstreamError as exc:
        result_record_error(result_id=result_id, exc=exc)
        raise
    return result_apply_state(
        result_id=result_id,
        state=upstream.state,
        raw=upstream.raw,
        source="staff" if actor else "sync",
        actor=actor,
    )


def results_claim_due(*, limit: int, now: datetime | None = None) -> list[int]:
    """Claim up to `limit` results that are due for a poll, so no other poller takes
    them until the lease ends. Two workers or two beat processes never poll the same
    result at once: row locks skip what another claimer holds (PostgreSQL), or the
    claim is a conditional UPDATE whose row count decides (any database)."""
    now = now or timezone.now()
    lease_until = now + timedelta(seconds=settings.POLL_CLAIM_SECONDS)
    due = (
        Result.objects.not_final()
        .filter(next_poll_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_poll_at")
    )
    if connection.features.has_select_for_update_skip_locked:
        with transaction.atomic():
            ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:limit])
            Result.objects.filter(id__in=ids).update(claimed_until=lease_until)
        return ids
    claimed = []
    for result_id in due.values_list("id", flat=True)[:limit]:
        won = (
            Result.objects.filter(pk=result_id)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .update(claimed_until=lease_until)
        )
        if won:
            claimed.append(result_id)
    return claimed


def _fetch_one(client, upstream_id: int):
    try:
        return client.get_result(upstream_id), None
    except UpstreamError as exc:
        return None, exc


def _fetch_in_thread(client, upstream_id: int):
    """`_fetch_one` in a pool thread. The call log is buffered and the token kept in
    memory, so the call normally touches no database. Should something still open
    a connection in this thread (a token refresh through the database cache, once
    per token lifetime), it is closed here, when the task ends, so none leaks;
    checking costs nothing when there is none."""
    try:
        return _fetch_one(client, upstream_id)
    finally:
        if any(conn.connection is not None for conn in connections.all(initialized_only=True)):
            connections.close_all()


def _fetch_results(client, ids: list[int], upstream_ids: dict[int, int], concurrency: int):
    """Yield (result id, upstream result or None, error or None) as answers arrive,
    with at most `concurrency` calls in flight (inline when it is 1). Each pool task
    runs in a copy of the caller's context, so it sees the caller's call-log buffer."""
    if concurrency <= 1:
        for rid in ids:
            upstream, exc = _fetch_one(client, upstream_ids[rid])
            yield rid, upstream, exc
        return
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="poll") as pool:
        futures = {
            pool.submit(contextvars.copy_context().run, _fetch_in_thread, client, upstream_ids[rid]): rid for rid in ids
        }
        for future in as_completed(futures):
            upstream, exc = future.result()
            yield futures[future], upstream, exc


@dataclass
class PollReport:
    claimed: int = 0
    polled: int = 0
    failed: int = 0
    became_ready: int = 0
    errors: dict[str, int] = field(default_factory=dict)


def results_poll_due(*, limit: int | None = None, concurrency: int | None = None) -> PollReport:
    """One poll cycle: claim a bounded batch of due results, ask the lab about them
    with at most `concurrency` calls in flight, and store each answer.

    The calls run in pool threads that do not touch the database: their call-log
    rows are collected and inserted together at the end of the batch (even if it
    fails half-way), and every result is written from this thread. Memory stays
    flat however many results are due.
    """
    limit = limit or settings.POLL_BATCH_SIZE
    concurrency = concurrency or settings.EVERLYWELL_CONCURRENCY
    report = PollReport()
    ids = results_claim_due(limit=limit)
    report.claimed = len(ids)
    if not ids:
        return report
    upstream_ids = dict(Result.objects.filter(id__in=ids).values_list("id", "upstream_id"))
    client = get_client()
    # `closing` ends the pool (waiting for calls in flight) before the buffer is written.
    with calllog.buffered(), closing(_fetch_results(client, ids, upstream_ids, concurrency)) as fetched:
        for result_id, upstream, exc in fetched:
            if exc is not None:
                result_record_error(result_id=result_id, exc=exc)
                report.failed += 1
                report.errors[type(exc).__name__] = report.errors.get(type(exc).__name__, 0) + 1
                continue
            result = result_apply_state(result_id=result_id, state=upstream.state, raw=upstream.raw)
            report.polled += 1
            if result.status == Status.READY and result.ready_at and result.last_polled_at == result.ready_at:
                report.became_ready += 1
    logger.info(
        "poll cycle: claimed=%s polled=%s failed=%s ready=%s",
        report.claimed,
        report.polled,
        report.failed,
        report.became_ready,
    )
    return report
