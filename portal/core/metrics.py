"""Turnaround-time metrics for the dashboard, computed in the database.

For the last 7 and 30 days (rolling, up to now):
- kits registered: registrations accepted by the lab in the window (`registered_at`);
- results ready: results that became ready in the window (`ready_at`);
- the median and 90th percentile of "registration to ready" (`ready_at` minus the
  kit's `registered_at`) of those results, interpolated like PostgreSQL's
  `percentile_cont` (the value at rank (n - 1) * p between the two nearest rows).

No query loads the rows of a window into Python:
- PostgreSQL: `percentile_cont(p) WITHIN GROUP (ORDER BY duration) FILTER (WHERE ...)`,
  both windows in one aggregate query;
- SQLite (local development and the default test pass): the same counts in one
  aggregate query, then per window one query that numbers the window's rows by
  duration (ROW_NUMBER() OVER (ORDER BY duration)) and returns only the (at most 4)
  rows the two percentiles need; Python interpolates between them.

Durations are seconds between the two timestamps, computed by the database
(EXTRACT(EPOCH ...) on PostgreSQL, julianday() on SQLite, to the millisecond).

Also here: results ready per day for the dashboard's chart (one GROUP BY query, by
the clinic's calendar day) and the overdue list (oldest first).

At 1,000,000 results (make bench's data, PostgreSQL) the aggregates take about half a
second; the dashboard caches them for a minute (`dashboard_metrics`).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Aggregate, Count, F, FloatField, Func, Q, Window
from django.db.models.functions import RowNumber, TruncDate
from django.utils import timezone

from portal.core.states import Status
from portal.kits.models import KitRegistration
from portal.results.models import Result
from portal.results.selectors import results_overdue_q

WINDOWS = (7, 30)
PERCENTILES = (0.5, 0.9)
CHART_DAYS = 30
OVERDUE_LIMIT = 10
# The dashboard's aggregates are shared by all staff for this long (counts only, no PHI).
CACHE_KEY = "dashboard:turnaround"
CACHE_SECONDS = 60


class EpochSeconds(Func):
    """A timestamp as seconds since the epoch (float), computed by the database."""

    output_field = FloatField()
    template = "EXTRACT(EPOCH FROM %(expressions)s)"

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores datetimes in SQLite as UTC text, which julianday() reads.
        return self.as_sql(compiler, connection, template="(julianday(%(expressions)s) * 86400.0)", **extra_context)


class PercentileCont(Aggregate):
    """PostgreSQL's ordered-set aggregate `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        fraction = float(fraction)
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("a percentile is a fraction between 0 and 1")
        # Written into the SQL as a number literal: a float we checked, never user input.
        super().__init__(expression, fraction=repr(fraction), **extra)


def _duration():
    return EpochSeconds(F("ready_at")) - EpochSeconds(F("registration__registered_at"))


