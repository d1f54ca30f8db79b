"""Turnaround metrics against values computed by hand on a small fixed data set.

They run on the test database: SQLite in the default pass (ROW_NUMBER() and
interpolation), PostgreSQL in CI's second pass (percentile_cont): both code paths
give the same numbers.
"""

import datetime as dt

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.core.metrics import (
    DayCount,
    bar_chart,
    dashboard_metrics,
    interpolate,
    overdue_list,
    ready_per_day,
    turnaround,
)
from portal.core.states import Status
from tests.factories import PatientFactory, RegistrationFactory, ResultFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)  # 07:00 in the clinic (America/Chicago, CDT)
DAY = dt.timedelta(days=1)
HOUR = dt.timedelta(hours=1)


def ready(days_ago: float, hours_to_ready: float):
    ready_at = NOW - days_ago * DAY
    registration = RegistrationFactory(registered_at=ready_at - hours_to_ready * HOUR)
    return ResultFactory(registration=registration, status=Status.READY, state="ready", ready_at=ready_at)


def pending(days_ago: float, **patient):
    registration = RegistrationFactory(registered_at=NOW - days_ago * DAY, patient=PatientFactory(**patient))
    return ResultFactory(registration=registration)


@pytest.fixture
def clinic(settings):
    settings.RESULT_OVERDUE_AFTER = 10
    data = {
        # (ready days ago, hours from registration to ready); registered = ready - hours
        "r1": ready(1, 24),  # registered 2 days ago
        "r2": ready(2, 48),  # 4 days ago
        "r3": ready(3, 72),  # 6 days ago
        "r4": ready(6, 96),  # 10 days ago: ready in the 7-day window, registered before it
        "r5": ready(10, 120),  # 15 days ago
        "r6": ready(19, 240),  # 29 days ago
        "r7": ready(40, 24),  # outside both windows
        "p1": pending(1),
        "p2": pending(12, first_name="Grace", last_name="Hopper"),
        "p3": pending(25, first_name="Ada", last_name="Lovelace"),
    }
    # Ready, but its registration has no registration time (should not happen): counted
    # as ready, left out of the durations.
    untimed = RegistrationFactory(registered_at=None)
    data["untimed"] = ResultFactory(registration=untimed, status=Status.READY, state="ready", ready_at=NOW - DAY)
    RegistrationFactory(registered_at=None, upstream_id=None, kit_id=None, submission_status="queued")
    return data


def test_turnaround_for_7_and_30_days_matches_the_hand_computed_values(clinic):
    week, month = turnaround(now=NOW)
    # 7 days: registered r1, r2, r3, p1; ready r1..r4 and the untimed one.
    assert (week.days, week.registered, week.ready) == (7, 4, 5)
    # durations 24, 48, 72, 96 h: median at rank 1.5 -> 48 + 0.5 * 24 = 60 h;
    # p90 at rank 2.7 -> 72 + 0.7 * 24 = 88.8 h
    assert week.median == dt.timedelta(hours=60)
    assert week.p90 == dt.timedelta(hours=88.8)
    # 30 days: + r4, r5, r6, p2, p3 registered; + r5, r6 ready.
    assert (month.days, month.registered, month.ready) == (30, 9, 7)
    # durations 24, 48, 72, 96, 120, 240 h: median at rank 2.5 -> 84 h; p90 at rank 4.5 -> 180 h
    assert month.median == dt.timedelta(hours=84)
    assert month.p90 == dt.timedelta(hours=180)


def test_one_result_and_no_result():
    ready(1, 30)
    week, month = turnaround(now=NOW)
    assert week.median == week.p90 == dt.timedelta(hours=30)
    assert turnaround(now=NOW - 60 * DAY)[1] == type(month)(30, 0, 0, None, None)


def test_the_number_of_queries_does_not_depend_on_the_number_of_results(clinic):
    for n in range(30):
        ready(n % 28 + 0.5, n + 1)
    with CaptureQueriesContext(connection) as queries:
        turnaround(now=NOW)
    expected = 2 if connection.vendor == "postgresql" else 4
    assert len(queries.captured_queries) == expected


