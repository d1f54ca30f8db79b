"""The staff searches are served by indexes on PostgreSQL (trigram indexes from the
patients and kits migrations): a search of a million kits must not scan them all.

What can break is the match between the index's expression and the SQL Django
writes for `icontains` (`UPPER(col::text) LIKE UPPER(...)`): each is checked here.
The search as a whole, on a million rows, is measured by `make bench`."""

import pytest
from django.db import connection

from portal.kits.models import KitRegistration
from portal.patients.models import Patient

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes are PostgreSQL's"),
]


def _plan(queryset) -> str:
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        # Tables of a test are tiny: make the planner show whether an index *can* serve.
        cursor.execute("SET LOCAL enable_seqscan = off")
        # Nor walk another index in the list's order, filtering every row: only an index
        # whose expression matches the condition can serve a bitmap scan.
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("column", ["first_name", "last_name", "email"])
def test_patient_name_and_email_searches_use_the_trigram_indexes(column):
    plan = _plan(Patient.objects.filter(**{f"{column}__icontains": "akamu"}))
    assert f"patient_{column}_trgm" in plan


def test_kit_id_search_uses_the_trigram_index():
    assert "registration_kit_id_trgm" in _plan(KitRegistration.objects.filter(kit_id__icontains="K00012"))


@pytest.mark.parametrize("column", ["first_name", "last_name"])
def test_a_short_word_matches_a_whole_name_through_an_index(column):
    assert f"patient_{column}_upper" in _plan(Patient.objects.filter(**{f"{column}__iexact": "Li"}))
