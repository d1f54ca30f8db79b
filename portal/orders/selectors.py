"""Reads of orders for the staff pages: querysets with their joins already set,
so a list page runs the same number of queries for 1 row as for 50."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from portal.core.states import Submission
from portal.kits.models import KitRegistration
from portal.kits.selectors import registration_count
from portal.orders.models import Order


def order_list() -> QuerySet[Order]:
    """Orders for the list page and its CSV export, newest first, with their kit count."""
    return (
        Order.objects.select_related("created_by")
        .annotate(registration_count=registration_count(per="order"))
        .order_by("-created_at", "-id")
    )


def order_get_for_detail(*, order_id: int) -> Order:
    """One order with its kit registrations (patient and result loaded). Raises Order.DoesNotExist."""
    registrations = KitRegistration.objects.select_related("patient", "result").order_by("-created_at", "-id")
    return (
        Order.objects.select_related("created_by")
        .prefetch_related(Prefetch("registrations", queryset=registrations))
        .get(pk=order_id)
    )


def order_find_by_upstream_id(*, upstream_id: int) -> Order | None:
    return Order.objects.filter(upstream_id=upstream_id).first()


def orders_open_for_registration() -> QuerySet[Order]:
    """Orders the lab accepted, which kits can be registered against right away."""
    return Order.objects.filter(submission_status=Submission.ACCEPTED).exclude(upstream_id=None)
