"""A trigram index for "kit id contains" on PostgreSQL (see patients 0003)."""

from django.db import migrations

from portal.core.migration_operations import PostgreSQLOnlySQL


class Migration(migrations.Migration):
    dependencies = [("kits", "0003_list_indexes"), ("patients", "0003_search_trigram_indexes")]

    operations = [
        PostgreSQLOnlySQL(
            "CREATE INDEX IF NOT EXISTS registration_kit_id_trgm ON kits_kitregistration "
            "USING gin ((UPPER(kit_id::text)) gin_trgm_ops)",
            reverse_sql="DROP INDEX IF EXISTS registration_kit_id_trgm",
        ),
    ]
