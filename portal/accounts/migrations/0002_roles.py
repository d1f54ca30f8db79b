from django.db import migrations

from portal.accounts.roles import sync_roles


def create_roles(apps, schema_editor):
    # Frozen list: later migrations (and roles_ensure) add the other apps' permissions.
    sync_roles(apps, schema_editor, staff_permissions=["accounts.use_staff_site"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_roles, migrations.RunPython.noop)]
