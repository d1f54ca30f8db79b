"""Give the clinic staff role the permissions its pages check."""

from django.db import migrations

from portal.accounts.roles import sync_roles

STAFF_PERMISSIONS = [
    "accounts.use_staff_site",
    "patients.view_patient",
    "patients.add_patient",
    "patients.change_patient",
    "orders.view_order",
    "orders.add_order",
    "orders.change_order",
    "kits.view_kitregistration",
    "kits.add_kitregistration",
    "kits.change_kitregistration",
    "results.view_result",
    "results.change_result",
    "notifications.view_notification",
    "notifications.add_notification",
]


def grant(apps, schema_editor):
    sync_roles(apps, schema_editor, staff_permissions=STAFF_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0002_statechange"),
        ("accounts", "0002_roles"),
        ("patients", "0001_initial"),
        ("orders", "0001_initial"),
        ("kits", "0001_initial"),
        ("results", "0001_initial"),
        ("notifications", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, migrations.RunPython.noop)]
