"""Trigram indexes for the staff searches ("contains", any case) on PostgreSQL.

Django writes `icontains` as `UPPER(col::text) LIKE UPPER('%term%')`; a GIN index on
that same expression with `gin_trgm_ops` serves it instead of a scan of every patient.
`pg_trgm` is a trusted extension (PostgreSQL 13+): the database's owner may create it.
The indexes are not in the models' state (SQLite has no such index).
"""

from django.db import migrations

from portal.core.migration_operations import PostgreSQLOnlySQL

COLUMNS = ("first_name", "last_name", "email")


class Migration(migrations.Migration):
    dependencies = [("patients", "0002_list_indexes")]

    operations = [
        PostgreSQLOnlySQL("CREATE EXTENSION IF NOT EXISTS pg_trgm", reverse_sql=migrations.RunSQL.noop),
        *(
            PostgreSQLOnlySQL(
                f"CREATE INDEX IF NOT EXISTS patient_{column}_trgm ON patients_patient "
                f"USING gin ((UPPER({column}::text)) gin_trgm_ops)",
                reverse_sql=f"DROP INDEX IF EXISTS patient_{column}_trgm",
            )
            for column in COLUMNS
        ),
    ]
