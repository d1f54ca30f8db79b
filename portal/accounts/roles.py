"""The two roles of the portal, as Django groups.

Clinic staff use the staff pages and never the admin; admins may do everything.
Each app adds the model permissions its pages check to STAFF_PERMISSIONS, and a
data migration calls `sync_roles` so the groups follow the code.
"""

from __future__ import annotations

CLINIC_STAFF = "Clinic staff"
ADMINS = "Admins"

# "app_label.codename" of every permission the clinic staff role holds; the
# latest list lives in the newest migration that calls `sync_roles`
# (portal/core/migrations/0003_staff_permissions.py).
STAFF_PERMISSIONS: list[str] = [
    "accounts.use_staff_site",
]


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
