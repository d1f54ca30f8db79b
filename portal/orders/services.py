"""Order services: create, submit, import, refresh, and settle a review."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from portal.core.states import FINAL, ORDER_STATES, Move, Submission, record_state_change, status_for
from portal.core.submission import submission_claim, submission_record_failure
from portal.orders.models import Order
from portal.upstream.client import get_client
from portal.upstream.errors import UpstreamError
from portal.upstream.types import OrderIn, UpstreamOrder

logger = logging.getLogger(__name__)


class OrderError(Exception):
    """A staff-facing problem with an order request."""


def order_create(*, amount: Decimal, created_by=None, idempotency_key: uuid.UUID | None = None) -> Order:
    """Save a new order locally (queued for the lab). The same idempotency key returns
    the same order, so a double click or a resubmitted form creates one record."""
    key = idempotency_key or uuid.uuid4()
    existing = Order.objects.filter(idempotency_key=key).first()
    if existing:
        return existing
    try:
        with transaction.atomic():
            order = Order.objects.create(amount=amount, created_by=created_by, idempotency_key=key)
    except IntegrityError:
        # A concurrent request with the same key won the race: use its order.
        return Order.objects.get(idempotency_key=key)
    logger.info("order %s created locally", order.pk)
    return order


def order_enqueue_submit(order: Order) -> None:
    """Send the order in the background once the current transaction commits."""
    from portal.orders.tasks import order_submit_task

    transaction.on_commit(lambda: order_submit_task.delay(order.pk), robust=True)


def order_submit(*, order_id: int) -> Order:
    """Create the order at the lab, once. Safe to call twice or concurrently: only
    the caller that claims the queued/failed order sends it."""
    if not submission_claim(Order, order_id):
        return Order.objects.get(pk=order_id)
    order = Order.objects.get(pk=order_id)
    try:
        upstream = get_client().create_order(OrderIn(amount=order.amount))
    except UpstreamError as exc:
        submission_record_failure(order, exc)
        return order
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        order.upstream_id = upstream.id
        order.submission_status = Submission.ACCEPTED
        order.submitting_since = None
        order.last_error_class = order.last_error = ""
        _order_apply(order, upstream, source="submission")
        _registrations_enqueue_waiting(order)
    logger.info("order %s accepted upstream as %s", order.pk, order.upstream_id)
    return order


def order_import(*, upstream_id: int, amount: Decimal, created_by=None) -> Order:
    """Mirror an order that was created at the lab outside the portal (NOTES.md point 7).

    The lab's Get Order answers no amount, so staff enter it from the invoice."""
    if Order.objects.filter(upstream_id=upstream_id).exists():
        raise OrderError(f"Lab order {upstream_id} is in the portal already.")
    upstream = get_client().get_order(upstream_id)
    with transaction.atomic():
        order = Order.objects.create(
            amount=upstream.amount or amount,
            upstream_id=upstream.id,
            submission_status=Submission.ACCEPTED,
            created_by=created_by,
        )
        _order_apply(order, upstream, source="staff", actor=created_by)
    return order


def order_refresh(*, order_id: int, actor=None) -> Order:
    """Read the order's state from the lab and store it. Upstream errors propagate."""
    order = Order.objects.get(pk=order_id)
    if not order.upstream_id:
        raise OrderError("This order has not been accepted by the lab yet; there is nothing to refresh.")
    upstream = get_client().get_order(order.upstream_id)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        _order_apply(order, upstream, source="staff" if actor else "sync", actor=actor)
    return order


def order_retry_submission(*, order_id: int, actor=None) -> Order:
    """Staff asked to send a failed or rejected order again."""
    updated = Order.objects.filter(pk=order_id, submission_status__in=[Submission.FAILED, Submission.REJECTED]).update(
        submission_status=Submission.QUEUED, updated_at=timezone.now()
    )
    if not updated:
        raise OrderError("Only an order whose submission failed or was rejected can be sent again.")
    order = Order.objects.get(pk=order_id)
    record_state_change(
        order,
        Move(order.state, order.state, order.status, order.status),
        source="staff" if actor else "system",
        actor=actor,
        note="Asked to send the order to the lab again",
    )
    return order_submit(order_id=order_id)


def order_resolve_review(*, order_id: int, actor, upstream_id: int | None) -> Order:
    """Settle an order whose submission outcome was unknown. With the lab's order id
    (found by a person at the lab) the order is linked; without it, a person has
    confirmed it does not exist upstream and it is queued to be sent again."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if order.submission_status != Submission.NEEDS_REVIEW:
            raise OrderError("This order does not need review.")
        if upstream_id:
            if Order.objects.filter(upstream_id=upstream_id).exclude(pk=order.pk).exists():
                raise OrderError(f"Lab order {upstream_id} belongs to another order in the portal.")
            order.upstream_id = upstream_id
            order.submission_status = Submission.ACCEPTED
            order.next_sync_at = timezone.now()
            note = f"Linked to lab order {upstream_id} after review"
        else:
            order.submission_status = Submission.QUEUED
            note = "Confirmed not created at the lab; queued to be sent again"
        order.last_error_class = order.last_error = ""
        order.save()
        record_state_change(
            order,
            Move(order.state, order.state, order.status, order.status),
            source="staff",
            actor=actor,
            note=note,
        )
        if order.submission_status == Submission.QUEUED:
            order_enqueue_submit(order)
    return order


def _order_apply(order: Order, upstream: UpstreamOrder, *, source: str, actor=None) -> None:
    """Store what the lab says about the order (inside the caller's transaction)."""
    now = timezone.now()
    order.last_synced_at = now
    order.raw_payload = upstream.raw
    if upstream.state is not None:
        new_status = status_for(upstream.state, ORDER_STATES)
        move = Move(order.state, upstream.state, order.status, new_status)
        if move.is_backwards:
            logger.info("order %s: ignored stale state read (%s -> %s)", order.pk, order.status, new_status)
        elif move.changes_anything:
            if new_status == "unknown" and order.status != "unknown":
                logger.warning("order %s: unknown upstream state %r", order.pk, upstream.state[:64])
            order.state, order.status = upstream.state[:64], new_status
            record_state_change(order, move, source=source, actor=actor)
    order.next_sync_at = None if order.status in FINAL else now + timedelta(seconds=settings.ORDER_POLL_INTERVAL)
    order.save()


def _registrations_enqueue_waiting(order: Order) -> None:
    """Kit registrations saved before their order was accepted can be sent now."""
    from portal.kits.services import registration_enqueue_submit

    for registration in order.registrations.filter(submission_status=Submission.QUEUED):
        registration_enqueue_submit(registration)


def orders_sync_due(*, limit: int = 100) -> int:
    """Refresh accepted orders whose next sync is due. Each order is claimed by moving
    its next sync time forward with a conditional UPDATE, so two pollers never sync
    the same order at once. Returns how many were refreshed."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.POLL_CLAIM_SECONDS)
    due = Order.objects.filter(submission_status=Submission.ACCEPTED, next_sync_at__lte=now)
    refreshed = 0
    for order_id in due.order_by("next_sync_at").values_list("id", flat=True)[:limit]:
        if not Order.objects.filter(pk=order_id, next_sync_at__lte=now).update(next_sync_at=lease):
            continue
        try:
            order_refresh(order_id=order_id)
        except UpstreamError as exc:
            Order.objects.filter(pk=order_id).update(
                last_error_class=type(exc).__name__, last_error=str(exc)[:500], updated_at=timezone.now()
            )
            continue
        refreshed += 1
    return refreshed
