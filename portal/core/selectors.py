"""Reads for the dashboard: counts by status and what needs a person's attention.

A fixed number of queries whatever the number of records: one aggregate per model
for the counts, one bounded query per kind of problem for the attention list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q
from django.utils import timezone

from portal.core.states import ORDER_STATES, RESULT_STATES, SUBMISSION_ATTENTION, Status, Submission
from portal.kits.models import KitRegistration
from portal.notifications.models import Notification
from portal.orders.models import Order
from portal.results.models import Result
from portal.results.selectors import results_for_attention, results_recently_ready


@dataclass(frozen=True)
class StatusCount:
    value: str
    label: str
    count: int


def _counts(queryset, field: str, choices, *, reachable=None) -> list[StatusCount]:
    """Counts for every status a record of this kind can have (zeros included), and
    for any other status that somehow has rows."""
    found = {row[field]: row["n"] for row in queryset.order_by().values(field).annotate(n=Count("id"))}
    return [
        StatusCount(value, label, found.get(value, 0))
        for value, label in choices
        if reachable is None or value in reachable or found.get(value)
    ]


# Orders are never "ready" and results never "completed": those rows would always read 0.
_ORDER_STATUSES = {Status.PENDING, Status.UNKNOWN, *ORDER_STATES.values()}
_RESULT_STATUSES = {Status.PENDING, Status.UNKNOWN, *RESULT_STATES.values()}


def dashboard_counts() -> dict[str, list[StatusCount]]:
    """Orders and results by local status, kit registrations by submission status,
    every status listed (with 0 when there is none). One query per model."""
    return {
        "orders": _counts(Order.objects.all(), "status", Status.choices, reachable=_ORDER_STATUSES),
        "registrations": _counts(KitRegistration.objects.all(), "submission_status", Submission.choices),
        "results": _counts(Result.objects.all(), "status", Status.choices, reachable=_RESULT_STATUSES),
    }


@dataclass(frozen=True)
class AttentionItem:
    """One thing on the "needs attention" list, with the page that resolves it."""

    kind: str  # "Order", "Kit registration", "Result", "Email"
    label: str
    reason: str
    badge: str  # a status code, for the badge colour
    url_name: str
    pk: int
    when: datetime
    detail: str = ""


def _order_item(order: Order) -> AttentionItem:
    if order.submission_status in SUBMISSION_ATTENTION:
        reason, badge = order.get_submission_status_display(), order.submission_status
    else:
        reason, badge = f"Unknown lab state “{order.state}”", Status.UNKNOWN
    return AttentionItem(
        "Order", str(order), reason, badge, "orders:detail", order.pk, order.updated_at, order.last_error
    )


def _registration_item(registration: KitRegistration) -> AttentionItem:
    patient = registration.patient
    return AttentionItem(
        "Kit registration",
        f"{registration} · {patient.last_name}, {patient.first_name}",
        registration.get_submission_status_display(),
        registration.submission_status,
        "kits:detail",
        registration.pk,
        registration.updated_at,
        registration.last_error,
    )


def _result_item(result: Result) -> AttentionItem:
    patient = result.registration.patient
    if result.status == Status.UNKNOWN:
        reason, badge = f"Unknown lab state “{result.state}”", Status.UNKNOWN
    else:
        reason, badge = "Overdue", Submission.FAILED
    return AttentionItem(
        "Result",
        f"{result.registration} · {patient.last_name}, {patient.first_name}",
        reason,
        badge,
        "results:detail",
        result.pk,
        result.updated_at,
        result.last_error,
    )


def _notification_item(notification: Notification) -> AttentionItem:
    patient = notification.result.registration.patient
    return AttentionItem(
        "Email",
        f"{notification.result.registration} · {patient.last_name}, {patient.first_name}",
        "Email to the patient failed",
        Notification.Status.FAILED,
        "results:detail",
        notification.result_id,
        notification.updated_at,
        notification.last_error,
    )


def dashboard_attention(*, limit: int = 20, now: datetime | None = None) -> tuple[list[AttentionItem], bool]:
    """What staff should look at, most recently changed first: failed, unknown-outcome
    and rejected submissions (orders and kit registrations), orders and results in a
    state we do not know, overdue results and failed emails. Four queries, each
    bounded; returns the items (at most `limit`) and whether there were more."""
    now = now or timezone.now()
    orders = Order.objects.filter(Q(submission_status__in=SUBMISSION_ATTENTION) | Q(status=Status.UNKNOWN)).order_by(
        "-updated_at", "-id"
    )[: limit + 1]
    registrations = (
        KitRegistration.objects.filter(submission_status__in=SUBMISSION_ATTENTION)
        .select_related("patient")
        .order_by("-updated_at", "-id")[: limit + 1]
    )
    notifications = (
        Notification.objects.filter(status=Notification.Status.FAILED)
        .select_related("result__registration__patient")
        .order_by("-updated_at", "-id")[: limit + 1]
    )
    items = (
        [_order_item(o) for o in orders]
        + [_registration_item(r) for r in registrations]
        + [_result_item(r) for r in results_for_attention(limit=limit + 1, now=now)]
        + [_notification_item(n) for n in notifications]
    )
    items.sort(key=lambda item: item.when, reverse=True)
    return items[:limit], len(items) > limit


def dashboard_recently_ready(*, days: int = 7, limit: int = 10) -> list[Result]:
    """Results that became ready in the last `days` days, newest first."""
    return list(results_recently_ready(days=days, limit=limit))
