"""Clinic staff may upload and confirm bulk registrations (and admins get the new
models' permissions). sync_roles only adds: the staff's other permissions stay."""

from django.db import migrations

from portal.accounts.roles import sync_roles

STAFF_PERMISSIONS = [
    "bulk.view_bulkupload",
    "bulk.add_bulkupload",
]


def grant(apps, schema_editor):
    sync_roles(apps, schema_editor, staff_permissions=STAFF_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("bulk", "0001_initial"),
        ("accounts", "0002_roles"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