def test_interpolation_is_percentile_cont():
    values = dict(enumerate([10.0, 20.0, 30.0, 40.0]))
    assert interpolate(values, count=4, fraction=0.5) == 25.0
    assert interpolate(values, count=4, fraction=0.9) == pytest.approx(37.0)
    assert interpolate({0: 5.0}, count=1, fraction=0.9) == 5.0
    assert interpolate({}, count=4, fraction=0.5) is None


def test_results_ready_per_day_by_the_clinic_calendar(clinic):
    late_evening = ready(0.5, 1)  # 2026-06-15 00:00 UTC is June 14, 19:00 in Chicago
    assert timezone.localdate(late_evening.ready_at) == dt.date(2026, 6, 14)
    days = ready_per_day(now=NOW)
    assert len(days) == 30
    assert days[0].day == dt.date(2026, 5, 17) and days[-1].day == dt.date(2026, 6, 15)
    counts = {d.day: d.count for d in days if d.count}
    assert counts == {
        dt.date(2026, 6, 14): 3,  # r1, the untimed one, the late evening one
        dt.date(2026, 6, 13): 1,
        dt.date(2026, 6, 12): 1,
        dt.date(2026, 6, 9): 1,
        dt.date(2026, 6, 5): 1,
        dt.date(2026, 5, 27): 1,
    }


def test_the_bar_chart_geometry():
    counts = [DayCount(dt.date(2026, 6, 1) + i * DAY, n) for i, n in enumerate([0, 3, 6, 0])]
    chart = bar_chart(counts, width=128, height=120, label_every=2)
    assert chart.total == 9 and chart.top == 6
    heights = [bar.height for bar in chart.bars]
    assert heights[0] == 0 and heights[2] == 2 * heights[1] and heights[2] == chart.baseline - 8
    assert [bar.label for bar in chart.bars] == ["", "Jun 2", "", "Jun 4"]  # the last day is labelled
    assert [value for _, value in chart.gridlines] == [0, 3, 6]


def test_overdue_results_oldest_first_with_patient_and_kit(clinic):
    items = overdue_list(now=NOW)
    assert [item.result for item in items] == [clinic["p3"], clinic["p2"]]
    assert [item.days_waiting for item in items] == [25, 12]
    assert items[0].result.registration.patient.last_name == "Lovelace"


def test_the_dashboard_shows_the_metrics(staff_client, clinic, settings):
    page = staff_client.get(reverse("dashboard")).content.decode()
    assert "Turnaround" in page
    assert "<title" in page and "<desc" in page  # the chart is accessible...
    assert 'class="visually-hidden"' in page  # ...with its data as a table
    assert reverse("results:detail", args=[clinic["p3"].pk]) in page
    assert "Lovelace, Ada" in page
    assert page.index("Lovelace, Ada") < page.index("Hopper, Grace")  # oldest first


def test_the_dashboard_metrics_in_a_fixed_number_of_queries(clinic):
    with CaptureQueriesContext(connection) as queries:
        metrics = dashboard_metrics(now=NOW)
    assert metrics.overdue_count == 2 and len(metrics.windows) == 2
    assert len(queries.captured_queries) <= 7


def test_the_aggregates_are_shared_for_a_minute_but_the_overdue_list_is_read_fresh(clinic):
    dashboard_metrics()
    with CaptureQueriesContext(connection) as queries:
        metrics = dashboard_metrics()
    assert len(queries.captured_queries) == 1  # the overdue list (it names patients: never cached)
    assert metrics.windows and metrics.chart.bars
    cached = cache.get("dashboard:turnaround")
    assert set(cached) == {"windows", "chart", "overdue_count"}


def test_the_overdue_results_shown_on_the_dashboard_are_recorded(staff_client, staff_user, clinic):
    from portal.audit.models import PhiAccess

    staff_client.get(reverse("dashboard"))
    recorded = PhiAccess.objects.filter(model="results.result", actor=staff_user)
    shown = {pk for access in recorded for pk in access.object_ids}
    assert {clinic["p2"].pk, clinic["p3"].pk} <= shown
