"""The two roles of the portal, as Django groups.

Clinic staff use the staff pages and never the admin; admins may do everything.
Each app adds the model permissions its pages check to STAFF_PERMISSIONS, and a
data migration calls `sync_roles` so the groups follow the code.
"""

from __future__ import annotations

CLINIC_STAFF = "Clinic staff"
ADMINS = "Admins"

# "app_label.codename" of every permission the clinic staff role holds. Data
# migrations grant them as apps arrive; `roles_ensure` (run after every
# `migrate` and after the test runner's flush) keeps the groups complete.
STAFF_PERMISSIONS: list[str] = [
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
    "bulk.view_bulkupload",
    "bulk.add_bulkupload",
]


def roles_ensure(sender=None, **kwargs) -> None:
    """post_migrate handler: both groups exist and hold their permissions.

    A flush (e.g. after a test that commits) empties the groups table and only
    recreates permissions; this puts the roles back. It only adds permissions."""
    from django.contrib.auth.models import Group, Permission

    # Runs once per app's signal: cheap and idempotent, and the last run sees the
    # permissions of every app (they are created by the same signal, app by app).
    staff, _ = Group.objects.get_or_create(name=CLINIC_STAFF)
    wanted = {tuple(dotted.split(".", 1)) for dotted in STAFF_PERMISSIONS}
    perms = [
        p for p in Permission.objects.select_related("content_type") if (p.content_type.app_label, p.codename) in wanted
    ]
    staff.permissions.add(*perms)
    admins, _ = Group.objects.get_or_create(name=ADMINS)
    admins.permissions.add(*Permission.objects.all())


def sync_roles(apps, schema_editor, staff_permissions=None) -> None:
    """Create or update both groups. Callable from data migrations."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after `migrate`; create them now so the
    # groups can reference models created earlier in the same run.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    wanted = staff_permissions if staff_permissions is not None else STAFF_PERMISSIONS
    staff, _ = Group.objects.get_or_create(name=CLINIC_STAFF)
    for dotted in wanted:
        app_label, codename = dotted.split(".", 1)
        perm = Permission.objects.get(content_type__app_label=app_label, codename=codename)
        staff.permissions.add(perm)
    admins, _ = Group.objects.get_or_create(name=ADMINS)
    admins.permissions.set(Permission.objects.all())
