"""Staff pages for results: the list (with CSV export), the detail page and its two buttons."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from portal.audit.services import phi_access_record
from portal.core.exports import csv_response
from portal.core.pagination import FastPaginator
from portal.notifications.services import ResendRefused, notification_resend
from portal.results import selectors
from portal.results.filters import ResultFilter
from portal.results.models import Result
from portal.results.services import result_refresh
from portal.upstream.errors import UpstreamError

PAGE_SIZE = 50


def _filtered(request) -> tuple[ResultFilter, QuerySet[Result]]:
    """The filter form and the results it selects; none while the form has errors
    (a half-applied filter would list or export more than the person asked for)."""
    result_filter = ResultFilter(request.GET or None, queryset=selectors.results_list())
    if result_filter.is_bound and not result_filter.is_valid():
        return result_filter, result_filter.queryset.none()
    return result_filter, result_filter.qs


@require_GET
@permission_required("results.view_result", raise_exception=True)
def result_list(request):
    result_filter, queryset = _filtered(request)
    searching = bool(request.GET.get("q", "").strip())
    page = FastPaginator(queryset, PAGE_SIZE, count_with_page=searching).get_page(request.GET.get("page"))
    phi_access_record(request=request, action="list", model=Result, ids=page.object_list)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "results/list.html",
        {
            "title": "Results",
            "breadcrumbs": [("Results", None)],
            "filter": result_filter,
            "page_obj": page,
            "results": page.object_list,
            "is_filtered": any(query.values()),
            "export_query": query.urlencode(),
        },
    )


@require_GET
@permission_required("results.view_result", raise_exception=True)
def result_export(request):
    _, queryset = _filtered(request)
    phi_access_record(request=request, action="export", model=Result, ids=queryset)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return csv_response(
        f"results-{stamp}.csv", selectors.RESULTS_EXPORT_HEADER, selectors.results_export_rows(queryset=queryset)
    )


@require_GET
@permission_required("results.view_result", raise_exception=True)
def result_detail(request, pk: int):
    result = get_object_or_404(selectors.result_for_detail(), pk=pk)
    phi_access_record(request=request, action="view", model=Result, ids=[result])
    return render(
        request,
        "results/detail.html",
        {
            "title": f"Result {result.upstream_id}",
            "breadcrumbs": [("Results", reverse("results:list")), (f"Result {result.upstream_id}", None)],
            "result": result,
            "registration": result.registration,
            "patient": result.registration.patient,
            "order": result.registration.order,
            "timeline": selectors.result_timeline(result=result),
            "overdue_days": settings.RESULT_OVERDUE_AFTER,
            "notifications": selectors.result_notifications(result=result),
            "can_resend": selectors.result_can_resend(result=result),
        },
    )


@require_POST
@permission_required("results.change_result", raise_exception=True)
def result_refresh_now(request, pk: int):
    result = get_object_or_404(Result, pk=pk)
    try:
        result = result_refresh(result_id=result.pk, actor=request.user)
    except UpstreamError as exc:
        messages.error(request, f"The lab could not be asked about this result just now: {exc} Try again later.")
    else:
        messages.success(
            request, f"Result refreshed from the lab: {result.state or 'no state'} ({result.get_status_display()})."
        )
    return redirect("results:detail", pk=pk)


@require_POST
@permission_required("notifications.add_notification", raise_exception=True)
def result_resend_email(request, pk: int):
    result = get_object_or_404(Result.objects.select_related("registration__patient"), pk=pk)
    if not selectors.result_can_resend(result=result):
        messages.error(request, "The email can only be sent again once the result is ready.")
    elif selectors.result_resend_in_flight(result=result):
        messages.info(request, "A resend of this email is already on its way; it was not queued twice.")
    else:
        try:
            notification_resend(result=result, requested_by=request.user)
        except ResendRefused as exc:
            messages.info(request, str(exc))
        else:
            messages.success(request, "The email will be sent again. The resend is recorded.")
    return redirect("results:detail", pk=pk)
