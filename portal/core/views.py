from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.audit.services import phi_access_record
from portal.core import health, selectors
from portal.kits.models import KitRegistration
from portal.results.models import Result

# The dashboard's "needs attention" list shows this many items at most, and its
# "recently ready" list covers this many days.
ATTENTION_LIMIT = 20
RECENT_DAYS = 7


@require_GET
@permission_required("accounts.use_staff_site", raise_exception=True)
def dashboard(request):
    attention, more_attention = selectors.dashboard_attention(limit=ATTENTION_LIMIT)
    counts = selectors.dashboard_counts()
    recently_ready = selectors.dashboard_recently_ready(days=RECENT_DAYS, limit=10)
    # Both lists name patients: record which results and kits were shown (ids only).
    shown = {"results:detail": [r.pk for r in recently_ready], "kits:detail": []}
    for item in attention:
        if item.url_name in shown:
            shown[item.url_name].append(item.pk)
    phi_access_record(request=request, action="list", model=Result, ids=shown["results:detail"])
    phi_access_record(request=request, action="list", model=KitRegistration, ids=shown["kits:detail"])
    return render(
        request,
        "core/dashboard.html",
        {
            "title": "Dashboard",
            # (heading, list page's URL name, its status filter's name, counts)
            "count_blocks": [
                ("Orders", "orders:list", "status", counts["orders"]),
                ("Kit registrations", "kits:list", "submission_status", counts["registrations"]),
                ("Results", "results:list", "status", counts["results"]),
            ],
            "recently_ready": recently_ready,
            "recent_days": RECENT_DAYS,
            "attention": attention,
            "more_attention": more_attention,
        },
    )


@require_GET
@never_cache
@login_not_required
def healthz(request):
    """200 when the database and the broker answer; 503 naming what failed otherwise."""
    failures = {
        name: reason
        for name, reason in (("database", health.check_database()), ("broker", health.check_broker()))
        if reason
    }
    if failures:
        return JsonResponse({"status": "unavailable", "failed": failures}, status=503)
    return JsonResponse({"status": "ok"})
