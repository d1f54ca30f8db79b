"""Staff alerts: the daily digest email and the same counts as badges in the navigation bar.

Counts only, never patient data: results ready since the last digest, failed
submissions (orders and kit registrations the lab refused, could not be reached for,
or may have received: what the dashboard's "needs attention" lists), failed emails to
patients, and overdue results. One query computes all four.

The digest is sent once a day: beat runs `staff_digest_task` every hour and the first
run at or after STAFF_DIGEST_HOUR (the clinic's time zone) sends it. A cache key per
calendar day, taken with an atomic `cache.add`, makes a second beat, a redelivered task
or a restart send nothing twice; a failed send gives the key back so the next hour
tries again. The time of the last digest is kept in the cache (no expiry); when it is
missing (a fresh cache), "since the last digest" means the last 24 hours.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from portal.accounts.roles import CLINIC_STAFF
from portal.core.states import SUBMISSION_ATTENTION, Status
from portal.kits.models import KitRegistration
from portal.notifications.models import Notification
from portal.orders.models import Order
from portal.results.models import Result
from portal.results.selectors import results_overdue_q

logger = logging.getLogger(__name__)

TEMPLATE = "notifications/staff_digest"
LAST_SENT_KEY = "staff_digest:last_sent_at"
SENT_ON_KEY = "staff_digest:sent_on:{day}"
BADGES_KEY = "staff_alerts:counts"
# Beat recomputes the badges every BADGES_SECONDS (`staff_alert_badges_task`); a page
# only computes them when none are cached, e.g. when beat has been down longer than
# BADGES_KEEP_SECONDS. At a million results the counts take about a second: a page
# must not wait for them once a minute.
BADGES_SECONDS = 60
BADGES_KEEP_SECONDS = 15 * 60
DEFAULT_SINCE = dt.timedelta(hours=24)


@dataclass(frozen=True)
class StaffAlertCounts:
    ready: int
    failed_submissions: int
    failed_notifications: int
    overdue: int
    since: dt.datetime

    @property
    def any(self) -> bool:
        return bool(self.ready or self.failed_submissions or self.failed_notifications or self.overdue)


def _count_sql(queryset: QuerySet, alias: str) -> tuple[str, list]:
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    # The SQL is the ORM's, with its parameters kept apart; the alias is ours.
    return f"(SELECT COUNT(*) FROM ({sql}) AS {alias})", list(params)  # noqa: S608


def staff_alert_counts(*, since: dt.datetime, now: dt.datetime | None = None) -> StaffAlertCounts:
    """The four counts, in one query (each count a scalar subquery the ORM wrote)."""
    now = now or timezone.now()
    parts = {
        "ready": [Result.objects.filter(status=Status.READY, ready_at__gt=since, ready_at__lte=now)],
        "failed_submissions": [
            Order.objects.filter(submission_status__in=SUBMISSION_ATTENTION),
            KitRegistration.objects.filter(submission_status__in=SUBMISSION_ATTENTION),
        ],
        "failed_notifications": [Notification.objects.filter(status=Notification.Status.FAILED)],
        "overdue": [Result.objects.filter(results_overdue_q(now=now))],
    }
    columns, params = [], []
    for name, querysets in parts.items():
        sums = []
        for i, queryset in enumerate(querysets):
            sql, query_params = _count_sql(queryset, f"{name}_{i}")
            sums.append(sql)
            params += query_params
        columns.append(" + ".join(sums))
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(columns), params)
        values = cursor.fetchone()
    return StaffAlertCounts(**dict(zip(parts, (int(v) for v in values), strict=True)), since=since)


def staff_digest_last_sent_at() -> dt.datetime | None:
    return cache.get(LAST_SENT_KEY)


def _since(now: dt.datetime) -> dt.datetime:
    return staff_digest_last_sent_at() or now - DEFAULT_SINCE


def staff_alert_badges_refresh(*, now: dt.datetime | None = None) -> StaffAlertCounts:
    """Compute the navigation bar's counts and share them (beat runs this every minute)."""
    now = now or timezone.now()
    counts = staff_alert_counts(since=_since(now), now=now)
    cache.set(BADGES_KEY, asdict(counts), BADGES_KEEP_SECONDS)
    return counts


