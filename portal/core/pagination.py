"""A paginator for lists that grow to millions of rows.

Django's `Paginator` counts every matching row and fetches a page with
`OFFSET n LIMIT 50` over the full query, joins and subqueries included. On a
million results both cost hundreds of milliseconds. `FastPaginator` keeps its
interface (the templates, `get_page()` and the admin changelist use it unchanged)
and changes two things:

- **Count**: exact, except for an *unfiltered* list of a big table on PostgreSQL,
  where the planner's row estimate (`pg_class.reltuples`, kept fresh by autovacuum)
  is used instead; `count_is_estimate` then says so and pages show "about". One
  query either way (the exact count is a branch of the same statement, run only
  when the estimate is small), so a list runs the same queries at any size. Any
  filtered list is counted exactly up to COUNT_UP_TO rows (or to the page asked
  for): past that, `count_is_lower_bound` says "more than". Counting every one of
  the 100,000 pending results of a million (rows the poller rewrites all day, so
  an index alone cannot count them) took 100 ms; "more than 10,000" is what staff
  need to know.
- **Page**: the page's primary keys first (`SELECT id ... ORDER BY ... OFFSET n
  LIMIT 50`, an index-only scan when the ordering has an index), then its 50 rows
  with their joins and annotations by primary key. A deep page no longer drags
  every skipped row through the joins.

Both are one query each, so a list runs the same number of queries at any size.
With `count_with_page=True` (a search: a few hundred matches, each found through
several indexes) the page's ids and the count come from one query
(`COUNT(*) OVER ()`), so the search runs once, not twice.
"""

from __future__ import annotations

from functools import cached_property
from math import ceil

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Count, Window
from django.db.models.sql.where import WhereNode

# Up to this many rows (by the estimate) an exact count is cheap: use it.
ESTIMATE_ABOVE = 10_000
# A filtered list is counted exactly up to this many rows.
COUNT_UP_TO = 10_000


def table_row_count(model, *, using: str = "default") -> tuple[int, bool] | None:
    """(rows, is_estimate) of `model`'s whole table on PostgreSQL, in one query: the
    planner's estimate when above ESTIMATE_ABOVE, else the exact count. None elsewhere."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        # The subquery is an InitPlan, evaluated only if its CASE branch is taken.
        # reltuples is -1 for a table never analysed: then the exact count.
        exact = f"(SELECT COUNT(*) FROM {table})"  # noqa: S608 - the model's own table name, quoted
        sql = "SELECT CASE WHEN reltuples > %s THEN reltuples::bigint ELSE {} END, reltuples > %s FROM pg_class WHERE oid = to_regclass(%s)"  # noqa: E501
        cursor.execute(sql.format(exact), [ESTIMATE_ABOVE, ESTIMATE_ABOVE, table])
        row = cursor.fetchone()
    return (int(row[0]), bool(row[1])) if row else None


class FastPaginator(Paginator):
    count_is_estimate = False
    count_is_lower_bound = False

    def __init__(
        self,
        object_list,
        per_page,
        orphans=0,
        allow_empty_first_page=True,
        *,
        count_with_page: bool = False,
        page_hint=None,
    ):
        """`count_with_page`: read the count with the ids of page `page_hint` (or of the
        page `get_page()` is asked for), in one query."""
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.count_with_page = count_with_page and hasattr(object_list, "values_list")
        self.page_hint = _page_number(page_hint)
        self._prefetched: tuple[int, list] | None = None

    @property
    def count_prefix(self) -> str:
        """ "about " or "more than " before a count that is not exact, for the templates."""
        if self.count_is_estimate:
            return "about "
        return "more than " if self.count_is_lower_bound else ""

    @property
    def count_shown(self) -> int:
        return self.count - 1 if self.count_is_lower_bound else self.count

    @property
    def num_pages_shown(self) -> int:
        return ceil(self.count_shown / self.per_page) if self.count_is_lower_bound else self.num_pages

    def get_page(self, number):
        if "count" not in self.__dict__:
            self.page_hint = _page_number(number)
        return super().get_page(number)

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if self.count_with_page and self._prefetch(self.page_hint):
            return self._prefetched_count
        if hasattr(queryset, "query") and not queryset.query.has_filters() and not queryset.query.is_sliced:
            # Unfiltered: every row of the table (the list's joins are to-one).
            counted = table_row_count(queryset.model, using=queryset.db)
            if counted is not None:
                rows, self.count_is_estimate = counted
                return rows
        if hasattr(queryset, "query") and not queryset.query.is_sliced:
            # Enough to show the page asked for and to know whether one follows.
            limit = max(COUNT_UP_TO, self.page_hint * self.per_page) + 1
            rows = queryset.order_by()[:limit].count()
            # At the limit there are more: `count` keeps the one row past the pages
            # counted, so the last page counted has a "Next".
            self.count_is_lower_bound = rows == limit
            return rows
        return super().count

    def _prefetch(self, number: int) -> bool:
        """The ids of page `number` and the count, by `COUNT(*) OVER ()`; False when the
        page is past the last one (then the count is read alone, and Django's rules apply)."""
        bottom = (number - 1) * self.per_page
        rows = list(
            self.object_list.annotate(_page_total=Window(Count("*"))).values_list("pk", "_page_total")[
                bottom : bottom + self.per_page
            ]
        )
        if not rows and number != 1:
            return False
        self._prefetched_count = rows[0][1] if rows else 0
        self._prefetched = (number, [pk for pk, _ in rows])
        return True

    def page(self, number):
        number = self.validate_number(number)
        if self._prefetched and self._prefetched[0] == number:
            return self._page_of(self._prefetched[1], number)
        bottom = (number - 1) * self.per_page
        queryset = self.object_list
        if not hasattr(queryset, "values_list"):
            return super().page(number)
        return self._page_of(list(queryset.values_list("pk", flat=True)[bottom : bottom + self.per_page]), number)

    def _page_of(self, ids: list, number: int):
        if not ids:
            return self._get_page([], number, self)
        # The filters chose the ids already: the rows are read by primary key alone, with
        # the list's joins and annotations (a search is not run a second time).
        rows = self.object_list.all()
        rows.query.where = WhereNode()
        by_pk = {obj.pk: obj for obj in rows.filter(pk__in=ids).order_by()}
        return self._get_page([by_pk[pk] for pk in ids if pk in by_pk], number, self)


def _page_number(value) -> int:
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1
