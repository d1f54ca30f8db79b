"""Staff pages for orders: list, create, import, detail and its actions, CSV export.

Each view checks its permission, validates a form, calls a service and redirects
with a message; reads come from portal.orders.selectors.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from portal.audit.services import phi_access_record
from portal.core.exports import csv_response
from portal.core.pagination import FastPaginator
from portal.core.states import Submission, timeline
from portal.kits.models import KitRegistration
from portal.orders import selectors
from portal.orders.filters import OrderFilter
from portal.orders.forms import OrderCreateForm, OrderImportForm, OrderReviewForm
from portal.orders.models import Order
from portal.orders.services import (
    OrderError,
    order_create,
    order_import,
    order_refresh,
    order_resolve_review,
    order_retry_submission,
    order_submit,
)
from portal.upstream.errors import UpstreamError, UpstreamNotFound

PAGE_SIZE = 50
LAB_UNREACHABLE = "Saved. The lab could not be reached; the portal will retry automatically."


def _crumbs(*items):
    return [("Orders", reverse("orders:list")), *items]


def _say_submission_outcome(request, order: Order) -> None:
    """One message telling staff where a just-sent order stands."""
    status = order.submission_status
    if status == Submission.ACCEPTED:
        messages.success(request, f"Order created at the lab: lab order id {order.upstream_id}.")
    elif status == Submission.FAILED:
        messages.warning(request, LAB_UNREACHABLE)
    elif status == Submission.NEEDS_REVIEW:
        messages.warning(
            request,
            "Saved, but the lab did not confirm whether it received the order. It needs review: "
            "check with the lab before sending it again (see below).",
        )
    elif status == Submission.REJECTED:
        messages.error(request, f"Saved, but the lab refused the order: {order.last_error}")
    else:
        messages.info(request, "Saved. The order is being sent to the lab; refresh this page in a moment.")


def _filtered_orders(request):
    """The filter form and the orders it selects; none while the form has errors."""
    filterset = OrderFilter(request.GET, queryset=selectors.order_list())
    return filterset, filterset.qs if filterset.is_valid() else filterset.queryset.none()


@require_GET
@permission_required("orders.view_order", raise_exception=True)
def order_list(request):
    filterset, queryset = _filtered_orders(request)
    page = FastPaginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    filtering = any(request.GET.get(name) for name in ("q", "status", "submission_status"))
    return render(
        request,
        "orders/order_list.html",
        {
            "title": "Orders",
            "breadcrumbs": [("Orders", None)],
            "filter": filterset,
            "page_obj": page,
            "orders": page.object_list,
            "filtering": filtering,
        },
    )


@require_GET
@permission_required("orders.view_order", raise_exception=True)
def order_export(request):
    """The list as filtered (whatever page), streamed as CSV."""
    _, queryset = _filtered_orders(request)
    header = [
        "Portal id",
        "Lab order id",
        "Amount",
        "Lab state",
        "Status",
        "Submission",
        "Kits",
        "Created",
        "Created by",
        "Last synced",
        "Last error",
    ]
    status_labels = dict(Order._meta.get_field("status").choices)
    submission_labels = dict(Submission.choices)
    rows = queryset.values_list(
        "pk",
        "upstream_id",
        "amount",
        "state",
        "status",
        "submission_status",
        "registration_count",
        "created_at",
        "created_by__username",
        "last_synced_at",
        "last_error",
    ).iterator(chunk_size=1000)

    def lines():
        for pk, lab_id, amount, state, status, submission, kits, created, by, synced, error in rows:
            yield [
                pk,
                lab_id or "",
                amount,
                state,
                status_labels.get(status, status),
                submission_labels.get(submission, submission),
                kits,
                _local(created),
                by or "",
                _local(synced),
                error,
            ]

    return csv_response(f"orders-{timezone.localdate():%Y-%m-%d}.csv", header, lines())


def _local(value) -> str:
    """A timestamp in the clinic's time zone, as a spreadsheet reads it."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else ""


