import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_seed_creates_staff_and_admin_once_and_prints_credentials(capsys):
    call_command("seed_demo")
    out = capsys.readouterr().out
    assert "username: staff" in out and "username: admin" in out
    User = get_user_model()
    staff, admin = User.objects.get(username="staff"), User.objects.get(username="admin")
    assert staff.has_perm("accounts.use_staff_site") and not staff.is_staff
    assert admin.is_staff

    staff.set_password("changed-by-the-clinic-123")
    staff.save()
    call_command("seed_demo")
    second_run = capsys.readouterr().out
    assert "username:" not in second_run and "left unchanged" in second_run
    staff.refresh_from_db()
    assert staff.check_password("changed-by-the-clinic-123")
