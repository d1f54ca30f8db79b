from django.conf import settings
from django.utils.functional import SimpleLazyObject


def portal(request):
    """Values every page template needs."""
    values = {"ADMIN_URL": settings.ADMIN_URL, "CLINIC_NAME": settings.CLINIC_NAME}
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.has_perm("accounts.use_staff_site"):
        from portal.core import digest

        # Lazy: computed only by a template that shows them. The navigation bar's
        # badges come from one query cached for a minute (portal/core/digest.py); the
        # metrics only from the dashboard's partial (templates/core/_metrics.html).
        values["staff_alerts"] = SimpleLazyObject(digest.staff_alert_badges)
        values["turnaround"] = SimpleLazyObject(lambda: _dashboard_metrics(request))
    return values


def _dashboard_metrics(request):
    """The dashboard's metrics; its overdue list names patients, so the results shown are recorded."""
    from portal.audit.services import phi_access_record
    from portal.core.metrics import dashboard_metrics
    from portal.results.models import Result

    shown = dashboard_metrics()
    if shown.overdue:
        phi_access_record(request=request, action="list", model=Result, ids=[item.result for item in shown.overdue])
    return shown
