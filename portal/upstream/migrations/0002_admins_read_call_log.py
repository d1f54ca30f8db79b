"""Admins may read the upstream call log: give their group the new model's permissions."""

from django.db import migrations

from portal.accounts.roles import sync_roles


def admins_get_new_permissions(apps, schema_editor):
    # Staff permissions are other apps' business (and may name models not migrated
    # yet): only the admins' "every permission" set is refreshed here.
    sync_roles(apps, schema_editor, staff_permissions=[])


class Migration(migrations.Migration):
    dependencies = [
        ("upstream", "0001_initial"),
        ("accounts", "0002_roles"),
    ]

    operations = [migrations.RunPython(admins_get_new_permissions, migrations.RunPython.noop)]