def format_duration(value: dt.timedelta | None) -> str:
    """ "2 d 12 h", "5 h 30 min"; "—" when there is nothing to measure."""
    if value is None:
        return "—"
    minutes = round(value.total_seconds() / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


@dataclass(frozen=True)
class TurnaroundWindow:
    days: int
    registered: int
    ready: int
    median: dt.timedelta | None
    p90: dt.timedelta | None

    @property
    def median_text(self) -> str:
        return format_duration(self.median)

    @property
    def p90_text(self) -> str:
        return format_duration(self.p90)


def _seconds(value: float | None) -> dt.timedelta | None:
    return None if value is None else dt.timedelta(seconds=round(value))


def _ready_in(since: dt.datetime, now: dt.datetime) -> Q:
    return Q(ready_at__gte=since, ready_at__lte=now)


def interpolate(values: dict[int, float], *, count: int, fraction: float) -> float | None:
    """percentile_cont of `count` sorted values, from `values` by 0-based rank (only the
    ranks around (count - 1) * fraction are needed). None when a needed rank is missing."""
    position = (count - 1) * fraction
    low = math.floor(position)
    below = values.get(low)
    if below is None:
        return None
    if position == low or low + 1 >= count:
        return below
    above = values.get(low + 1)
    return None if above is None else below + (position - low) * (above - below)


def _percentiles_sqlite(timed: Q, count: int) -> dict[float, float | None]:
    """The percentiles of one window from the few rows they need (one query)."""
    if not count:
        return dict.fromkeys(PERCENTILES)
    ranks = {r for p in PERCENTILES for r in (math.floor((count - 1) * p), math.floor((count - 1) * p) + 1)}
    values = {
        rank - 1: seconds
        for rank, seconds in Result.objects.filter(timed)
        .annotate(seconds=_duration())
        .annotate(rank=Window(RowNumber(), order_by=[F("seconds").asc(), F("pk").asc()]))
        .filter(rank__in=[r + 1 for r in ranks])
        .values_list("rank", "seconds")
    }
    return {p: interpolate(values, count=count, fraction=p) for p in PERCENTILES}


def turnaround(*, now: dt.datetime | None = None, windows: tuple[int, ...] = WINDOWS) -> list[TurnaroundWindow]:
    """Kits registered, results ready and the median and p90 time from registration to
    ready, for each window of days. Two queries on PostgreSQL; two plus one per window elsewhere."""
    now = now or timezone.now()
    since = {days: now - dt.timedelta(days=days) for days in windows}
    oldest = min(since.values())

    registered = KitRegistration.objects.filter(registered_at__gte=oldest, registered_at__lte=now).aggregate(
        **{f"n{d}": Count("pk", filter=Q(registered_at__gte=since[d])) for d in windows}
    )

    ready = Result.objects.filter(_ready_in(oldest, now), status=Status.READY)
    timed = Q(registration__registered_at__isnull=False)
    aggregates = {}
    for d in windows:
        in_window = Q(ready_at__gte=since[d])
        aggregates[f"ready{d}"] = Count("pk", filter=in_window)
        aggregates[f"timed{d}"] = Count("pk", filter=in_window & timed)
        if connection.vendor == "postgresql":
            for p in PERCENTILES:
                aggregates[f"p{int(p * 100)}_{d}"] = PercentileCont(_duration(), p, filter=in_window & timed)
    counts = ready.aggregate(**aggregates)

    result = []
    for d in windows:
        if connection.vendor == "postgresql":
            values = {p: counts[f"p{int(p * 100)}_{d}"] for p in PERCENTILES}
        else:
            values = _percentiles_sqlite(_ready_in(since[d], now) & Q(status=Status.READY) & timed, counts[f"timed{d}"])
        result.append(
            TurnaroundWindow(
                days=d,
                registered=registered[f"n{d}"],
                ready=counts[f"ready{d}"],
                median=_seconds(values[0.5]),
                p90=_seconds(values[0.9]),
            )
        )
    return result


@dataclass(frozen=True)
class DayCount:
    day: dt.date
    count: int


def ready_per_day(*, now: dt.datetime | None = None, days: int = CHART_DAYS) -> list[DayCount]:
    """Results that became ready on each of the last `days` calendar days (the clinic's
    time zone), today included, oldest first, with zeros. One query."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    first = today - dt.timedelta(days=days - 1)
    start = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    found = dict(
        Result.objects.filter(status=Status.READY, ready_at__gte=start, ready_at__lte=now)
        .annotate(day=TruncDate("ready_at", tzinfo=timezone.get_current_timezone()))
        .order_by()
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    return [DayCount(first + dt.timedelta(days=i), found.get(first + dt.timedelta(days=i), 0)) for i in range(days)]


@dataclass(frozen=True)
class Bar:
    day: dt.date
    count: int
    x: float
    y: float
    width: float
    height: float
    label: str  # the day under the bar, on some bars only

    @property
    def center(self) -> float:
        return round(self.x + self.width / 2, 2)


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    top: int  # the value of the top gridline
    bars: list[Bar]
    gridlines: list[tuple[float, int]]  # (y, value)
    baseline: float
    total: int
    left: int  # where the plot starts (the y axis' labels are left of it)
    right: int  # where it ends

    @property
    def peak(self) -> Bar | None:
        return max(self.bars, key=lambda bar: bar.count, default=None)


def bar_chart(counts: list[DayCount], *, width: int = 600, height: int = 160, label_every: int = 7) -> BarChart:
    """The geometry of a bar chart of `counts`, for an SVG written by a template."""
    # Room for the y axis' numbers on the left and for the last day's label on the right.
    left, right, bottom, top_margin = 28, 18, 20, 8
    plot_height = height - bottom - top_margin
    peak = max((c.count for c in counts), default=0)
    top = max(1, peak)
    if top > 4:  # a round top value, so gridlines read 0, 5, 10 ...
        step = 10 ** (len(str(top)) - 1) // 2 or 1
        top = math.ceil(top / step) * step
    slot = (width - left - right) / max(1, len(counts))
    bars = []
    for i, c in enumerate(counts):
        bar_height = plot_height * c.count / top
        bars.append(
            Bar(
                day=c.day,
                count=c.count,
                x=round(left + i * slot + slot * 0.15, 2),
                y=round(top_margin + plot_height - bar_height, 2),
                width=round(slot * 0.7, 2),
                height=round(bar_height, 2),
                label=f"{c.day:%b} {c.day.day}" if (len(counts) - 1 - i) % label_every == 0 else "",
            )
        )
    gridlines = [(round(top_margin + plot_height * (1 - v / top), 2), v) for v in sorted({0, top // 2, top})]
    right_edge = width - right
    return BarChart(
        width=width,
        height=height,
        top=top,
        bars=bars,
        gridlines=gridlines,
        baseline=top_margin + plot_height,
        total=sum(c.count for c in counts),
        left=left,
        right=right_edge,
    )


@dataclass(frozen=True)
class OverdueItem:
    result: Result
    days_waiting: int


def overdue_list(*, now: dt.datetime | None = None, limit: int = OVERDUE_LIMIT) -> list[OverdueItem]:
    """Results not ready RESULT_OVERDUE_AFTER days after registration, oldest first
    (at most `limit`, with patient and kit joined). One query, walking the
    registrations' registered_at index."""
    now = now or timezone.now()
    overdue = Result.objects.filter(results_overdue_q(now=now))
    return [
        OverdueItem(result, (now - result.registration.registered_at).days)
        for result in overdue.select_related("registration", "registration__patient").order_by(
            "registration__registered_at", "pk"
        )[:limit]
    ]


@dataclass(frozen=True)
class DashboardMetrics:
    windows: list[TurnaroundWindow]
    chart: BarChart
    overdue: list[OverdueItem]
    overdue_count: int
    overdue_after_days: int
    chart_days: int


def _aggregates(now: dt.datetime) -> dict:
    return {
        "windows": turnaround(now=now),
        "chart": bar_chart(ready_per_day(now=now)),
        "overdue_count": Result.objects.filter(results_overdue_q(now=now)).count(),
    }


def dashboard_metrics(*, now: dt.datetime | None = None) -> DashboardMetrics:
    """Everything the dashboard's metrics partial shows.

    The aggregates (counts, percentiles, the chart) scan a month of results: at a
    million results that takes a few hundred milliseconds, so without `now` they are
    computed at most once every CACHE_SECONDS for all staff (counts only are cached).
    The overdue list, which names patients, is always read fresh and never cached."""
    if now is None:
        now = timezone.now()
        aggregates = cache.get(CACHE_KEY)
        if aggregates is None:
            aggregates = _aggregates(now)
            cache.set(CACHE_KEY, aggregates, CACHE_SECONDS)
    else:
        aggregates = _aggregates(now)
    return DashboardMetrics(
        windows=aggregates["windows"],
        chart=aggregates["chart"],
        overdue=overdue_list(now=now),
        overdue_count=aggregates["overdue_count"],
        overdue_after_days=settings.RESULT_OVERDUE_AFTER,
        chart_days=CHART_DAYS,
    )