@require_http_methods(["GET", "POST"])
@permission_required("orders.add_order", raise_exception=True)
def order_create_view(request):
    if request.method == "POST":
        form = OrderCreateForm(request.POST)
        if form.is_valid():
            order = order_create(
                amount=form.cleaned_data["amount"],
                created_by=request.user,
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
            # Sent now, so staff see the lab's answer; the same key sends it once.
            order = order_submit(order_id=order.pk)
            _say_submission_outcome(request, order)
            return redirect("orders:detail", pk=order.pk)
    else:
        form = OrderCreateForm(initial={"idempotency_key": uuid.uuid4()})
    return render(
        request,
        "orders/order_form.html",
        {"title": "New order", "breadcrumbs": _crumbs(("New order", None)), "form": form},
    )


@require_http_methods(["GET", "POST"])
@permission_required("orders.add_order", raise_exception=True)
def order_import_view(request):
    """Mirror an order created at the lab outside the portal (NOTES.md point 7)."""
    if request.method == "POST":
        form = OrderImportForm(request.POST)
        if form.is_valid():
            upstream_id = form.cleaned_data["upstream_id"]
            try:
                order = order_import(
                    upstream_id=upstream_id, amount=form.cleaned_data["amount"], created_by=request.user
                )
            except UpstreamNotFound:
                form.add_error("upstream_id", f"The lab has no order with id {upstream_id}. Check the id.")
            except UpstreamError as exc:
                messages.error(request, f"The lab could not be reached, so the order was not imported: {exc}")
            except OrderError as exc:
                existing = selectors.order_find_by_upstream_id(upstream_id=upstream_id)
                if existing:  # e.g. a double click: the first click imported it
                    messages.info(request, str(exc))
                    return redirect("orders:detail", pk=existing.pk)
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Lab order {order.upstream_id} imported.")
                return redirect("orders:detail", pk=order.pk)
    else:
        form = OrderImportForm()
    return render(
        request,
        "orders/order_import.html",
        {"title": "Import an order from the lab", "breadcrumbs": _crumbs(("Import", None)), "form": form},
    )


def _get_order(pk: int) -> Order:
    try:
        return selectors.order_get_for_detail(order_id=pk)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None


def _render_detail(request, order: Order, *, review_form=None, status: int = 200):
    # The order's kits are listed with their patients' names.
    phi_access_record(request=request, action="list", model=KitRegistration, ids=order.registrations.all())
    return render(
        request,
        "orders/order_detail.html",
        {
            "title": str(order),
            "breadcrumbs": _crumbs((str(order), None)),
            "order": order,
            "registrations": order.registrations.all(),
            "timeline": timeline(order),
            "review_form": review_form or OrderReviewForm(),
            "can_retry": order.submission_status in (Submission.FAILED, Submission.REJECTED),
            "needs_review": order.submission_status == Submission.NEEDS_REVIEW,
            "can_register": order.submission_status != Submission.REJECTED,
        },
        status=status,
    )


@require_GET
@permission_required("orders.view_order", raise_exception=True)
def order_detail(request, pk: int):
    return _render_detail(request, _get_order(pk))


@require_POST
@permission_required("orders.change_order", raise_exception=True)
def order_refresh_view(request, pk: int):
    order = _get_order(pk)
    try:
        order = order_refresh(order_id=order.pk, actor=request.user)
    except OrderError as exc:
        messages.error(request, str(exc))
    except UpstreamNotFound:
        messages.error(request, f"The lab does not know order {order.upstream_id}. Check it with the lab.")
    except UpstreamError as exc:
        messages.error(request, f"The lab could not be reached; the order was not refreshed ({exc}). Try again later.")
    else:
        messages.success(request, f"Refreshed from the lab: state “{order.state or '-'}”.")
    return redirect("orders:detail", pk=order.pk)


@require_POST
@permission_required("orders.change_order", raise_exception=True)
def order_retry_view(request, pk: int):
    order = _get_order(pk)
    try:
        order = order_retry_submission(order_id=order.pk, actor=request.user)
    except OrderError as exc:
        messages.error(request, str(exc))
    else:
        _say_submission_outcome(request, order)
    return redirect("orders:detail", pk=order.pk)


@require_POST
@permission_required("orders.change_order", raise_exception=True)
def order_review_view(request, pk: int):
    order = _get_order(pk)
    form = OrderReviewForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, order, review_form=form)
    try:
        order = order_resolve_review(
            order_id=order.pk, actor=request.user, upstream_id=form.cleaned_data["upstream_id"]
        )
    except OrderError as exc:
        form.add_error(None, str(exc))
        return _render_detail(request, order, review_form=form)
    if order.submission_status == Submission.ACCEPTED:
        messages.success(request, f"Linked to lab order {order.upstream_id}. The portal will read its state shortly.")
    else:
        messages.success(request, "Queued to be sent to the lab again; it will be sent within a few minutes.")
    return redirect("orders:detail", pk=order.pk)
