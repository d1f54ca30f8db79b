"""Migration operations of the portal's own."""

from __future__ import annotations

from django.db import migrations


class PostgreSQLOnlySQL(migrations.RunSQL):
    """`RunSQL` that runs on PostgreSQL and is skipped elsewhere.

    For what only PostgreSQL has, such as the trigram (`pg_trgm`) indexes behind the
    staff searches: on SQLite the same searches work, by scanning.
    """

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
