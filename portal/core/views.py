from django.contrib.auth.decorators import login_not_required, permission_required
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.core import health


@require_GET
@permission_required("accounts.use_staff_site", raise_exception=True)
def dashboard(request):
    return render(request, "core/dashboard.html", {"title": "Dashboard"})


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
