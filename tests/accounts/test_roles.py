import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from portal.accounts.roles import ADMINS, CLINIC_STAFF


@pytest.mark.django_db(transaction=True)
def test_roles_survive_a_flush():
    """A flush (as after any test that commits) recreates the roles and their permissions."""
    call_command("flush", verbosity=0, interactive=False)
    staff = Group.objects.get(name=CLINIC_STAFF)
    assert staff.permissions.filter(codename="view_result").exists()
    assert staff.permissions.filter(codename="add_bulkupload").exists()
    assert not staff.permissions.filter(codename="delete_patient").exists()
    assert Group.objects.get(name=ADMINS).permissions.filter(codename="delete_patient").exists()