def staff_alert_badges() -> StaffAlertCounts:
    """The counts for the navigation bar: beat's latest, computed here only when none is cached."""
    cached = cache.get(BADGES_KEY)
    if cached is None:
        return staff_alert_badges_refresh()
    return StaffAlertCounts(**cached)


def staff_alert_links(counts: StaffAlertCounts, *, base_url: str = "") -> dict[str, str]:
    """Where each count is listed: the results list filtered, or the dashboard's
    "needs attention" list (failed submissions and emails, across orders and kits)."""
    ready_from = timezone.localdate(counts.since).isoformat()
    attention = f"{base_url}{reverse('dashboard')}#h-attention"
    return {
        "ready": f"{base_url}{reverse('results:list')}?{urlencode({'status': Status.READY, 'ready_from': ready_from})}",
        "failed_submissions": attention,
        "failed_notifications": attention,
        "overdue": f"{base_url}{reverse('results:list')}?overdue=on",
    }


def staff_digest_recipients() -> list[str]:
    """STAFF_DIGEST_RECIPIENTS, or else the active users of the clinic staff group with an email."""
    if settings.STAFF_DIGEST_RECIPIENTS:
        return list(dict.fromkeys(e.strip() for e in settings.STAFF_DIGEST_RECIPIENTS if e.strip()))
    users = get_user_model().objects.filter(is_active=True, groups__name=CLINIC_STAFF).exclude(email="")
    return list(dict.fromkeys(users.order_by("email").values_list("email", flat=True)))


def staff_digest_messages(*, counts: StaffAlertCounts, recipients: list[str], now: dt.datetime):
    """One email per recipient (staff addresses are not shown to each other)."""
    context = {
        "counts": counts,
        "links": staff_alert_links(counts, base_url=settings.PORTAL_BASE_URL),
        "clinic_name": settings.CLINIC_NAME,
        "since": timezone.localtime(counts.since),
        "now": timezone.localtime(now),
        "portal_url": settings.PORTAL_BASE_URL + "/",
        "overdue_days": settings.RESULT_OVERDUE_AFTER,
    }
    subject = " ".join(render_to_string(f"{TEMPLATE}-subject.txt", context).split())
    text = render_to_string(f"{TEMPLATE}-body.txt", context)
    html = render_to_string(f"{TEMPLATE}-body.html", context)
    messages = []
    for recipient in recipients:
        message = EmailMultiAlternatives(subject=subject, body=text, to=[recipient])
        message.attach_alternative(html, "text/html")
        messages.append(message)
    return messages


def staff_digest_send(*, now: dt.datetime | None = None) -> int:
    """Send the digest now, with the counts since the last one. Returns the emails sent."""
    now = now or timezone.now()
    recipients = staff_digest_recipients()
    if not recipients:
        logger.warning("staff digest not sent: no recipient (set STAFF_DIGEST_RECIPIENTS or add clinic staff)")
        return 0
    counts = staff_alert_counts(since=_since(now), now=now)
    with get_connection() as mail:
        sent = mail.send_messages(staff_digest_messages(counts=counts, recipients=recipients, now=now)) or 0
    cache.set(LAST_SENT_KEY, now, None)
    staff_alert_badges_refresh(now=now)  # "ready since the last digest" starts again
    logger.info("staff digest sent to %s recipient(s)", sent)
    return sent


def staff_digest_send_if_due(*, now: dt.datetime | None = None) -> int:
    """Send today's digest if it is time and it was not sent yet today (see the module's docstring)."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    if local.hour < settings.STAFF_DIGEST_HOUR:
        return 0
    key = SENT_ON_KEY.format(day=local.date().isoformat())
    if not cache.add(key, now.isoformat(), timeout=3 * 86400):
        return 0
    try:
        return staff_digest_send(now=now)
    except Exception:
        cache.delete(key)  # the next hourly run tries again
        raise
