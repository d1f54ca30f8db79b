"""Reads of results for the staff pages, the dashboard and the CSV export.

Every queryset here comes with its related rows joined (or annotated) already, so
a page of 1 result and a page of 50 run the same number of queries.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from portal.core.states import FINAL, Status, timeline
from portal.notifications.models import Notification
from portal.results.models import Result, overdue_cutoff


def results_overdue_q(*, now: datetime | None = None) -> Q:
    """Results still waiting for the lab (not final) longer than RESULT_OVERDUE_AFTER
    days after the kit was registered. "Pending" here means any status that is not
    final yet (pending, in progress, unknown): a sample stuck in processing is as late
    as one never received."""
    return ~Q(status__in=FINAL) & Q(registration__registered_at__lt=overdue_cutoff(now))


def results_search(queryset: QuerySet[Result], text: str, *, max_terms: int = 5) -> QuerySet[Result]:
    """Results whose kit matches every word of `text`: in the patient's first name, last
    name or email, or the kit id (contains, any case; a word of one or two letters must
    be the whole name or kit id), or the lab result id (exact).

    Each word becomes one `registration_id IN (... UNION ...)` of small index lookups
    (trigram indexes on PostgreSQL) rather than an OR across three joined tables, which
    no index can serve. Words past `max_terms` are ignored.
    """
    for term in (text or "").split()[:max_terms]:
        queryset = queryset.filter(registration_id__in=_registrations_matching(term))
    return queryset


def _registrations_matching(term: str) -> QuerySet:
    from portal.kits.models import KitRegistration
    from portal.kits.selectors import kit_id_match_q
    from portal.patients.models import Patient
    from portal.patients.selectors import patient_match_q

    patients = Patient.objects.filter(patient_match_q(term)).order_by().values("id")
    by_patient = KitRegistration.objects.filter(patient_id__in=patients).order_by().values("id")
    others = [KitRegistration.objects.filter(kit_id_match_q(term)).order_by().values("id")]
    if term.isdigit() and len(term) < 19:
        others.append(Result.objects.filter(upstream_id=int(term)).order_by().values("registration_id"))
    return by_patient.union(*others)


def _latest_notification(field: str) -> Subquery:
    return Subquery(Notification.objects.filter(result=OuterRef("pk")).order_by("-created_at", "-id").values(field)[:1])


def results_list() -> QuerySet[Result]:
    """All results, newest first, with the patient and kit joined and the status of
    the latest email to the patient (`notification_status`, None when no email was
    created). `Result.is_overdue` reads the joined kit, so it costs no query and, unlike
    an annotation, keeps the join out of the list's count."""
    return (
        Result.objects.select_related("registration", "registration__patient")
        .annotate(notification_status=_latest_notification("status"))
        .order_by("-created_at", "-id")
    )


def results_export_rows(*, queryset: QuerySet[Result]):
    """The CSV export's rows for an already filtered `results_list()` queryset, one
    query streamed with a server-side cursor where the database has one."""
    labels = dict(Notification.Status.choices)
    status_labels = dict(Status.choices)
    rows = queryset.values_list(
        "registration__kit_id",
        "upstream_id",
        "state",
        "status",
        "ready_at",
        "registration__patient__last_name",
        "registration__patient__first_name",
        "registration__patient__email",
        "notification_status",
    ).iterator(chunk_size=1000)
    tz = timezone.get_current_timezone()
    for kit_id, upstream_id, state, status, ready_at, last, first, email, notification in rows:
        yield (
            kit_id or "",
            upstream_id,
            state,
            status_labels.get(status, status),
            timezone.localtime(ready_at, tz).strftime("%Y-%m-%d %H:%M %Z") if ready_at else "",
            last,
            first,
            email,
            labels.get(notification, "") if notification else "",
        )


RESULTS_EXPORT_HEADER = (
    "Kit id",
    "Result id",
    "Lab state",
    "Status",
    "Ready at",
    "Patient last name",
    "Patient first name",
    "Patient email",
    "Email to patient",
)


def result_for_detail() -> QuerySet[Result]:
    """`results_list()` with the order joined too, for the detail page."""
    return results_list().select_related("registration__order")


def result_notifications(*, result: Result) -> QuerySet[Notification]:
    """The emails of one result, newest first, with who asked for a resend."""
    return result.notifications.select_related("requested_by").order_by("-created_at", "-id")


def result_timeline(*, result: Result) -> list:
    """The result's state changes, oldest first, each with `new_status_label` for display."""
    changes = list(timeline(result))
    for change in changes:
        change.new_status_label = Status(change.new_status).label if change.new_status in Status.values else ""
    return changes


def result_can_resend(*, result: Result) -> bool:
    """The patient's email may be sent again only once the result is ready."""
    return result.status == Status.READY


def result_resend_in_flight(*, result: Result) -> bool:
    """A staff resend is already waiting or being sent: a double click must not send two."""
    return result.notifications.filter(
        is_resend=True, status__in=[Notification.Status.PENDING, Notification.Status.SENDING]
    ).exists()


def results_recently_ready(*, days: int = 7, limit: int = 10, now: datetime | None = None) -> QuerySet[Result]:
    """Results that became ready in the last `days` days, newest first."""
    now = now or timezone.now()
    return (
        Result.objects.filter(status=Status.READY, ready_at__gte=now - timedelta(days=days))
        .select_related("registration", "registration__patient")
        .order_by("-ready_at", "-id")[:limit]
    )


def results_for_attention(*, limit: int, now: datetime | None = None) -> QuerySet[Result]:
    """Results staff should look at: an upstream state we do not know, or overdue."""
    return (
        results_list()
        .filter(Q(status=Status.UNKNOWN) | results_overdue_q(now=now))
        .order_by("-updated_at", "-id")[:limit]
    )
