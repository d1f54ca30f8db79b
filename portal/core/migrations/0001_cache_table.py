"""Create the database cache table when the database cache is configured.

The default cache (shared by web and worker processes) is a table; creating it
in a migration means every `migrate` (tests included) has it.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = []

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
