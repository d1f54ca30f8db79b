"""The paginator of the staff lists (portal/core/pagination.py)."""

import pytest
from django.db import connection
from django.urls import reverse

from portal.core import pagination
from portal.core.pagination import FastPaginator
from portal.results import selectors
from portal.results.models import Result
from tests.factories import NotificationFactory, ResultFactory

pytestmark = pytest.mark.django_db

on_postgresql = pytest.mark.skipif(connection.vendor != "postgresql", reason="the row estimate is PostgreSQL's")


def test_a_page_has_the_rows_of_that_slice_in_the_lists_order_with_their_annotations():
    results = [ResultFactory() for _ in range(7)]
    NotificationFactory(result=results[2])
    queryset = selectors.results_list()
    paginator = FastPaginator(queryset, 3)

    second = paginator.page(2)

    assert [r.pk for r in second.object_list] == [r.pk for r in queryset[3:6]]
    assert [r.notification_status for r in second.object_list] == [r.notification_status for r in queryset[3:6]]
    assert paginator.count == 7 and paginator.num_pages == 3 and not paginator.count_is_estimate
    assert [r.pk for r in paginator.page(3).object_list] == [results[0].pk]


def test_a_filtered_list_is_counted_exactly_however_big_the_table(monkeypatch):
    monkeypatch.setattr(pagination, "table_row_count", lambda model, using="default": (5_000_000, True))
    ResultFactory(status="ready", state="ready", ready_at="2026-01-01T00:00:00Z")
    ResultFactory()
    paginator = FastPaginator(Result.objects.filter(status="ready"), 50)
    assert paginator.count == 1 and not paginator.count_is_estimate


def test_a_big_unfiltered_list_says_about_and_offers_no_last_page(staff_client, monkeypatch):
    monkeypatch.setattr(pagination, "table_row_count", lambda model, using="default": (1_234_567, True))
    ResultFactory()
    content = staff_client.get(reverse("results:list")).content.decode()
    assert "Page 1 of about 24,692" in content
    assert "of about 1,234,567." in content
    assert ">Last<" not in content


@on_postgresql
def test_a_big_table_is_estimated_and_a_small_one_counted_in_one_query(monkeypatch, django_assert_num_queries):
    for _ in range(5):
        ResultFactory()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE results_result")
    with django_assert_num_queries(1):
        assert pagination.table_row_count(Result) == (5, False)  # exact: a small table
    Result.objects.filter(pk=Result.objects.first().pk).update(state="x")  # a change ANALYZE has not seen
    monkeypatch.setattr(pagination, "ESTIMATE_ABOVE", 2)
    with django_assert_num_queries(1):
        assert pagination.table_row_count(Result) == (5, True)  # the planner's estimate
    paginator = FastPaginator(Result.objects.order_by("-id"), 2)
    assert paginator.count == 5 and paginator.count_is_estimate


def test_there_is_no_estimate_off_postgresql():
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL has one")
    ResultFactory()
    assert pagination.table_row_count(Result) is None


@pytest.mark.parametrize("number", [1, 2, 3])
def test_a_search_reads_its_count_with_the_page_and_gets_the_same_page(number, django_assert_num_queries):
    for _ in range(5):
        ResultFactory()
    queryset = selectors.results_list().filter(status="pending")
    expected = [r.pk for r in queryset[(number - 1) * 2 : number * 2]]
    paginator = FastPaginator(queryset, 2, count_with_page=True)
    with django_assert_num_queries(2):  # ids with the count, then the rows
        page = paginator.get_page(number)
    assert [r.pk for r in page.object_list] == expected
    assert paginator.count == 5 and paginator.num_pages == 3


def test_a_search_page_past_the_end_shows_the_last_page_and_no_match_is_an_empty_first_page():
    for _ in range(3):
        ResultFactory()
    queryset = selectors.results_list().filter(status="pending")
    last = FastPaginator(queryset, 2, count_with_page=True).get_page(9)
    assert last.number == 2 and len(last.object_list) == 1
    empty = FastPaginator(queryset.filter(status="ready"), 2, count_with_page=True).get_page("x")
    assert empty.number == 1 and list(empty.object_list) == [] and empty.paginator.count == 0


def test_the_admin_search_reads_page_two_with_its_count(admin_client_):
    from tests.factories import PatientFactory, RegistrationFactory

    patient = PatientFactory(last_name="Paged")
    found = [ResultFactory(registration=RegistrationFactory(patient=patient)) for _ in range(51)]
    ResultFactory()
    url = reverse("admin:results_result_changelist")
    response = admin_client_.get(url, {"q": "Paged", "p": 2})
    changelist = response.context["cl"]
    assert changelist.result_count == 51
    assert [r.pk for r in changelist.result_list] == [found[0].pk]  # oldest last


def test_a_big_filtered_list_is_counted_up_to_a_floor_and_still_pages_on(monkeypatch, staff_client):
    monkeypatch.setattr(pagination, "COUNT_UP_TO", 3)
    for _ in range(5):
        ResultFactory()
    queryset = Result.objects.filter(status="pending").order_by("-id")

    first = FastPaginator(queryset, 2).get_page(1)
    assert first.paginator.count_is_lower_bound and first.paginator.count_shown == 3 and first.has_next()
    assert first.paginator.count_prefix == "more than " and first.paginator.num_pages_shown == 2

    second = FastPaginator(queryset, 2).get_page(2)  # counted far enough to show page 2 and a next one
    assert second.has_next() and len(second.object_list) == 2

    last = FastPaginator(queryset, 2).get_page(3)  # the end is in reach: exact
    assert not last.paginator.count_is_lower_bound and last.paginator.count == 5 and not last.has_next()

    for _ in range(46):  # 51 pending: one more than the first page of 50
        ResultFactory()
    content = staff_client.get(reverse("results:list"), {"status": "pending"}).content.decode()
    assert "Showing 1\u201350 of more than 50." in content  # an en dash and "Page 1 of more than 1<" in content
    assert ">Next<" in content and ">Last<" not in content
