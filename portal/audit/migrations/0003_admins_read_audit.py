"""Admins may read the audit trail (both its logs): give their group the new models'
permissions. The admin pages stay read-only whatever the permissions say."""

from django.db import migrations

from portal.accounts.roles import sync_roles


def admins_get_new_permissions(apps, schema_editor):
    # Only the admins' "every permission" set is refreshed; clinic staff get nothing here.
    sync_roles(apps, schema_editor, staff_permissions=[])


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_system_user"),
        ("auditlog", "0017_add_actor_email"),
        ("accounts", "0002_roles"),
    ]

    operations = [migrations.RunPython(admins_get_new_permissions, migrations.RunPython.noop)]
