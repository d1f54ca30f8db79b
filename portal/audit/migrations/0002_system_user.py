"""The SYSTEM actor of the audit trail: the user the Celery worker and management
commands act as. It can never sign in: inactive, with an unusable password."""

from django.contrib.auth.hashers import make_password
from django.db import migrations

SYSTEM_USERNAME = "system"


def create_system_user(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    User.objects.get_or_create(
        username=SYSTEM_USERNAME,
        defaults={"is_active": False, "is_staff": False, "password": make_password(None), "first_name": "System"},
    )


def delete_system_user(apps, schema_editor):
    # Only when nothing refers to it any more (an audit row keeps it otherwise).
    User = apps.get_model("accounts", "User")
    PhiAccess = apps.get_model("audit", "PhiAccess")
    user = User.objects.filter(username=SYSTEM_USERNAME).first()
    if user and not PhiAccess.objects.filter(actor=user).exists():
        user.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("accounts", "0002_roles"),
    ]

    operations = [migrations.RunPython(create_system_user, delete_system_user)]
